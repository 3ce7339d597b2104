"""Test support shipped with Parlour: a fake clock, the in-memory store (`MemoryStore`, the
twin of the SQL store, same contract) and a real server on a background thread.

May import anything (it sits beside `parlour.app` at the top of the layers); nothing in
`src/` imports it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from parlour.config import Config, server_tls_context
from parlour.store.memory import MemoryStore

__all__ = ["FakeClock", "MemoryStore", "ServerThread"]

T = TypeVar("T")


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self._now = start or dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
        self._mono = 1000.0

    def now(self) -> dt.datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        self._now += dt.timedelta(seconds=seconds)
        self._mono += seconds


class ServerThread:
    """`parlour serve` in-process on 127.0.0.1 (or `host`), port 0, in a thread with its own
    uvloop (HTTPS and WSS when the config has `tls_cert` and `tls_key`).

    Use as a context manager. `parlour` gives the wired objects; `call(coro)` runs a
    coroutine on the server's loop (to drive services the way signaling will).
    """

    def __init__(
        self, data_dir: Path, *, media: Any = None, host: str = "127.0.0.1", **config: Any
    ) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, 0))
        port = self._sock.getsockname()[1]
        self.config = Config(data_dir=data_dir, host=host, port=port, **config)
        self.base_url = self.config.base_url
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Any = None
        self.parlour: Any = None
        self._media = media
        self._thread = threading.Thread(target=self._run, name="parlour-server", daemon=True)

    def __enter__(self) -> ServerThread:
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise RuntimeError("server failed to start") from self._error
        if not self._ready.is_set():
            raise RuntimeError("server did not start in 30 s")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._server is not None:
            self._loop.call_soon_threadsafe(setattr, self._server, "should_exit", True)
        self._thread.join(30)
        if self._thread.is_alive():
            raise RuntimeError("server thread did not stop")

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        assert self._loop is not None
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(timeout)

    def _run(self) -> None:
        import uvicorn
        import uvloop

        from parlour.serving import uvicorn_config

        async def main() -> None:
            from parlour.app import build

            self._loop = asyncio.get_running_loop()
            try:
                self.parlour = await build(self.config, media=self._media)
                tls = server_tls_context(self.config)  # HTTPS/WSS with tls_cert, tls_key
                self._server = uvicorn.Server(
                    uvicorn_config(self.parlour.asgi, log_level="warning", tls=tls)
                )
                serve = asyncio.create_task(self._server.serve(sockets=[self._sock]))
                # uvicorn offers no "started" event to await.
                while not self._server.started and not serve.done():  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
                self._ready.set()
                await serve
            except BaseException as exc:
                self._error = exc
                self._ready.set()
                raise
            finally:
                if self.parlour is not None:
                    await self.parlour.close()
                self._sock.close()

        try:
            uvloop.run(main())
        except BaseException:
            pass
