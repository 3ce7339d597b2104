"""DtlsSrtpTransport pairs wired back to back in memory (no sockets)."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable

import pytest
from cryptography import x509

from parlour.media.dtls import (
    SRTP_AEAD_AES_128_GCM,
    SRTP_AES128_CM_SHA1_80,
    Certificate,
    DtlsSrtpTransport,
    _datagrams,
    fingerprint_digest,
    parse_fingerprint,
)
from tests.helpers import wait_for


def rtp_packet(ssrc: int = 0x1234, seq: int = 1, payload: bytes = b"\xaa" * 40) -> bytes:
    return struct.pack("!BBHII", 0x80, 111, seq, seq * 960, ssrc) + payload


def rtcp_sr(ssrc: int = 0x1234) -> bytes:
    # SR with no report blocks: header + sender info = 28 bytes, length field 6.
    return struct.pack("!BBHIIIIII", 0x80, 200, 6, ssrc, 1, 2, 3, 4, 5)


class Side:
    """One transport plus everything it delivered."""

    def __init__(self, certificate: Certificate) -> None:
        self.certificate = certificate
        self.rtp: list[bytes] = []
        self.rtcp: list[bytes] = []
        self.data: list[bytes] = []
        self.states: list[str] = []
        self.sent: list[bytes] = []
        self.transport: DtlsSrtpTransport | None = None
        self.peer: Side | None = None
        self.drop: Callable[[bytes], bool] = lambda datagram: False

    def send(self, datagram: bytes) -> None:
        # Deliver on a later loop iteration, as a socket would (no re-entrancy).
        self.sent.append(datagram)
        if not self.drop(datagram):
            asyncio.get_running_loop().call_soon(self.deliver, datagram)

    def deliver(self, datagram: bytes) -> None:
        assert self.peer is not None and self.peer.transport is not None
        self.peer.transport.datagram_received(datagram)

    @property
    def t(self) -> DtlsSrtpTransport:
        assert self.transport is not None
        return self.transport


def make_pair(
    *,
    client_profiles: tuple[str, ...] = (SRTP_AEAD_AES_128_GCM, SRTP_AES128_CM_SHA1_80),
    server_profiles: tuple[str, ...] = (SRTP_AEAD_AES_128_GCM, SRTP_AES128_CM_SHA1_80),
    client_expects: Certificate | None = None,
    handshake_timeout: float = 10.0,
) -> tuple[Side, Side]:
    server, client = Side(Certificate.generate()), Side(Certificate.generate())
    server.peer, client.peer = client, server
    for side, other, is_server, profiles in (
        (server, client, True, server_profiles),
        (client, server, False, client_profiles),
    ):
        expected = other.certificate
        if not is_server and client_expects is not None:
            expected = client_expects
        side.transport = DtlsSrtpTransport(
            side.certificate,
            is_server=is_server,
            remote_fingerprints=[parse_fingerprint(expected.fingerprint())],
            send=side.send,
            on_rtp=side.rtp.append,
            on_rtcp=side.rtcp.append,
            on_data=side.data.append,
            on_state=side.states.append,
            srtp_profiles=profiles,
            handshake_timeout=handshake_timeout,
            label="test-" + ("server" if is_server else "client"),
        )
    return server, client


def states(*sides: Side, want: str) -> Callable[[], str | None]:
    def check() -> str | None:
        got = [s.t.state for s in sides]
        return None if all(g == want for g in got) else f"states {got}, want {want}"

    return check


async def connected_pair(**kwargs: object) -> tuple[Side, Side]:
    server, client = make_pair(**kwargs)  # type: ignore[arg-type]
    server.t.start()
    client.t.start()
    await wait_for(states(server, client, want="connected"))
    return server, client


async def test_handshake_srtp_both_ways_and_data() -> None:
    server, client = await connected_pair()
    assert server.t.srtp_profile == client.t.srtp_profile == SRTP_AEAD_AES_128_GCM
    assert server.states == client.states == ["connecting", "connected"]

    client.t.send_rtp(rtp_packet(seq=1))
    client.t.send_rtp(bytearray(rtp_packet(seq=2)))  # rtp.rewrite() hands out bytearrays
    client.t.send_rtcp(rtcp_sr())
    server.t.send_rtp(rtp_packet(ssrc=0x5678, seq=7))
    server.t.send_rtcp(rtcp_sr(0x5678))
    client.t.send_data(b"sctp-from-client")
    server.t.send_data(b"sctp-from-server")
    await wait_for(lambda: None if len(server.rtp) == 2 and client.data else "waiting")

    assert server.rtp == [rtp_packet(seq=1), rtp_packet(seq=2)]
    assert server.rtcp == [rtcp_sr()]
    assert client.rtp == [rtp_packet(ssrc=0x5678, seq=7)]
    assert client.rtcp == [rtcp_sr(0x5678)]
    assert server.data == [b"sctp-from-client"]
    assert client.data == [b"sctp-from-server"]
    # What went on the wire was encrypted.
    assert rtp_packet(seq=1) not in client.sent
    assert server.t.srtp_errors == client.t.srtp_errors == 0

    server.t.close()
    client.t.close()


async def test_cm_sha1_80_profile() -> None:
    server, client = await connected_pair(client_profiles=(SRTP_AES128_CM_SHA1_80,))
    assert server.t.srtp_profile == client.t.srtp_profile == SRTP_AES128_CM_SHA1_80
    client.t.send_rtp(rtp_packet())
    await wait_for(lambda: None if server.rtp else "no RTP")
    assert server.rtp == [rtp_packet()]
    server.t.close()
    client.t.close()


async def test_no_common_srtp_profile_fails() -> None:
    server, client = make_pair(
        client_profiles=(SRTP_AES128_CM_SHA1_80,), server_profiles=(SRTP_AEAD_AES_128_GCM,)
    )
    server.t.start()
    client.t.start()
    await wait_for(lambda: None if "failed" in (server.t.state, client.t.state) else "waiting")
    assert "connected" not in server.states
    server.t.close()
    client.t.close()


async def test_wrong_fingerprint_fails_both_sides() -> None:
    server, client = make_pair(client_expects=Certificate.generate())
    server.t.start()
    client.t.start()
    # The client rejects the server's certificate and alerts; the server fails on the alert.
    await wait_for(states(server, client, want="failed"))
    assert client.states == ["connecting", "failed"]
    client.t.send_rtp(rtp_packet())
    client.t.send_data(b"x")
    assert client.t.send_dropped == 2
    client.t.close()  # closing a failed transport keeps "failed"
    assert client.t.state == "failed"
    server.t.close()


async def test_server_checks_client_fingerprint() -> None:
    server, client = make_pair()
    # The server expects some other client certificate.
    server.t._remote_fingerprints = [parse_fingerprint(Certificate.generate().fingerprint())]
    server.t.start()
    client.t.start()
    await wait_for(lambda: None if server.t.state == "failed" else f"server {server.t.state}")
    assert "connected" not in server.states
    server.t.close()
    client.t.close()


async def test_lost_flight_is_retransmitted() -> None:
    server, client = make_pair()
    dropped: list[bytes] = []

    def drop_first_flight(datagram: bytes) -> bool:
        if not dropped:
            dropped.append(datagram)
            return True
        return False

    server.drop = drop_first_flight  # ServerHello…ServerHelloDone is lost once
    server.t.start()
    client.t.start()
    # OpenSSL's first retransmission timeout is 1 s.
    await wait_for(states(server, client, want="connected"), limit=10)
    assert len(dropped) == 1
    server.t.close()
    client.t.close()


async def test_handshake_timeout_fails() -> None:
    server, client = make_pair(handshake_timeout=0.05)
    server.t.start()  # nobody ever sends a ClientHello
    await wait_for(lambda: None if server.t.state == "failed" else server.t.state)
    assert server.states == ["connecting", "failed"]
    server.t.close()
    client.t.close()
    assert client.t.state == "closed"


async def test_bad_srtp_is_counted_never_raised() -> None:
    server, client = make_pair()
    # Before keys exist, SRTP is dropped.
    server.t.datagram_received(rtp_packet())
    assert server.t.dropped == 1
    server.t.start()
    client.t.start()
    await wait_for(states(server, client, want="connected"))

    client.t.send_rtp(rtp_packet(seq=5))
    await wait_for(lambda: None if server.rtp else "no RTP")
    genuine = client.sent[-1]
    server.t.datagram_received(genuine)  # replay
    server.t.datagram_received(rtp_packet(seq=6))  # not protected
    server.t.datagram_received(rtcp_sr() + b"\x00" * 14)  # not protected
    tampered = bytearray(genuine)
    tampered[-1] ^= 0xFF
    server.t.datagram_received(bytes(tampered))
    server.t.datagram_received(b"\x80" * 3000)  # longer than pylibsrtp's buffer
    assert server.t.srtp_errors == 5
    for junk in (b"", b"\x80", b"\x16\xfe\xfd", b"\xff" * 40, b"\x40" * 40):
        server.t.datagram_received(junk)
    server.t.datagram_received(b"\x17\xfe\xfd" + b"\x00" * 40)  # garbage DTLS record
    assert server.t.state == "connected"
    assert server.rtp == [rtp_packet(seq=5)]

    client.t.send_rtp(b"\x80")  # too short to protect: dropped, no exception
    assert client.t.send_dropped == 1
    server.t.close()
    client.t.close()


async def test_close_sends_close_notify_and_is_idempotent() -> None:
    server, client = await connected_pair()
    client.t.close()
    assert client.t.state == "closed"
    await wait_for(lambda: None if server.t.state == "closed" else server.t.state)
    client.t.close()
    server.t.close()
    assert server.states == ["connecting", "connected", "closed"]
    assert client.states == ["connecting", "connected", "closed"]
    server.t.send_rtp(rtp_packet())
    server.t.send_rtcp(rtcp_sr())
    server.t.send_data(b"late")
    assert server.t.send_dropped == 3
    assert server.t._timer is None and server.t._deadline is None


async def test_close_before_start() -> None:
    server, _ = make_pair()
    server.t.close()
    server.t.close()
    assert server.states == ["closed"]
    server.t.start()  # too late: nothing happens
    assert server.t.state == "closed"


def test_unknown_profile_rejected() -> None:
    cert = Certificate.generate()
    with pytest.raises(ValueError, match="SRTP"):
        DtlsSrtpTransport(
            cert,
            is_server=True,
            remote_fingerprints=[],
            send=lambda d: None,
            on_rtp=lambda d: None,
            on_rtcp=lambda d: None,
            on_data=lambda d: None,
            on_state=lambda s: None,
            srtp_profiles=("SRTP_NULL",),
        )


def test_certificate_fingerprint_format() -> None:
    cert = Certificate.generate()
    algorithm, digest = parse_fingerprint(cert.fingerprint())
    assert algorithm == "sha-256"
    assert len(digest.split(":")) == 32
    assert digest == digest.upper()
    assert isinstance(cert.x509, x509.Certificate)
    assert digest == fingerprint_digest(cert.x509)
    assert cert.fingerprint("SHA-384").startswith("sha-384 ")
    assert parse_fingerprint(" SHA-256 ab:cd ") == ("sha-256", "AB:CD")
    with pytest.raises(ValueError):
        parse_fingerprint("sha-256")
    with pytest.raises(ValueError):
        fingerprint_digest(cert.x509, "md5")
    assert (cert.expires - cert.x509.not_valid_before_utc).days == 31


def test_datagrams_keep_records_whole() -> None:
    def record(n: int) -> bytes:
        return b"\x16\xfe\xfd" + b"\x00" * 8 + n.to_bytes(2, "big") + b"r" * n

    flight = record(100) + record(100) + record(300) + record(10)
    assert list(_datagrams(flight, 2000)) == [flight]
    out = list(_datagrams(flight, 250))
    assert out == [record(100) + record(100), record(300), record(10)]
    assert b"".join(_datagrams(flight + b"\x16\xfe", 250)) == flight + b"\x16\xfe"
