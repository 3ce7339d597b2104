"""`scripts/install` says what it does step by step, leaves the package managers' own
progress visible, asks for the tests' Debian packages only with `--tests`, and does nothing
but check when everything is there. It runs here on a copy of the checkout whose venv,
`apt-get`, `npm` and interpreter are stand-ins that log how they were called."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
STEPS = [f"[{n}/6]" for n in range(1, 7)]


def stub(path: Path, body: str) -> None:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)


def checkout(tmp_path: Path, *, python_has_venv: bool = True) -> tuple[Path, dict[str, str]]:
    """A copy of what scripts/install reads, already installed; stand-ins log to calls.log."""
    tree = tmp_path / "tree"
    (tree / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "install", tree / "scripts" / "install")
    for name in ("pyproject.toml", "package.json", "package-lock.json"):
        shutil.copy(ROOT / name, tree / name)
    log = tmp_path / "calls.log"
    venv_bin = tree / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    stub(venv_bin / "python", f'echo "venv-python $*" >> {log}\n')
    stub(venv_bin / "parlour", 'echo "parlour 9.9.9"\n')
    sdk = tree / "node_modules" / "twilio-video"
    sdk.mkdir(parents=True)
    (sdk / "package.json").write_text('{\n  "version": "2.36.0",\n  "name": "twilio-video"\n}\n')
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("apt-get", "npm", "sudo"):
        stub(bin_dir / tool, f'echo "{tool} $*" >> {log}\n')
    # The interpreter: the real one, except that it may lack venv/ensurepip (Debian's).
    check = "" if python_has_venv else 'case "$*" in *ensurepip*) exit 1;; esac\n'
    stub(bin_dir / "python3", f'{check}exec {sys.executable} "$@"\n')
    later = time.time() + 5
    for done in (
        tree / ".venv" / ".parlour-pip-stamp",
        tree / "node_modules" / ".parlour-install-stamp",
    ):
        done.touch()
        os.utime(done, (later, later))
    env = {k: v for k, v in os.environ.items() if k != "PYTHON"}
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    return tree, env


def run(tree: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        ["bash", str(tree / "scripts" / "install"), *args],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def calls(tmp_path: Path) -> list[str]:
    log = tmp_path / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


def steps(out: str) -> list[str]:
    return [line.split("]")[0] + "]" for line in out.splitlines() if line.startswith("[")]


def have_test_packages() -> bool:
    return (
        Path("/usr/bin/chromium").is_file()
        and Path("/usr/bin/firefox-esr").is_file()
        and any(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        and all(shutil.which(tool) for tool in ("ffprobe", "node", "openssl", "redis-server"))
        and all(
            Path(path).is_file()
            for path in ("/usr/sbin/nginx", "/usr/bin/turnserver", "/usr/sbin/nft")
        )
        and (Path("/usr/sbin/ip").is_file() or Path("/sbin/ip").is_file())
    )


@pytest.mark.skipif(not have_test_packages(), reason="needs the tests' Debian packages")
def test_installed_means_only_checks(tmp_path: Path) -> None:
    tree, env = checkout(tmp_path)
    out = run(tree, env)
    assert steps(out) == STEPS, out
    assert "chromium, ffmpeg, postgresql… come with 'make test'" in out
    assert "up to date with pyproject.toml" in out and "parlour 9.9.9" in out
    assert "chromium" not in out.split("[3/6]")[0].split("all there:")[1]
    out = run(tree, env, "--tests")
    assert steps(out) == STEPS, out
    assert "all there: python3-venv gcc python3-dev nodejs npm chromium ffmpeg postgresql" in out
    assert "for the tests: " in out
    assert calls(tmp_path) == [], "an installed checkout ran a package manager"


def test_what_is_missing_is_installed_with_progress(tmp_path: Path) -> None:
    tree, env = checkout(tmp_path, python_has_venv=False)
    (tree / ".venv" / ".parlour-pip-stamp").unlink()
    (tree / "node_modules" / ".parlour-install-stamp").unlink()
    out = run(tree, env)
    assert steps(out) == STEPS, out
    assert "installing python3-venv (apt-get)" in out
    logged = calls(tmp_path)
    apt = [c for c in logged if c.startswith("apt-get install")]
    assert len(apt) == 1 and apt[0].endswith(" python3-venv"), logged
    assert "-qq" not in apt[0] and "Dpkg::Progress-Fancy=1" in apt[0]
    pip = [c for c in logged if c.startswith("venv-python -m pip")]
    assert [c.split(" install ")[1] for c in pip] == [
        "--upgrade pip",
        "-e .[server,client,postgres,dev]",
    ]
    assert not any(" -q" in c for c in pip), pip
    assert [c for c in logged if c.startswith("npm ")] == [
        "npm ci --no-audit --no-fund --progress=true --loglevel=notice"
    ]
    # Done once, it is not done again.
    before = len(calls(tmp_path))
    run(tree, env)
    assert [c for c in calls(tmp_path)[before:] if not c.startswith("apt-get")] == []


def test_unknown_option_is_a_usage_error(tmp_path: Path) -> None:
    tree, env = checkout(tmp_path)
    done = subprocess.run(
        ["bash", str(tree / "scripts" / "install"), "--bogus"],
        cwd=tree, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and "usage: scripts/install [--tests]" in done.stderr


def test_changed_c_sources_rebuild_the_python_packages(tmp_path: Path) -> None:
    """The media fast path (a C extension) is built by pip: a newer setup.py or C source
    than the last pip run means pip runs again; the summary says whether it was built."""
    tree, env = checkout(tmp_path)
    native = tree / "src" / "parlour" / "media"
    native.mkdir(parents=True)
    shutil.copy(ROOT / "setup.py", tree / "setup.py")
    (native / "_fastpath.c").write_text("/* stand-in */\n")
    stamp = tree / ".venv" / ".parlour-pip-stamp"
    earlier = time.time() - 100
    os.utime(stamp, (earlier, earlier))  # pip ran, then the C source changed
    for source in (tree / "pyproject.toml", tree / "setup.py", native / "_fastpath.c"):
        os.utime(source, (earlier - 10, earlier - 10))
    os.utime(native / "_fastpath.c", (earlier + 50, earlier + 50))
    out = run(tree, env)
    pip = [c for c in calls(tmp_path) if c.startswith("venv-python -m pip")]
    assert [c.split(" install ")[1] for c in pip] == [
        "--upgrade pip",
        "-e .[server,client,postgres,dev]",
    ]
    assert "media fast path: not built" in out
    (native / "_fastpath.cpython-311-x86_64-linux-gnu.so").touch()
    before = len(calls(tmp_path))
    out = run(tree, env)
    assert "media fast path: built" in out
    assert [c for c in calls(tmp_path)[before:] if not c.startswith("apt-get")] == []
