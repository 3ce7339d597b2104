"""`parlour` as a subprocess, for the CLI tests: the command, a clean environment, and a
`parlour serve` that says where it listens."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

__all__ = ["PARLOUR", "clean_env", "serving", "start_serve"]

PARLOUR = [sys.executable, "-m", "parlour"]


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any PARLOUR_* setting, plus `extra`; the SFU runs
    in the server process (`PARLOUR_MEDIA_WORKERS=0`) unless `extra` says otherwise."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLOUR_")}
    return {**env, "PARLOUR_MEDIA_WORKERS": "0", **extra}


def start_serve(
    *args: str, env: dict[str, str], within: float = 30
) -> tuple[subprocess.Popen[str], str, list[str]]:
    """`parlour serve --port 0 ARGS`: the process, the URL it says it listens on, and the
    stderr lines up to that one. The process is killed if it says no URL in time."""
    proc = subprocess.Popen(
        [*PARLOUR, "serve", "--port", "0", *args], stderr=subprocess.PIPE, text=True, env=env
    )
    assert proc.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        lines.append(proc.stderr.readline())
        match = re.search(r"listening on (https?://\S+)", lines[-1])
        if match:
            return proc, match.group(1), lines
    proc.kill()
    proc.wait(20)
    proc.stderr.close()
    raise AssertionError("server did not report its URL")


@contextlib.contextmanager
def serving(*args: str, env: dict[str, str]) -> Iterator[tuple[str, list[str]]]:
    """`start_serve`, stopped with SIGINT after: its URL and first stderr lines."""
    proc, url, lines = start_serve(*args, env=env)
    try:
        yield url, lines
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(20)
        if proc.stderr is not None:
            proc.stderr.close()
