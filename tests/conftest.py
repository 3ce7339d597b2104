"""Shared fixtures: a real Parlour server on 127.0.0.1 (port 0) and fresh accounts on it."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import settings

from parlour.testing import ServerThread
from tests.helpers import Account, new_account, server_fixture

# Property tests check behaviour, not speed: no per-example deadline (on a loaded machine
# one slow example is not a failure; speed lives in bench/).
settings.register_profile("parlour", deadline=None)
settings.load_profile("parlour")

# twilio-python rewrites hosts when these are set; never let them leak into tests.
for _var in ("TWILIO_EDGE", "TWILIO_REGION"):
    os.environ.pop(_var, None)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Everything imported so far lives for the whole run: move it out of the collector's
    sight, so the collection after each test looks only at what tests made (≈1 ms instead
    of ≈60 ms a test with aiortc, PyAV and SQLAlchemy loaded)."""
    gc.collect()
    gc.freeze()


@pytest.fixture(autouse=True)
def _collect_garbage() -> Iterator[None]:
    """Collect after each test, so a leaked resource fails the test that leaked it."""
    yield
    gc.collect()


# PARLOUR_TEST_DATABASE_URL runs the integration suites on another database (PostgreSQL).
# Loopback callback targets (port 9, nothing listening) keep every delivery on this host.
server = server_fixture(
    "parlour-data",
    idle_sweep_seconds=0.05,
    database_url=os.environ.get("PARLOUR_TEST_DATABASE_URL") or None,
    webhook_allow_private=True,
)


@pytest.fixture
def account(server: ServerThread) -> Account:
    return new_account(server)


@pytest.fixture
def http(server: ServerThread, account: Account) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, auth=(account.sid, account.auth_token)) as c:
        yield c
