"""The C forwarding path (`parlour.media._fastpath`) against the Python reference, on sockets.

Same datagrams out for the same packets in: `FanOut.forward` (rewrite, SRTP protect,
`sendmmsg`) against `RtpRewriter.rewrite` + `SrtpSession.protect` + `socket.send` with the
same keys, to real UDP sockets on 127.0.0.1; router consumers with and without a lane,
answering NACKs and Sender Reports; `recv_batch` (recvmmsg + unprotect) against
`SrtpSession.unprotect`; and ``PARLOUR_MEDIA_FASTPATH=0``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from typing import Any

import pylibsrtp
import pytest

from parlour.media import fastpath, rtcp, rtp
from parlour.media.negotiation import PublishedTrackInfo, SentTrackInfo
from parlour.media.router import Router
from parlour.media.sdp import Codec, Extmap
from parlour.media.srtp import SrtpSession
from tests.unit.media.rtp_packets import ABS_SEND_TIME_URI, TWCC_URI, build
from tests.unit.media.test_fastpath import pair, python_forward, recorded_sequence

native = fastpath.native
pytestmark = pytest.mark.skipif(native is None, reason="the C fast path is not built")

GCM = pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM
SHA1_80 = pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80


def _srtp(
    profile: int, key: bytes, direction: int = pylibsrtp.Policy.SSRC_ANY_OUTBOUND
) -> SrtpSession:
    policy = pylibsrtp.Policy(key=key, ssrc_type=direction, srtp_profile=profile)
    policy.allow_repeat_tx = True
    return SrtpSession(policy)


def _receiver() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(2)
    return sock


def _drain(sock: socket.socket, count: int) -> list[bytes]:
    return [sock.recv(2048) for _ in range(count)]


@pytest.mark.parametrize("profile", [GCM, SHA1_80])
def test_fanout_sends_what_the_python_path_sends(profile: int) -> None:
    """Three subscribers (two over the shared socket with sendmmsg, one connected), against
    the Python path: RtpRewriter → SrtpSession.protect → socket.send, same keys."""
    key = os.urandom(28 if profile == GCM else 30)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.bind(("127.0.0.1", 0))
    receivers = [_receiver() for _ in range(3)]
    python_receivers = [_receiver() for _ in range(3)]
    connected = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    connected.connect(receivers[2].getsockname())
    lanes, references = [], []
    for i, (name, receiver) in enumerate(
        zip(["none", "chrome-to-aiortc+mid", "identity"], receivers, strict=True)
    ):
        reference, lane, pt_map = pair(name)
        egress = lane.egress
        session = _srtp(profile, key)
        egress.set_srtp(session, fastpath.srtp_context(session))
        if i < 2:
            assert egress.set_sender(None, sender, receiver.getsockname()) is True
        else:
            assert egress.set_sender(None, connected, None) is True
        lanes.append(lane)
        references.append((reference, pt_map, _srtp(profile, key)))
    fan = native.FanOut(lanes)
    expected_counts = [0, 0, 0]
    python_out = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3)]
    for out, receiver in zip(python_out, python_receivers, strict=True):
        out.connect(receiver.getsockname())
    packets = [p for p in recorded_sequence(3, 300) if len(p) < 1300]
    for packet in packets:
        fan.forward(packet)
        for i, (reference, pt_map, session) in enumerate(references):
            out = python_forward(reference, pt_map, packet)
            if out is None:
                continue
            protected = session.protect(out)
            assert protected is not None
            python_out[i].send(protected)
            expected_counts[i] += 1
    for i, lane in enumerate(lanes):
        want = _drain(python_receivers[i], expected_counts[i])
        got = _drain(receivers[i], expected_counts[i])
        assert got == want
        assert lane.egress.packets == expected_counts[i]
        assert lane.egress.octets == sum(map(len, want))
        assert lane.egress.dropped == 0
    for s in (sender, connected, *receivers, *python_receivers, *python_out):
        s.close()


def test_egress_drops_and_counts_what_cannot_go() -> None:
    receiver = _receiver()
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    egress = native.Egress()
    egress.send_rtp(build(seq=1))  # not keyed
    assert (egress.packets, egress.dropped) == (0, 1)
    session = _srtp(GCM, os.urandom(28))
    egress.set_srtp(session, fastpath.srtp_context(session))
    assert egress.keyed
    egress.send_rtp(build(seq=2, payload=bytes(1500)))  # over MAX_PACKET
    assert egress.dropped == 2
    assert egress.set_sender(None, sender, receiver.getsockname())
    egress.send_rtp(build(seq=3))
    assert receiver.recv(2048) and egress.packets == 1
    sender.close()  # a closed socket: dropped, never written to a reused descriptor
    egress.send_rtp(build(seq=4))
    assert (egress.packets, egress.dropped) == (1, 3)
    calls: list[bytes] = []

    def refuse(data: bytes) -> None:
        calls.append(data)
        raise OSError("full")

    egress.set_sender(refuse)  # a Python sender (ICE-TCP): OSError means dropped
    egress.send_rtp(build(seq=5))
    assert len(calls) == 1 and egress.dropped == 4
    egress.set_sender(lambda data: 1 / 0)  # anything else propagates, as in Python
    with pytest.raises(ZeroDivisionError):
        egress.send_rtp(build(seq=6))
    egress.set_srtp(None, 0)
    assert not egress.keyed
    with pytest.raises(ValueError):
        egress.set_sender(None, receiver, ("127.0.0.1",))
    assert egress.set_sender(None, receiver, ("not an address", 5)) is False
    receiver.close()


class _Sink:
    """A subscriber transport's send side: through a C egress (fast) or in Python."""

    def __init__(self, key: bytes, addr: tuple[str, int], *, fast: bool) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.connect(addr)
        self.session = _srtp(GCM, key)
        self.egress: Any = None
        if fast:
            self.egress = native.Egress()
            self.egress.set_srtp(self.session, fastpath.srtp_context(self.session))
            self.egress.set_sender(None, self.sock, None)

    def send_rtp(self, packet: bytes) -> None:
        if self.egress is not None:
            self.egress.send_rtp(packet)
            return
        data = self.session.protect(packet)
        assert data is not None
        self.sock.send(data)

    def send_rtcp(self, packet: bytes) -> None:
        self.sock.send(b"RTCP" + packet)


def test_router_consumers_forward_repair_and_report_like_python() -> None:
    """A producer with a fast and a Python consumer of the same subscription settings:
    forwarding, NACK repairs (RTX), Sender Reports and closing give the same datagrams."""
    vp8 = Codec(96, "VP8", 90000)
    rtx = Codec(97, "rtx", 90000, parameters=(("apt", "96"),))
    ext = (Extmap(2, ABS_SEND_TIME_URI), Extmap(3, TWCC_URI))
    info = PublishedTrackInfo("1", "t", "s", "video", (vp8, rtx), (0x2222,), (), ext)
    router = Router("RM")
    producer = router.produce("PA", info, lambda ssrc: None)
    key = os.urandom(28)
    receivers = [_receiver(), _receiver()]
    sinks = [
        _Sink(key, r.getsockname(), fast=fast)
        for r, fast in zip(receivers, (True, False), strict=True)
    ]
    sent_ext = (Extmap(5, rtp.MID_URI), Extmap(9, ABS_SEND_TIME_URI))
    consumers = [
        router.consume(
            producer,
            SentTrackInfo(
                "4", "t", "s", "video", 0x5555, 0x6666, Codec(100, "VP8", 90000), 101, sent_ext
            ),
            sink,
        )
        for sink in sinks
    ]
    assert consumers[0].lane is not None and consumers[1].lane is None
    assert producer._fan is not None and producer._slow == [consumers[1]]
    counts = 0
    for i, packet in enumerate(p for p in recorded_sequence(5, 400) if 12 <= len(p) < 1300):
        if packet[8:12] != b"\x00\x00\x22\x22":
            packet = packet[:8] + b"\x00\x00\x22\x22" + packet[12:]
        producer.forward(packet)
        if i % 50 == 49:
            for consumer in consumers:
                last = consumer.rewriter_state().last_seq
                assert last is not None
                consumer.retransmit([(last - 3) & 0xFFFF, (last - 1) & 0xFFFF, 12345])
                consumer.sender_report(
                    rtcp.SenderReport(
                        ssrc=0x2222, ntp=i << 32, rtp_timestamp=i, packet_count=0, octet_count=0
                    )
                )
    consumers[0].close()
    consumers[1].close()
    assert producer._fan is None and producer._slow == []
    fast = receivers[0]
    slow = receivers[1]
    fast.settimeout(0.2)
    slow.settimeout(0.2)
    while True:
        try:
            want = slow.recv(2048)
        except TimeoutError:
            break
        assert fast.recv(2048) == want
        counts += 1
    assert counts > 200  # media, RTX repairs and SRs
    with pytest.raises(TimeoutError):
        fast.recv(2048)
    assert consumers[0].rewriter._dump() == consumers[1].rewriter._dump()
    for s in (*receivers, *(sink.sock for sink in sinks)):
        s.close()


def test_recv_batch_unprotects_like_python() -> None:
    """SRTP → kind 1 (what SrtpSession.unprotect gives), a tampered one → kind -1 as
    received, RTCP/STUN/DTLS-like datagrams → kind 0 with their source; kernel timestamps."""
    key = os.urandom(28)
    tx = _srtp(GCM, key)
    rx = _srtp(GCM, key, pylibsrtp.Policy.SSRC_ANY_INBOUND)
    reference = _srtp(GCM, key, pylibsrtp.Policy.SSRC_ANY_INBOUND)
    receiver = _receiver()
    receiver.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_TIMESTAMPNS", 35), 1)  # Linux
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.bind(("127.0.0.1", 0))
    sender.connect(receiver.getsockname())
    packets = [build(seq=i, ssrc=0x77, payload=os.urandom(20 + i)) for i in range(40)]
    wire = [tx.protect(p) for p in packets]
    tampered = bytearray(wire[5])
    tampered[-1] ^= 1
    rtcp_packet = tx.protect_rtcp(rtcp.pli(1, 0x77))
    assert rtcp_packet is not None
    datagrams = [*wire[:5], bytes(tampered), *wire[5:], rtcp_packet, b"\x00\x01stun", b"\x16dtls"]
    for datagram in datagrams:
        assert datagram is not None
        sender.send(datagram)
    before = time.clock_gettime_ns(time.CLOCK_REALTIME)
    time.sleep(0.05)
    got: list[Any] = []
    while len(got) < len(datagrams):
        batch = native.recv_batch(receiver, 16, fastpath.srtp_context(rx))
        assert batch, "datagrams went missing"
        got.extend(batch)
    kinds = [g[0] for g in got]
    assert kinds == [1] * 5 + [-1] + [1] * 35 + [0, 0, 0]
    for (kind, data, ns, source, size), datagram in zip(got, datagrams, strict=True):
        assert size == len(datagram)
        assert before - 5_000_000_000 < ns < before + 5_000_000_000
        if kind == 1:
            assert source is None and data == reference.unprotect(datagram)
        else:
            assert data == datagram and source == sender.getsockname()
    assert native.recv_batch(receiver, 16) == []  # nothing waiting: never blocks
    sender.close()
    receiver.close()
    assert native.recv_batch(receiver, 16) == []  # a closed socket: nothing


def test_env_turns_the_fast_path_off() -> None:
    code = "from parlour.media import fastpath; print(fastpath.native is None)"
    for value, off in (("0", "True"), ("1", "False")):
        env = {**os.environ, fastpath.ENV: value}
        result = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        assert result.stdout.strip() == off


def test_egress_sends_to_ipv6_and_mapped_addresses() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        receiver = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        receiver.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback")
    receiver.settimeout(2)
    sender = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    session = _srtp(GCM, os.urandom(28))
    egress = native.Egress()
    egress.set_srtp(session, fastpath.srtp_context(session))
    host, port = receiver.getsockname()[:2]
    assert egress.set_sender(None, sender, (host, port, 0, 0)) is True  # asyncio's 4-tuple
    egress.send_rtp(build(seq=1))
    assert receiver.recv(2048) and egress.packets == 1
    # an IPv4 address on an IPv6 socket is written as IPv4-mapped
    assert egress.set_sender(None, sender, ("127.0.0.1", 9)) is True
    assert egress.set_sender(None, sender, ("fe80::1%lo", 9, 0, 1)) is True  # scope from the tuple
    receiver.close()
    sender.close()
