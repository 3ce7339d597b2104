"""The C forwarding path (`parlour.media._fastpath`) against the Python reference.

Same bytes out for the same bytes in: a recorded packet sequence (seeded, Chrome-like:
audio with audio-level/abs-send-time/transport-cc/MID, video with and without MID, padding,
CSRCs, two-byte blocks, SSRC changes, reordering, malformed packets) goes through a
`_fastpath.Lane` and through `rewrite.RtpRewriter` as `router.Consumer.forward` drives it;
through `FanOut.forward` to real UDP sockets on 127.0.0.1 and through `SrtpSession.protect` +
`socket.send`; and through router consumers answering NACKs and Sender Reports.
"""

from __future__ import annotations

import os
import random
import socket
import struct
from collections.abc import Iterator
from typing import Any

import pylibsrtp
import pytest

from parlour.media import fastpath, rtcp, rtp
from parlour.media.negotiation import PublishedTrackInfo, SentTrackInfo
from parlour.media.rewrite import ExtensionRewriter, RtpRewriter
from parlour.media.router import Router
from parlour.media.sdp import Codec, Extmap
from parlour.media.srtp import SrtpSession
from tests.unit.media.rtp_packets import ABS_SEND_TIME_URI, AIORTC, CHROME, TWCC_URI, build

native = fastpath.native
pytestmark = pytest.mark.skipif(native is None, reason="the C fast path is not built")

GCM = pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM
SHA1_80 = pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80

# publisher → subscriber extension maps: (publisher, subscriber, mid)
EXTENSION_PAIRS: dict[str, tuple[dict[str, int], dict[str, int], str | None]] = {
    "none": ({}, {}, None),
    "identity": (dict(CHROME), dict(CHROME), None),
    "chrome-to-aiortc+mid": (dict(CHROME), dict(AIORTC), "3"),
    "chrome-to-chrome+mid": (dict(CHROME), dict(CHROME), "12"),
    "to-high-ids (general)": (dict(CHROME), {rtp.MID_URI: 20, rtp.AUDIO_LEVEL_URI: 15}, "7"),
    "long mid (general)": (dict(CHROME), dict(AIORTC), "m" * 17),
    "no subscriber ext": (dict(CHROME), {}, "1"),
}


def recorded_sequence(seed: int, count: int = 1500) -> Iterator[bytes]:
    """A publisher's packets as an SFU receives them (deterministic for a seed)."""
    r = random.Random(seed)
    ssrc = 0x1111_0000 + seed
    seq = r.randrange(0x10000)
    ts = r.randrange(1 << 32)
    tcc = 0
    for i in range(count):
        kind = r.random()
        seq = (seq + 1) & 0xFFFF
        if r.random() < 0.3:
            ts = (ts + 3000) & 0xFFFFFFFF
        tcc = (tcc + 1) & 0xFFFF
        ext: list[tuple[int, bytes]] = []
        if kind < 0.35:  # audio-like: level, abs-send-time, transport-cc, MID early on
            ext = [(1, bytes([r.randrange(128)])), (2, os.urandom(3)), (3, tcc.to_bytes(2, "big"))]
            if i < 50:
                ext.append((4, b"0"))
        elif kind < 0.7:  # video-like: abs-send-time and transport-cc
            ext = [(2, os.urandom(3)), (3, tcc.to_bytes(2, "big"))]
            if r.random() < 0.2:
                ext.insert(0, (4, b"1"))
        size = r.choice((0, 1, 7, 100, 1000, 1180))
        packet = build(
            pt=r.choice((96, 96, 96, 111, 97)),
            marker=r.randrange(2),
            seq=seq,
            ts=ts,
            ssrc=ssrc,
            ext=ext or None,
            csrcs=(0xC5C5,) if r.random() < 0.03 else (),
            payload=os.urandom(size),
            padding=r.choice((0, 0, 0, 0, 1, 4, 200)) if r.random() < 0.1 else 0,
        )
        roll = r.random()
        if roll < 0.01:
            packet = packet[: r.randrange(1, 16)]  # truncated
        elif roll < 0.015 and len(packet) > 13:
            packet = packet[:-1] + b"\xff"  # padding count past the payload if P is set
        elif roll < 0.02:
            ssrc ^= 0x10000  # the publisher restarted
        elif roll < 0.03:
            seq = (seq - r.randrange(1, 5)) & 0xFFFF  # reordered
        elif roll < 0.035:  # a two-byte block
            body = bytes([1, 2, 0xAB, 0xCD, 2, 3, 1, 2, 3, 0])
            packet = (
                bytes([0x90, 96])
                + seq.to_bytes(2, "big")
                + ts.to_bytes(4, "big")
                + ssrc.to_bytes(4, "big")
                + struct.pack("!HH", 0x1000, len(body) // 4 + 1)
                + body
                + b"\x00\x00"
                + os.urandom(20)
            )
        yield packet


def pt_table(pt_map: dict[int, int]) -> bytes:
    table = bytearray(b"\xff" * 128)
    for src, dst in pt_map.items():
        table[src] = dst
    return bytes(table)


def python_forward(rewriter: RtpRewriter, pt_map: dict[int, int], packet: bytes) -> bytes | None:
    """`router.Consumer.forward`, up to `send_rtp`."""
    out_pt = pt_map.get(packet[1] & 0x7F) if len(packet) > 1 else None
    if out_pt is None:
        return None
    rewriter.payload_type = out_pt
    try:
        return rewriter.rewrite(packet)
    except rtp.RtpError:
        return None


def pair(name: str) -> tuple[RtpRewriter, Any, dict[int, int]]:
    publisher, subscriber, mid = EXTENSION_PAIRS[name]
    pt_map = {96: 100, 111: 101}
    reference = RtpRewriter(
        0xABCD0001, 100, extensions=ExtensionRewriter(publisher, subscriber, mid=mid)
    )
    twin = RtpRewriter(
        0xABCD0001, 100, extensions=ExtensionRewriter(publisher, subscriber, mid=mid)
    )
    lane = native.Lane(native.Egress(), pt_table(pt_map), twin.extensions)
    lane.load(twin._dump())
    return reference, lane, pt_map


@pytest.mark.parametrize("name", list(EXTENSION_PAIRS))
@pytest.mark.parametrize("seed", [1, 2])
def test_lane_rewrites_a_recorded_sequence_byte_for_byte(name: str, seed: int) -> None:
    reference, lane, pt_map = pair(name)
    out_count = 0
    for i, packet in enumerate(recorded_sequence(seed)):
        expected = python_forward(reference, pt_map, packet)
        got = lane.rewrite(packet)
        assert got == expected, f"packet {i}: {packet.hex()}"
        out_count += expected is not None
        if i % 97 == 0:  # a source switch decided in Python, mid-stream
            reference.switch_source(i * 7 if i % 2 else None)
            twin = RtpRewriter(1, 0)
            twin._load(lane.dump())
            twin.switch_source(i * 7 if i % 2 else None)
            lane.load(twin._dump())
        assert lane.dump() == tuple(
            int(v) if isinstance(v, bool) else v for v in reference._dump()
        ), f"state after packet {i}"
    assert out_count > 1000  # the sequence mostly forwards


def test_lane_state_round_trips_through_the_python_rewriter() -> None:
    rewriter = RtpRewriter(7, 100, seq_offset=123, ts_offset=2**32 - 5, switch_step=77)
    rewriter.switch_source(-3)
    lane = native.Lane(native.Egress(), pt_table({96: 100}), None)
    lane.load(rewriter._dump())
    back = RtpRewriter(1, 0)
    back._load(lane.dump())
    assert back._dump() == rewriter._dump()
    with pytest.raises(TypeError):
        lane.load(("not", "a", "state"))
    with pytest.raises(ValueError):
        native.Lane(native.Egress(), b"\xff" * 10, None)


def _srtp(profile: int, key: bytes) -> SrtpSession:
    policy = pylibsrtp.Policy(
        key=key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile
    )
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
