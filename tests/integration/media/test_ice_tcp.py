"""ICE-TCP on the MediaSocket with real TCP sockets on 127.0.0.1: RFC 4571 framing both ways
(frames split and coalesced however TCP delivers them), checks answered on the connection,
media routed to and from the connection's address, unauthenticated connections closed, and
a closed connection's address forgotten. Chromium over ICE-TCP: tests/browser/
test_net_ice_tcp.py."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator

import pytest
from aioice import stun

from parlour.media import udp
from parlour.media.udp import Address, MediaSocket
from tests.helpers import eventually

pytestmark = pytest.mark.integration

UFRAG, PWD = "tcpA", "server-password-tcp-aaaa"


class Handler:
    def __init__(self) -> None:
        self.connected: list[Address] = []
        self.datagrams: list[tuple[bytes, Address]] = []

    def ice_connected(self, addr: Address) -> None:
        self.connected.append(addr)

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.datagrams.append((data, addr))


def check(pwd: str = PWD, *, use_candidate: bool = True) -> bytes:
    request = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
    request.attributes["USERNAME"] = f"{UFRAG}:cli"
    request.attributes["PRIORITY"] = 1853817087
    request.attributes["ICE-CONTROLLING"] = 1
    if use_candidate:
        request.attributes["USE-CANDIDATE"] = None
    request.add_message_integrity(pwd.encode())
    return bytes(request)


def framed(data: bytes) -> bytes:
    return struct.pack("!H", len(data)) + data


async def read_frame(reader: asyncio.StreamReader) -> bytes:
    (size,) = struct.unpack("!H", await asyncio.wait_for(reader.readexactly(2), 10))
    return await asyncio.wait_for(reader.readexactly(size), 10)


@pytest.fixture
async def sock() -> AsyncIterator[MediaSocket]:
    media = await MediaSocket.bind("127.0.0.1", 0)
    port = await media.listen_tcp("127.0.0.1", media.candidate_address[1])
    assert port == media.tcp_port == media.candidate_address[1]
    try:
        yield media
    finally:
        media.close()
        await media.wait_closed()


async def test_checks_and_media_over_a_tcp_connection(sock: MediaSocket) -> None:
    handler = Handler()
    sock.register(UFRAG, PWD, handler)
    assert sock.tcp_port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", sock.tcp_port)
    try:
        client: Address = writer.get_extra_info("sockname")[:2]
        # A check split over two writes, then coalesced with a DTLS record in one.
        request = framed(check())
        writer.write(request[:7])
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(request[7:] + framed(b"\x16dtls-record"))
        await writer.drain()
        response = stun.parse_message(await read_frame(reader))
        assert response.message_class == stun.Class.RESPONSE
        assert response.attributes["XOR-MAPPED-ADDRESS"] == client
        await eventually(lambda: handler.datagrams == [(b"\x16dtls-record", client)])
        assert handler.connected == [client]
        assert sock.selected_address(UFRAG) == client
        assert sock.last_consent(UFRAG) is not None
        # Media to the selected address goes back framed on the connection.
        assert sock.connected_sender(UFRAG) is None  # no connected UDP socket for TCP
        sock.sendto(b"\x80rtp-packet", client)
        assert await read_frame(reader) == b"\x80rtp-packet"
        # A frame of length 0 and an unknown first byte are dropped, like such datagrams.
        dropped = sock.dropped
        writer.write(framed(b"") + framed(b"\x05junk"))
        await writer.drain()
        await eventually(lambda: sock.dropped == dropped + 2)
    finally:
        writer.close()
    # Closing the connection invalidates its address.
    await eventually(lambda: sock.selected_address(UFRAG) is None)
    assert sock.valid_addresses(UFRAG) == {}


async def test_a_bad_check_is_refused_on_the_connection(sock: MediaSocket) -> None:
    sock.register(UFRAG, PWD, Handler())
    assert sock.tcp_port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", sock.tcp_port)
    try:
        writer.write(framed(check("wrong-password-wrong-pwd")))
        response = stun.parse_message(await read_frame(reader))
        assert response.message_class == stun.Class.ERROR
        assert response.attributes["ERROR-CODE"][0] == 401
        assert sock.valid_addresses(UFRAG) == {}
    finally:
        writer.close()


async def test_a_connection_without_a_valid_check_is_closed(
    sock: MediaSocket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(udp, "_TCP_AUTH_SECONDS", 0.3)
    assert sock.tcp_port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", sock.tcp_port)
    try:
        assert await asyncio.wait_for(reader.read(), 10) == b""  # EOF: the server closed it
    finally:
        writer.close()


async def test_unregistering_closes_the_endpoints_connections(sock: MediaSocket) -> None:
    sock.register(UFRAG, PWD, Handler())
    assert sock.tcp_port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", sock.tcp_port)
    try:
        writer.write(framed(check()))
        await read_frame(reader)
        sock.unregister(UFRAG)
        assert await asyncio.wait_for(reader.read(), 10) == b""
    finally:
        writer.close()
