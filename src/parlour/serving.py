"""How Parlour's ASGI app is served: the uvicorn settings shared by `parlour serve` and the
test server, and the WebSocket protocol they use.

uvicorn's sans-I/O WebSocket protocol (websockets ≥ 14) fails its `shutdown()` when a
client's close frame has just been answered and the connection is not yet lost: it sends a
second close frame, which the `websockets` state machine refuses (`InvalidState`). The
exception escapes uvicorn's shutdown, so the server stops without running the rest of it
(the lifespan shutdown, which closes the store). Clients leave as the server stops all the
time (a deploy, a restart, a test's end), so `WebSocketProtocol` says nothing more on such a
connection and just closes it.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any

import uvicorn
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

__all__ = ["WebSocketProtocol", "uvicorn_config"]


class WebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol, with a shutdown that tolerates a closing
    handshake in flight (see the module's docstring)."""

    def shutdown(self) -> None:
        if not self.close_sent and self.handshake_complete and self.conn.state is not State.OPEN:
            # The client's close was received and answered (`handle_close` queued the app's
            # `websocket.disconnect`); the connection is only waiting to be lost.
            self.stop_keepalive()
            self.transport.close()
            return
        super().shutdown()


def uvicorn_config(
    asgi: Any,
    *,
    log_level: str | int | None,
    access_log: bool = False,
    loop: str = "auto",
    tls: ssl.SSLContext | None = None,
) -> uvicorn.Config:
    """The uvicorn configuration Parlour is served with (lifespan on, httptools, no
    `Server` header, `WebSocketProtocol`, TLS from an already built context)."""
    factory: Callable[..., ssl.SSLContext] | None = None
    if tls is not None:
        context = tls

        def factory(*_: Any) -> ssl.SSLContext:
            return context

    return uvicorn.Config(
        asgi,
        loop=loop,
        http="httptools",
        ws=WebSocketProtocol,
        lifespan="on",
        access_log=access_log,
        log_level=log_level,
        server_header=False,
        ssl_context_factory=factory,
    )
