# Parlour: two commands on a fresh Debian machine with Python 3.11.
#   make run   installs what the server needs and starts it on http://127.0.0.1:8080
#   make test  installs what tests need too (chromium, ffmpeg, postgresql, nginx, coturn…)
#              and runs lint, types and the whole suite
#   make setup only installs what the server needs; make setup-tests adds the tests' part
#   make bench Parlour's SFU side by side with Janus and mediasoup, transcriptions, compositions beside ffmpeg
#              (QUICK=1: one meeting size and 15 s of composition media)
#   make soak  an hour of churn against a real server, checking nothing leaks (SOAK_MINUTES=60)
#   make fuzz  a long fuzzing campaign over every parser of untrusted input (docs/security.md)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.setup-stamp
TEST_STAMP := $(VENV)/.setup-tests-stamp
HOST   ?= 127.0.0.1
PORT   ?= 8080
DATA_DIR ?= ./var

.PHONY: setup setup-tests run test check lint format clean bench fuzz soak

setup: $(STAMP)

setup-tests: $(TEST_STAMP)

NATIVE := setup.py src/parlour/media/_fastpath.c   # the media fast path (C), built by pip

$(STAMP): pyproject.toml package.json package-lock.json scripts/install $(NATIVE)
	scripts/install
	@touch $(STAMP)

$(TEST_STAMP): pyproject.toml package.json package-lock.json scripts/install $(NATIVE)
	scripts/install --tests
	@touch $(STAMP) $(TEST_STAMP)

run: setup
	$(BIN)/parlour serve --host $(HOST) --port $(PORT) --data-dir $(DATA_DIR)

test: setup-tests
	scripts/check
	scripts/test

check: setup
	scripts/check

bench: setup
	scripts/bench

fuzz: setup
	scripts/fuzz

soak: setup
	$(BIN)/python -m bench.soak

format: setup
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .coverage
