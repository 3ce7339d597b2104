"""The WebSocket protocol Parlour is served with: a shutdown racing a client's close.

Each test drives the real uvicorn protocol over a real socket pair with a real `websockets`
client state machine. The race is made deterministic by stopping the server (`shutdown()`,
what uvicorn's `Server` calls on every connection as it stops) right after the client's
close frame was answered and before the connection is lost, the window where uvicorn's
own protocol raises.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState
from websockets.client import ClientProtocol
from websockets.exceptions import InvalidState
from websockets.frames import Close, Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

from parlour.serving import WebSocketProtocol, uvicorn_config


@dataclass
class Received:
    events: list[dict[str, Any]] = field(default_factory=list)


def racing(cls: type[WebSocketsSansIOProtocol]) -> type[WebSocketsSansIOProtocol]:
    """`cls`, stopped by its server just after it answered a client's close frame."""

    class Racing(cls):  # type: ignore[valid-type,misc]
        shutdown_error: BaseException | None = None

        def handle_close(self, event: Any) -> None:
            super().handle_close(event)
            try:
                self.shutdown()
            except BaseException as exc:  # what escapes uvicorn's Server.shutdown
                self.shutdown_error = exc

    return Racing


@dataclass
class Connection:
    protocol: Any
    client: ClientProtocol
    sock: socket.socket
    received: Received

    async def send(self) -> None:
        data = b"".join(self.client.data_to_send())
        if data:
            await asyncio.get_running_loop().sock_sendall(self.sock, data)

    async def read(self) -> bytes:
        return await asyncio.wait_for(asyncio.get_running_loop().sock_recv(self.sock, 65536), 5)


@pytest.fixture
async def connect() -> AsyncIterator[Any]:
    opened: list[Connection] = []

    async def open_one(cls: type[WebSocketsSansIOProtocol]) -> Connection:
        received = Received()

        async def app(scope: Any, receive: Any, send: Any) -> None:
            assert scope["type"] == "websocket"
            received.events.append(await receive())
            await send({"type": "websocket.accept"})
            while True:
                event = await receive()
                received.events.append(event)
                if event["type"] == "websocket.disconnect":
                    return

        config = uvicorn_config(app, log_level="warning")
        config.ws = cls
        config.load()
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair()
        theirs.setblocking(False)
        protocol = cls(config=config, server_state=ServerState(), app_state={})
        await loop.connect_accepted_socket(lambda: protocol, sock=ours)
        client = ClientProtocol(parse_uri("ws://parlour.test/signaling"))
        connection = Connection(protocol, client, theirs, received)
        opened.append(connection)
        client.send_request(client.connect())
        await connection.send()
        while client.state is State.CONNECTING:
            client.receive_data(await connection.read())
        assert client.state is State.OPEN
        client.events_received()  # the handshake's response
        return connection

    yield open_one
    for connection in opened:
        connection.sock.close()
        connection.protocol.transport.close()
    await asyncio.sleep(0)


async def _closed_by_server(connection: Connection) -> list[Any]:
    """What the client receives until the server closes the socket."""
    frames: list[Any] = []
    while data := await connection.read():
        connection.client.receive_data(data)
        frames.extend(connection.client.events_received())
    return frames


async def test_uvicorns_own_protocol_fails_a_shutdown_racing_a_close(connect: Any) -> None:
    """The failure `WebSocketProtocol` exists for (if uvicorn mends it, drop ours)."""
    connection = await connect(racing(WebSocketsSansIOProtocol))
    connection.client.send_close(1000)
    await connection.send()
    await _closed_by_server(connection)
    assert isinstance(connection.protocol.shutdown_error, InvalidState)


async def test_a_shutdown_racing_a_close_just_closes(connect: Any) -> None:
    connection = await connect(racing(WebSocketProtocol))
    connection.client.send_close(1000)
    await connection.send()
    frames = await _closed_by_server(connection)
    assert connection.protocol.shutdown_error is None
    # The client got the answer to its close (and nothing else); the app was told.
    assert [frame.opcode for frame in frames] == [Opcode.CLOSE]
    assert Close.parse(frames[0].data).code == 1000
    for _ in range(100):
        if connection.received.events[-1]["type"] == "websocket.disconnect":
            break
        await asyncio.sleep(0.01)
    assert connection.received.events[-1] == {
        "type": "websocket.disconnect",
        "code": 1000,
        "reason": "",
    }


async def test_a_shutdown_of_an_open_connection_still_says_service_restart(
    connect: Any,
) -> None:
    connection = await connect(WebSocketProtocol)
    connection.protocol.shutdown()
    frames = await _closed_by_server(connection)
    assert [frame.opcode for frame in frames] == [Opcode.CLOSE]
    assert Close.parse(frames[0].data).code == 1012  # service restart


def test_parlour_is_served_with_its_protocol_and_no_server_header() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("not called")

    config = uvicorn_config(app, log_level="warning")
    assert config.ws is WebSocketProtocol
    assert config.server_header is False
    assert config.lifespan == "on"
    assert isinstance(config, uvicorn.Config)
