"""Simulcast forwarding against constructed VP8 simulcast streams: one layer per consumer,
switches only at keyframes, one seamless output stream (seq, timestamp, SSRC, PictureID,
TL0PICIDX), temporal-layer dropping, NACK answers from the right layer.

Every router-level test runs twice: subscribers forwarded in Python (the reference) and
subscribers with a C send side (`_fastpath` lanes in each layer's fan-out, SRTP-protected,
decrypted again here); `test_the_c_fan_out_sends_what_python_sends` compares them packet by
packet on one recorded sequence of switches, pauses and temporal limits."""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

import pylibsrtp
import pytest

from parlour.media import fastpath, rtp, simulcast
from parlour.media.negotiation import PublishedTrackInfo, SentTrackInfo
from parlour.media.rewrite import RtpRewriter
from parlour.media.router import Consumer, Producer, Router
from parlour.media.sdp import Codec
from parlour.media.srtp import SrtpSession
from tests.unit.media.rtp_packets import build

VP8 = Codec(96, "VP8", 90000)
SUB_VP8 = Codec(100, "VP8", 90000)
SSRCS = (0x1000, 0x2000, 0x3000)
SIZES = ((320, 180), (640, 360), (1280, 720))
TEMPORAL = (0, 2, 1, 2)  # libwebrtc's three-layer pattern


def vp8_payload(
    *, pic: int, tl0: int, tid: int, start: bool = True, key: bool = False, size=(0, 0)
) -> bytes:
    """A VP8 payload descriptor (X, I with 15-bit PictureID, L, T) and a frame header."""
    b0 = 0x80 | (0x10 if start else 0)
    desc = bytes([b0, 0xE0, 0x80 | (pic >> 8), pic & 0xFF, tl0, (tid << 6) | 0x20])
    if not start:
        return desc + b"\xaa" * 20
    if key:
        w, h = size
        return desc + b"\x50\x01\x00\x9d\x01\x2a" + struct.pack("<HH", w, h) + b"\xbb" * 20
    return desc + b"\x31\x01\x00" + b"\xcc" * 20


@dataclass
class LayerStream:
    """One simulcast layer's encoder: its own seq, timestamp, PictureID and TL0PICIDX."""

    index: int
    seq: int
    ts: int
    pic: int
    tl0: int
    frame: int = 0
    sent: list[bytes] = field(default_factory=list)

    def frame_packets(self, *, key: bool = False, packets: int = 1) -> list[bytes]:
        tid = 0 if key else TEMPORAL[self.frame % len(TEMPORAL)]
        if tid == 0:
            self.tl0 = (self.tl0 + 1) & 0xFF
        out = []
        for i in range(packets):
            payload = vp8_payload(
                pic=self.pic,
                tl0=self.tl0,
                tid=tid,
                start=i == 0,
                key=key,
                size=SIZES[self.index],
            )
            out.append(
                build(
                    pt=96,
                    marker=int(i == packets - 1),
                    seq=self.seq,
                    ts=self.ts,
                    ssrc=SSRCS[self.index],
                    payload=payload,
                )
            )
            self.seq = (self.seq + 1) & 0xFFFF
        self.pic = (self.pic + 1) & 0x7FFF
        self.ts = (self.ts + 3000) & 0xFFFFFFFF
        self.frame += 1
        self.sent.extend(out)
        return out


class Sink:
    def __init__(self) -> None:
        self.rtp: list[bytes] = []

    def send_rtp(self, packet: bytes) -> None:
        self.rtp.append(packet)

    def send_rtcp(self, packet: bytes) -> None:
        pass


class LaneSink(Sink):
    """A subscriber transport with a C send side, as `dtls.DtlsSrtpTransport` has: what its
    `Egress` protects is decrypted back into ``rtp`` (a repeat, which libsrtp's replay check
    refuses, is the same ciphertext as the first time: looked up)."""

    PROFILE = pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80

    def __init__(self) -> None:
        super().__init__()
        key = os.urandom(30)
        tx = pylibsrtp.Policy(
            key=key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND, srtp_profile=self.PROFILE
        )
        tx.allow_repeat_tx = True
        self._tx = SrtpSession(tx)
        rx = pylibsrtp.Policy(
            key=key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND, srtp_profile=self.PROFILE
        )
        self._rx = pylibsrtp.Session(rx)
        self._seen: dict[bytes, bytes] = {}
        self.egress = fastpath.native.Egress(self._received)
        self.egress.set_srtp(self._tx, fastpath.srtp_context(self._tx))

    def _received(self, datagram: bytes) -> None:
        plain = self._seen.get(datagram)
        if plain is None:
            plain = self._rx.unprotect(datagram)
            self._seen[datagram] = plain
        self.rtp.append(plain)

    def send_rtp(self, packet: bytes) -> None:
        self.egress.send_rtp(packet)


SINK_KINDS = ["python"] + (["c"] if fastpath.native is not None else [])
_sink_kind = "python"


@pytest.fixture(autouse=True, params=SINK_KINDS)
def sink_kind(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run each test with Python-forwarded subscribers and with C lanes."""
    global _sink_kind
    _sink_kind = request.param
    yield request.param
    _sink_kind = "python"


def make_sink(kind: str | None = None) -> Sink:
    return LaneSink() if (kind or _sink_kind) == "c" else Sink()


def setup() -> tuple[Producer, list[int], list[LayerStream]]:
    info = PublishedTrackInfo("1", "t", "s", "video", (VP8,), SSRCS, (), ())
    plis: list[int] = []
    producer = Router("RM").produce("PA", info, plis.append)
    streams = [
        LayerStream(0, seq=65500, ts=0xFFFFF000, pic=32700, tl0=250),
        LayerStream(1, seq=1000, ts=5000, pic=10, tl0=3),
        LayerStream(2, seq=30000, ts=123456, pic=20000, tl0=100),
    ]
    return producer, plis, streams


def consume(producer: Producer, ssrc: int = 0xAAAA) -> tuple[Consumer, Sink]:
    info = SentTrackInfo("0", "t", "s", "video", ssrc, None, SUB_VP8, None, ())
    sink = make_sink()
    consumer = Router("RM").consume(producer, info, sink)
    assert (consumer.lane is not None) == (_sink_kind == "c")
    return consumer, sink


def feed(producer: Producer, streams: list[LayerStream], frames: int, *, key: bool = False) -> None:
    """``frames`` frames of every layer, interleaved as an encoder sends them."""
    for n in range(frames):
        for stream in streams:
            for packet in stream.frame_packets(key=key and n == 0, packets=1 + n % 3):
                producer.forward(packet)


def descriptor(packet: bytes) -> simulcast.Vp8Descriptor:
    d = simulcast.parse_vp8_descriptor(packet, simulcast.payload_offset(packet))
    assert d is not None
    return d


def assert_seamless(out: list[bytes]) -> None:
    """One stream: one SSRC, consecutive seqs, rising timestamps, PictureID +1 per frame."""
    assert len({rtp.ssrc(p) for p in out}) == 1
    seqs = [rtp.seq(p) for p in out]
    assert all((b - a) & 0xFFFF == 1 for a, b in zip(seqs, seqs[1:], strict=False)), seqs
    ts = [rtp.timestamp(p) for p in out]
    assert all(0 <= (b - a) & 0xFFFFFFFF < 0x80000000 for a, b in zip(ts, ts[1:], strict=False))
    starts = [descriptor(p) for p in out if descriptor(p).start]
    pics = [d.picture_id for d in starts]
    assert all((b - a) & 0x7FFF == 1 for a, b in zip(pics, pics[1:], strict=False)), pics
    tl0s = [d.tl0 for d in starts]
    assert all((b - a) & 0xFF in (0, 1) for a, b in zip(tl0s, tl0s[1:], strict=False)), tl0s


def test_layers_are_learned_from_the_sim_group_and_keyframes() -> None:
    producer, _, streams = setup()
    assert [layer.ssrc for layer in producer.layers] == list(SSRCS)
    feed(producer, streams, 4, key=True)
    assert [(layer.width, layer.height) for layer in producer.layers] == list(SIZES)
    assert [layer.keyframes for layer in producer.layers] == [1, 1, 1]
    assert producer.top_layer == 2
    producer.measure(1.0)
    assert all(layer.bitrate > 0 for layer in producer.layers)
    assert producer.bitrate == sum(layer.bitrate for layer in producer.layers)


def test_a_consumer_forwards_one_layer_from_its_first_keyframe() -> None:
    producer, plis, streams = setup()
    feed(producer, streams, 2)  # layers arrive (no keyframe yet)
    consumer, sink = consume(producer)
    assert consumer.target_layer == 2  # the best layer arriving
    consumer.set_layers(1, 2, now=100.0)
    assert plis == [SSRCS[1]]  # a keyframe of the target, asked for
    feed(producer, streams, 3)
    assert sink.rtp == []  # nothing decodable yet
    for packet in streams[1].frame_packets(key=True, packets=2):
        producer.forward(packet)
    feed(producer, streams, 8)
    assert consumer.layer == 1
    assert sink.rtp and all(p[12:] for p in sink.rtp)
    assert {p[12:] for p in sink.rtp} <= {p[12:] for p in streams[1].sent}
    assert_seamless(sink.rtp)


@pytest.mark.parametrize(("first", "second"), [(0, 2), (2, 0), (1, 0)])
def test_switching_layers_keeps_one_seamless_stream(first: int, second: int) -> None:
    producer, plis, streams = setup()
    feed(producer, streams, 2)
    consumer, sink = consume(producer)
    consumer.set_layers(first, 2, now=100.0)
    for packet in streams[first].frame_packets(key=True):
        producer.forward(packet)
    feed(producer, streams, 9)
    before = len(sink.rtp)
    consumer.set_layers(second, 2, now=200.0)
    assert plis[-1] == SSRCS[second]
    feed(producer, streams, 5)  # still the old layer until the new one's keyframe
    assert consumer.layer == first
    assert {p[12:] for p in sink.rtp[before:]} <= {p[12:] for p in streams[first].sent}
    for packet in streams[second].frame_packets(key=True, packets=3):
        producer.forward(packet)
    feed(producer, streams, 9)
    assert consumer.layer == second
    assert consumer.switch is not None and consumer.switch.switches == 2
    assert_seamless(sink.rtp)
    keyframes = [i for i, p in enumerate(sink.rtp) if simulcast.vp8_keyframe_size(p, 12)]
    assert len(keyframes) == 2
    assert simulcast.vp8_keyframe_size(sink.rtp[keyframes[1]], 12) == SIZES[second]


def test_temporal_layers_are_dropped_without_holes_and_raised_at_a_base_frame() -> None:
    producer, _, streams = setup()
    feed(producer, streams, 1)
    consumer, sink = consume(producer)
    consumer.set_layers(0, 0, now=100.0)
    for packet in streams[0].frame_packets(key=True):
        producer.forward(packet)
    feed(producer, streams, 12)
    tids = {descriptor(p).tid for p in sink.rtp}
    assert tids == {0}
    seqs = [rtp.seq(p) for p in sink.rtp]
    assert all((b - a) & 0xFFFF == 1 for a, b in zip(seqs, seqs[1:], strict=False))
    consumer.set_layers(0, 2, now=101.0)
    n = len(sink.rtp)
    feed(producer, streams, 12)
    later = sink.rtp[n:]
    assert descriptor(later[0]).tid == 0  # raised at a base-layer frame start
    assert {descriptor(p).tid for p in later} == {0, 1, 2}
    seqs = [rtp.seq(p) for p in sink.rtp]
    assert all((b - a) & 0xFFFF == 1 for a, b in zip(seqs, seqs[1:], strict=False))


def test_nacks_are_answered_from_the_forwarded_layer_with_its_rewrites() -> None:
    producer, _, streams = setup()
    feed(producer, streams, 1)
    consumer, sink = consume(producer)
    consumer.set_layers(0, 2, now=100.0)
    for packet in streams[0].frame_packets(key=True):
        producer.forward(packet)
    feed(producer, streams, 4)
    consumer.set_layers(2, 2, now=101.0)
    for packet in streams[2].frame_packets(key=True):
        producer.forward(packet)
    feed(producer, streams, 4)
    sent = {rtp.seq(p): p for p in sink.rtp}
    wanted = sorted(sent, key=lambda s: (s - rtp.seq(sink.rtp[0])) & 0xFFFF)[-3:]
    n = len(sink.rtp)
    consumer.retransmit(wanted)
    assert sink.rtp[n:] == [sent[s] for s in wanted]


def test_pause_and_resume_restart_at_a_keyframe_with_continuous_numbers() -> None:
    producer, plis, streams = setup()
    feed(producer, streams, 1)
    consumer, sink = consume(producer)
    consumer.set_layers(1, 2, now=100.0)
    for packet in streams[1].frame_packets(key=True):
        producer.forward(packet)
    feed(producer, streams, 4)
    consumer.pause()
    feed(producer, streams, 4)
    n = len(sink.rtp)
    assert n > 0
    consumer.resume(now=200.0)
    assert plis[-1] == SSRCS[1]
    feed(producer, streams, 3)
    assert len(sink.rtp) == n  # mid-GOP: nothing until a keyframe
    for packet in streams[1].frame_packets(key=True):
        producer.forward(packet)
    feed(producer, streams, 3)
    assert len(sink.rtp) > n
    assert_seamless(sink.rtp)


def test_an_inactive_target_falls_back_to_the_best_layer_arriving() -> None:
    producer, plis, streams = setup()
    feed(producer, streams[:2], 2)  # the top layer never arrives
    consumer, _ = consume(producer)
    assert consumer.target_layer == 1
    now = producer.layers[0].last_at
    consumer.set_layers(2, 2, now=now)
    assert consumer.target_layer == 1
    assert producer.best_layer(2, now + 5) == 2  # nothing arrives any more: as wanted
    assert producer.best_layer(0, now) == 0
    producer.layers[0].last_at = -1e9
    assert producer.best_layer(0, now) == 1  # the lowest arriving above


def test_keyframe_requests_are_per_layer_and_rate_limited() -> None:
    producer, plis, streams = setup()
    feed(producer, streams, 1)
    assert producer.request_keyframe(10.0, producer.layers[0])
    assert not producer.request_keyframe(10.1, producer.layers[0])
    assert producer.request_keyframe(10.1, producer.layers[2])
    assert producer.request_keyframe(10.5)  # the top layer (the recording's)
    assert plis == [SSRCS[0], SSRCS[2], SSRCS[2]]


def test_the_recording_tap_gets_one_layer_from_a_keyframe_of_the_top() -> None:
    producer, _, streams = setup()

    class Tap:
        def __init__(self) -> None:
            self.packets: list[bytes] = []

        def feed(self, packet: bytes) -> None:
            self.packets.append(packet)

        def close(self) -> None:
            pass

    tap = Tap()
    feed(producer, streams, 2)
    producer.set_tap(tap)
    feed(producer, streams, 2)
    assert tap.packets == []
    for packet in streams[2].frame_packets(key=True):
        producer.forward(packet)
    feed(producer, streams, 3)
    assert tap.packets and {rtp.ssrc(p) for p in tap.packets} == {SSRCS[2]}


# -- pure pieces ------------------------------------------------------------------------------


def test_descriptor_parsing_and_truncation() -> None:
    payload = vp8_payload(pic=300, tl0=7, tid=1)
    d = simulcast.parse_vp8_descriptor(payload, 0)
    assert d is not None
    assert (d.picture_id, d.picture_id_bits, d.tl0, d.tid, d.sync, d.start, d.size) == (
        300,
        15,
        7,
        1,
        True,
        True,
        6,
    )
    for cut in range(1, 6):
        assert simulcast.parse_vp8_descriptor(payload[:cut], 0) is None
    assert simulcast.parse_vp8_descriptor(b"", 0) is None
    short = simulcast.parse_vp8_descriptor(bytes([0x90, 0x80, 0x05]) + b"x", 0)
    assert short is not None and (short.picture_id, short.picture_id_bits, short.tl0) == (5, 7, -1)
    plain = simulcast.parse_vp8_descriptor(bytes([0x10]) + b"x", 0)
    assert plain is not None and (plain.picture_id, plain.size) == (-1, 1)


def test_keyframe_size_only_for_the_first_packet_of_a_keyframe() -> None:
    key = vp8_payload(pic=1, tl0=1, tid=0, key=True, size=(640, 360))
    assert simulcast.vp8_keyframe_size(key, 0) == (640, 360)
    assert simulcast.vp8_keyframe_size(vp8_payload(pic=1, tl0=1, tid=0), 0) is None
    assert simulcast.vp8_keyframe_size(vp8_payload(pic=1, tl0=1, tid=0, start=False), 0) is None
    assert simulcast.vp8_keyframe_size(key[:10], 0) is None
    bad = bytearray(key)
    bad[9] = 0  # not the start code
    assert simulcast.vp8_keyframe_size(bytes(bad), 0) is None


def test_payload_offset_skips_csrcs_and_extensions() -> None:
    packet = build(ext=[(1, b"\x01\x02")], csrcs=(1, 2), payload=b"PAYLOAD")
    assert packet[simulcast.payload_offset(packet) :] == b"PAYLOAD"
    assert simulcast.payload_offset(b"\x80") == 1
    assert simulcast.payload_offset(packet[:20]) == 20


def test_seven_bit_picture_ids_wrap_at_128() -> None:
    rewriter = simulcast.Vp8Rewriter()

    def pkt(pic: int, tl0: int) -> bytes:
        return build(payload=bytes([0x90, 0xC0, pic, tl0, 0x10, 0x00, 0x00]))

    rewriter.switched(pkt(3, 9), 12, pkt(126, 200), 12)
    assert rewriter.offsets == ((127 - 3) & 0x7F, (201 - 9) & 0xFF)
    out = rewriter.rewrite(pkt(3, 9), 12)
    d = descriptor(out)
    assert (d.picture_id, d.tl0) == (127, 201)
    d = descriptor(rewriter.rewrite(pkt(4, 9), 12))
    assert d.picture_id == 0
    rewriter.switched(pkt(3, 9), 12, None, 0)  # nothing known: the offsets stay
    assert rewriter.offsets == ((127 - 3) & 0x7F, (201 - 9) & 0xFF)
    fresh = simulcast.Vp8Rewriter()
    assert not fresh.active and fresh.rewrite(pkt(3, 9), 12) == pkt(3, 9)


def test_layer_switch_state_machine() -> None:
    switch = simulcast.LayerSwitch(1)
    assert switch.waiting
    assert not switch.accept(1, keyframe=False)
    assert not switch.accept(0, keyframe=True)
    assert switch.accept(1, keyframe=True) and switch.switched
    assert switch.accept(1, keyframe=False) and not switch.switched
    assert not switch.set_target(1)
    assert switch.set_target(0)
    switch.restart()
    assert switch.current == simulcast.NO_LAYER


def test_timestamp_step_follows_the_source_when_layers_share_a_clock() -> None:
    assert simulcast.ts_step(3000, 2900, 90000) == 3000
    assert simulcast.ts_step(-5, 0, 90000) == 1
    assert simulcast.ts_step(1_000_000, 2700, 90000) == 2700
    assert simulcast.ts_step(1_000_000, -20, 90000) == 1


def test_skip_compacts_only_in_order_packets() -> None:
    rewriter = RtpRewriter(0xAAAA, 100)
    out = [rewriter.rewrite(build(seq=10, ts=1))]
    rewriter.skip(build(seq=11, ts=2))
    rewriter.skip(build(seq=20, ts=3))  # out of order: ignored
    rewriter.skip(build(seq=12, ts=3, ssrc=0x2222))  # not the source: ignored
    rewriter.skip(b"\x80")
    out.append(rewriter.rewrite(build(seq=12, ts=3)))
    assert [rtp.seq(p) for p in out] == [10, 11]


def test_probe_packets_are_retransmissions_of_the_last_packets_sent() -> None:
    producer, _, streams = setup()
    feed(producer, streams, 1)
    info = SentTrackInfo("0", "t", "s", "video", 0xAAAA, 0xBBBB, SUB_VP8, 101, ())
    sink = make_sink()
    consumer = Router("RM").consume(producer, info, sink)
    assert consumer.probe_packets(3) == []  # nothing sent yet
    consumer.set_layers(0, 2, now=100.0)
    for packet in streams[0].frame_packets(key=True):
        producer.forward(packet)
    feed(producer, streams, 6)
    probes = consumer.probe_packets(3)
    assert [rtp.ssrc(p) for p in probes] == [0xBBBB] * 3
    assert [p[1] & 0x7F for p in probes] == [101] * 3
    originals = [int.from_bytes(p[12:14], "big") for p in probes]  # RTX: original seq first
    assert originals == [rtp.seq(p) for p in sink.rtp[-3:]]
    assert consumer.probe_packets(0) == []
    consumer.pause()
    assert consumer.probe_packets(3) == []


def test_h264_simulcast_switches_at_idr_frames_without_vp8_rewriting() -> None:
    h264 = Codec(102, "H264", 90000, parameters=(("packetization-mode", "1"),))
    info = PublishedTrackInfo("1", "t", "s", "video", (h264,), SSRCS[:2], (), ())
    plis: list[int] = []
    producer = Router("RM").produce("PA", info, plis.append)
    sent = SentTrackInfo("0", "t", "s", "video", 0xAAAA, None, Codec(100, "H264", 90000), None, ())
    sink = Sink()
    seqs = [100, 5000]

    def frame(layer: int, idr: bool, ts: int) -> None:
        nal = bytes([0x65 if idr else 0x41]) + b"\x00" * 50  # IDR slice / non-IDR slice
        producer.forward(build(pt=102, seq=seqs[layer], ts=ts, ssrc=SSRCS[layer], payload=nal))
        seqs[layer] += 1

    for layer in (0, 1):
        frame(layer, False, 0)
    consumer = Router("RM").consume(producer, sent, sink)
    assert consumer.vp8 is None and consumer.target_layer == 1
    consumer.set_layers(0, 2, now=1.0)
    assert plis == [SSRCS[0]]
    frame(0, False, 3000)
    assert sink.rtp == []
    frame(0, True, 6000)
    frame(1, False, 6000)
    frame(0, False, 9000)
    assert len(sink.rtp) == 2
    consumer.set_layers(1, 2, now=2.0)
    frame(1, True, 12000)
    frame(0, False, 12000)
    frame(1, False, 15000)
    assert consumer.layer == 1 and len(sink.rtp) == 4
    seqs_out = [rtp.seq(p) for p in sink.rtp]
    assert seqs_out == [seqs_out[0] + i for i in range(4)]
    assert [p[12] & 0x1F for p in sink.rtp] == [5, 1, 5, 1]


@pytest.mark.skipif(fastpath.native is None, reason="the C fast path is not built")
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_c_fan_out_sends_what_python_sends(seed: int) -> None:
    """Two subscribers of one producer, one forwarded in Python, one through the layers'
    C fan-outs, through a seeded run of layer switches, temporal limits (which move the C
    one to Python and back), pauses, NACKs and keyframes: the same bytes, packet by packet."""
    import random

    rng = random.Random(seed)
    producer, _, streams = setup()
    feed(producer, streams, 1)
    info = SentTrackInfo("0", "t", "s", "video", 0xAAAA, 0xBBBB, SUB_VP8, 101, ())
    python_sink, c_sink = make_sink("python"), make_sink("c")
    router = Router("RM")
    reference = router.consume(producer, info, python_sink)
    fast = router.consume(producer, info, c_sink)
    assert reference.lane is None and fast.lane is not None
    now = 100.0
    in_c = 0
    for step in range(120):
        now += 0.5
        action = rng.random()
        if action < 0.25:
            spatial, temporal = rng.choice([None, 0, 1, 2]), rng.choice([0, 1, 2, 2, 2])
            for consumer in (reference, fast):
                consumer.set_layers(spatial, temporal, now)
        elif action < 0.3 and not fast.paused:
            reference.pause()
            fast.pause()
            fast._paused_at = reference._paused_at  # one clock reading for both
        elif action < 0.4 and fast.paused:
            reference.resume(now)
            fast.resume(now)
        elif action < 0.5 and python_sink.rtp:
            seqs = [rtp.seq(p) for p in python_sink.rtp[-rng.randrange(1, 8) :]]
            reference.retransmit(seqs)
            fast.retransmit(seqs)
        elif action < 0.6:
            for consumer in (reference, fast):
                consumer.retarget(now)
        key = rng.random() < 0.2
        layer = rng.randrange(3)
        for packet in streams[layer].frame_packets(key=key, packets=rng.randrange(1, 4)):
            producer.forward(packet)
        feed(producer, streams, rng.randrange(1, 4))
        in_c += fast.lane is not None and fast in producer.by_layer[max(fast.layer, 0)]
        assert c_sink.rtp == python_sink.rtp, f"step {step}"
    assert len(python_sink.rtp) > 100
    assert in_c > 20  # the C fan-out did forward for a good part of the run
    lane = fast.lane
    for _ in range(3):  # end on a stretch in C, whatever the run left
        for consumer in (reference, fast):
            consumer.set_layers(1, 2, now)
        for packet in streams[1].frame_packets(key=True):
            producer.forward(packet)
        feed(producer, streams, 4)
        now += 1
        for consumer in (reference, fast):
            consumer.retarget(now)
    lane = fast.lane
    assert lane is not None and lane.packets > 0
    assert c_sink.rtp == python_sink.rtp
    assert reference.rewriter_state()._dump() == fast.rewriter_state()._dump()
