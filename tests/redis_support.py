"""A throwaway Redis server for tests: Debian's `redis-server` (installed by
`scripts/install --tests`) on a free loopback port, its files in a temp dir.

    server = RedisServer.start()       # or skip: `missing_reason()` says why
    server.url                         # redis://127.0.0.1:…/0
    server.stop()                      # kills it and removes the dir (safe twice)
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.pg import free_port

__all__ = ["RedisServer", "missing_reason"]


def missing_reason() -> str | None:
    """Why a Redis server cannot be started here, or None if it can."""
    if shutil.which("redis-server") is None:
        return "redis-server not found: run scripts/install --tests"
    return None


@dataclass
class RedisServer:
    root: Path
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @classmethod
    def start(cls) -> RedisServer:
        """Start a server with no persistence; raises RuntimeError if it does not answer."""
        root = Path(tempfile.mkdtemp(prefix="parlour-redis-"))
        port = free_port()
        process = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(root),
             "--save", "", "--appendonly", "no", "--logfile", str(root / "log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        server = cls(root, port, process)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(64).startswith(b"+PONG"):
                        return server
            except OSError:
                time.sleep(0.02)
        log = (root / "log").read_text() if (root / "log").exists() else ""
        server.stop()
        raise RuntimeError(f"redis-server did not start:\n{log}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        shutil.rmtree(self.root, ignore_errors=True)
