"""MediaSocket's demultiplexing and ICE-lite responder, driven without sockets."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aioice import stun

from parlour.media.udp import Address, MediaSocket

UFRAG, PWD = "srvA", "server-password-aaaaaaaa"
CLIENT: Address = ("192.0.2.10", 40000)


class FakeTransport(asyncio.DatagramTransport):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[bytes, Any]] = []
        self.closed = False

    def sendto(self, data: Any, addr: Any = None) -> None:
        self.sent.append((bytes(data), addr))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 5004) if name == "sockname" else default


class Handler:
    def __init__(self) -> None:
        self.connected: list[Address] = []
        self.datagrams: list[tuple[bytes, Address]] = []

    def ice_connected(self, addr: Address) -> None:
        self.connected.append(addr)

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.datagrams.append((data, addr))


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def check(
    username: str = f"{UFRAG}:cli",
    pwd: str | None = PWD,
    *,
    use_candidate: bool = False,
    controlled: bool = False,
    fingerprint: bool = True,
) -> stun.Message:
    request = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
    request.attributes["USERNAME"] = username
    request.attributes["PRIORITY"] = 1853817087
    if controlled:
        request.attributes["ICE-CONTROLLED"] = 1
    else:
        request.attributes["ICE-CONTROLLING"] = 1
    if use_candidate:
        request.attributes["USE-CANDIDATE"] = None
    if pwd is not None:
        request.add_message_integrity(pwd.encode())
        if not fingerprint:
            del request.attributes["FINGERPRINT"]
    elif fingerprint:
        request.add_fingerprint()
    return request


def flip_last_bit(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 1])


@pytest.fixture
async def sock() -> tuple[MediaSocket, FakeTransport, Handler, Clock]:
    clock = Clock()
    s = MediaSocket(clock=clock)
    t = FakeTransport()
    s.connection_made(t)
    h = Handler()
    s.register(UFRAG, PWD, h)
    return s, t, h, clock


def last_response(t: FakeTransport) -> tuple[stun.Message, Any]:
    data, addr = t.sent[-1]
    return stun.parse_message(data), addr


async def test_valid_check_answers_and_validates(sock: Any) -> None:
    s, t, h, clock = sock
    assert s.candidate_address == ("127.0.0.1", 5004)
    request = check()
    s.datagram_received(bytes(request), CLIENT)

    response, addr = last_response(t)
    assert addr == CLIENT
    assert response.message_class == stun.Class.RESPONSE
    assert response.transaction_id == request.transaction_id
    assert response.attributes["XOR-MAPPED-ADDRESS"] == CLIENT
    assert response.check_message_integrity(PWD.encode())
    assert "FINGERPRINT" in response.attributes
    assert h.connected == [CLIENT]
    assert s.selected_address(UFRAG) == CLIENT
    assert s.last_consent(UFRAG) == 100.0

    # Media from the validated address is delivered; from elsewhere, dropped.
    s.datagram_received(b"\x80\x6f" + b"\x00" * 30, CLIENT)
    s.datagram_received(b"\x16\xfe\xfd" + b"\x00" * 30, CLIENT)
    s.datagram_received(b"\x80\x6f" + b"\x00" * 30, ("192.0.2.11", 40000))
    assert [d[:1] for d, _ in h.datagrams] == [b"\x80", b"\x16"]
    assert s.dropped == 1

    # A later check refreshes consent but does not re-announce the address.
    clock.now = 105.0
    s.datagram_received(bytes(check()), CLIENT)
    assert s.last_consent(UFRAG) == 105.0
    assert s.last_consent(UFRAG, ("192.0.2.11", 40000)) is None
    assert h.connected == [CLIENT]


async def test_wrong_password_gets_401_and_no_route(sock: Any) -> None:
    s, t, h, _ = sock
    s.datagram_received(bytes(check(pwd="wrong-password-xxxxxxxxx")), CLIENT)
    response, _ = last_response(t)
    assert response.message_class == stun.Class.ERROR
    assert response.error_code == 401
    assert h.connected == []
    s.datagram_received(b"\x80\x6f" + b"\x00" * 30, CLIENT)
    assert h.datagrams == []
    assert s.valid_addresses(UFRAG) == {}
    assert s.stun_errors == 1


async def test_unknown_ufrag_gets_401(sock: Any) -> None:
    s, t, h, _ = sock
    s.datagram_received(bytes(check(username="nobody:cli")), CLIENT)
    assert last_response(t)[0].error_code == 401
    s.datagram_received(bytes(check(username="no-colon")), CLIENT)
    assert last_response(t)[0].error_code == 401
    assert h.connected == []


@pytest.mark.parametrize(
    "request_bytes",
    [
        pytest.param(lambda: bytes(check(pwd=None)), id="no-integrity"),
        pytest.param(lambda: bytes(check(fingerprint=False)), id="no-fingerprint"),
        pytest.param(lambda: flip_last_bit(bytes(check())), id="bad-fingerprint"),
        pytest.param(
            lambda: (lambda m: (m.attributes.pop("USERNAME"), bytes(m))[1])(check()),
            id="no-username",
        ),
        pytest.param(
            # XOR-MAPPED-ADDRESS with a truncated value inside a well-framed message.
            lambda: b"\x00\x01\x00\x08\x21\x12\xa4\x42" + b"t" * 12 + b"\x00\x20\x00\x04abcd",
            id="bad-attribute",
        ),
    ],
)
async def test_malformed_check_gets_400(sock: Any, request_bytes: Any) -> None:
    s, t, h, _ = sock
    s.datagram_received(request_bytes(), CLIENT)
    response, _ = last_response(t)
    assert response.error_code == 400
    assert h.connected == []


async def test_role_conflict(sock: Any) -> None:
    s, t, h, _ = sock
    s.datagram_received(bytes(check(controlled=True)), CLIENT)
    response, _ = last_response(t)
    assert response.error_code == 487
    assert response.check_message_integrity(PWD.encode())
    assert h.connected == []


async def test_garbage_never_raises(sock: Any) -> None:
    s, t, h, _ = sock
    for junk in [
        b"",
        b"\x00",
        b"\x01" * 19,
        b"\x00\x01\x00\x00" + b"\x00" * 16,  # wrong magic cookie
        b"\x00\x01\x00\x04\x21\x12\xa4\x42" + b"t" * 12,  # length beyond the data
        b"\x00\x11\x00\x00\x21\x12\xa4\x42" + b"t" * 12,  # Binding indication: ignored
        b"\x01\x01\x00\x00\x21\x12\xa4\x42" + b"t" * 12,  # a response: ignored
        b"\x10" * 50,
        b"\x16" * 50,
        b"\x80" * 50,
        b"\xff" * 50,
    ]:
        s.datagram_received(junk, CLIENT)
    assert h.connected == [] and h.datagrams == []
    # The socket still works.
    s.datagram_received(bytes(check()), CLIENT)
    assert h.connected == [CLIENT]


async def test_handler_exception_does_not_escape(sock: Any) -> None:
    s, _, h, _ = sock
    s.datagram_received(bytes(check()), CLIENT)

    def boom(data: bytes, addr: Address) -> None:
        raise RuntimeError("handler bug")

    s._routes[CLIENT] = boom
    s.datagram_received(b"\x80" * 20, CLIENT)
    assert s.handler_errors == 1


async def test_nomination_selects_and_switches(sock: Any) -> None:
    s, _, h, _ = sock
    other: Address = ("192.0.2.10", 40002)
    s.datagram_received(bytes(check()), CLIENT)  # first valid address, not nominated
    s.datagram_received(bytes(check()), other)  # valid, but does not replace the first
    assert h.connected == [CLIENT]
    s.datagram_received(bytes(check(use_candidate=True)), other)  # nominated: switch
    assert h.connected == [CLIENT, other]
    s.datagram_received(bytes(check()), CLIENT)  # a plain check does not switch back
    s.datagram_received(bytes(check(use_candidate=True)), other)  # re-nomination: no event
    assert h.connected == [CLIENT, other]
    assert s.selected_address(UFRAG) == other
    assert set(s.valid_addresses(UFRAG)) == {CLIENT, other}
    # Both valid addresses carry media.
    s.datagram_received(b"\x80" * 20, CLIENT)
    s.datagram_received(b"\x80" * 20, other)
    assert len(h.datagrams) == 2

    s.forget_address(UFRAG, other)
    assert s.selected_address(UFRAG) is None
    s.datagram_received(b"\x80" * 20, other)
    assert len(h.datagrams) == 2
    s.datagram_received(bytes(check()), CLIENT)
    assert h.connected == [CLIENT, other, CLIENT]


async def test_two_endpoints_are_demultiplexed(sock: Any) -> None:
    s, t, h, _ = sock
    h2 = Handler()
    s.register("srvB", "server-password-bbbbbbbb", h2)
    client2: Address = ("192.0.2.20", 50000)
    s.datagram_received(bytes(check()), CLIENT)
    s.datagram_received(bytes(check("srvB:cli2", "server-password-bbbbbbbb")), client2)
    # Endpoint B's ufrag with A's password is refused.
    s.datagram_received(bytes(check("srvB:cli2", PWD)), ("192.0.2.30", 1))
    assert last_response(t)[0].error_code == 401
    s.datagram_received(b"\x80A" + b"\x00" * 20, CLIENT)
    s.datagram_received(b"\x80B" + b"\x00" * 20, client2)
    assert [d[1:2] for d, _ in h.datagrams] == [b"A"]
    assert [d[1:2] for d, _ in h2.datagrams] == [b"B"]

    s.unregister("srvB")
    s.unregister("srvB")
    s.datagram_received(b"\x80B" + b"\x00" * 20, client2)
    assert len(h2.datagrams) == 1
    s.datagram_received(bytes(check("srvB:cli2", "server-password-bbbbbbbb")), client2)
    assert last_response(t)[0].error_code == 401


async def test_address_moves_between_endpoints(sock: Any) -> None:
    s, _, h, _ = sock
    h2 = Handler()
    s.register("srvB", "server-password-bbbbbbbb", h2)
    s.datagram_received(bytes(check()), CLIENT)
    s.datagram_received(bytes(check("srvB:cli", "server-password-bbbbbbbb")), CLIENT)
    assert s.valid_addresses(UFRAG) == {}
    assert s.selected_address(UFRAG) is None
    s.datagram_received(b"\x80" * 20, CLIENT)
    assert h.datagrams == [] and len(h2.datagrams) == 1


async def test_valid_addresses_are_bounded(sock: Any) -> None:
    s, _, h, clock = sock
    for port in range(1000, 1040):
        clock.now += 1
        s.datagram_received(bytes(check()), ("192.0.2.10", port))
    valid = s.valid_addresses(UFRAG)
    assert len(valid) == 16
    assert ("192.0.2.10", 1000) in valid  # the selected address is kept
    assert ("192.0.2.10", 1039) in valid
    assert len(s._routes) == 16


async def test_register_validation_and_close(sock: Any) -> None:
    s, t, h, _ = sock
    with pytest.raises(ValueError):
        s.register(UFRAG, PWD, h)
    with pytest.raises(ValueError):
        s.register("a:b", PWD, h)
    s.datagram_received(bytes(check()), CLIENT)
    s.close()
    s.close()
    assert t.closed and s.closed
    sent = len(t.sent)
    s.sendto(b"x", CLIENT)
    s.datagram_received(b"\x80" * 20, CLIENT)
    assert len(t.sent) == sent and len(h.datagrams) == 0
    assert s.send_dropped == 1
    s.connection_lost(None)
    await s.wait_closed()


async def test_bind_wildcard_needs_advertised_host() -> None:
    with pytest.raises(ValueError):
        await MediaSocket.bind("0.0.0.0")


async def test_congested_socket_drops_instead_of_queueing(sock: Any) -> None:
    s, t, _, _ = sock
    s.pause_writing()
    s.sendto(b"media", CLIENT)
    s.datagram_received(bytes(check()), CLIENT)  # the response is dropped too
    assert t.sent == [] and s.send_dropped == 2
    s.resume_writing()
    s.sendto(b"media", CLIENT)
    assert t.sent == [(b"media", CLIENT)]
