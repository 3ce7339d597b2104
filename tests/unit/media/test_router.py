"""Router: fan-out with per-consumer rewriting, NACK answers from the producer's history."""

from __future__ import annotations

import asyncio
import time

from parlour.media import rtp
from parlour.media.negotiation import PublishedTrackInfo, SentTrackInfo
from parlour.media.router import KEYFRAME_INTERVAL, VIDEO_HISTORY, Consumer, Producer, Router
from parlour.media.sdp import Codec

VP8 = Codec(96, "VP8", 90000)
SUB_VP8 = Codec(100, "VP8", 90000)
PUB_SSRC = 0x1111
ROUTER = Router("RM")


class Sink:
    def __init__(self) -> None:
        self.rtp: list[bytes] = []
        self.rtcp: list[bytes] = []

    def send_rtp(self, packet: bytes) -> None:
        self.rtp.append(packet)

    def send_rtcp(self, packet: bytes) -> None:
        self.rtcp.append(packet)


def producer() -> Producer:
    info = PublishedTrackInfo("1", "t", "s", "video", (VP8,), (PUB_SSRC,), (), ())
    return Router("RM").produce("PA", info, lambda ssrc: None)


def consumer(p: Producer, ssrc: int, *, rtx: bool = False) -> tuple[Consumer, Sink]:
    info = SentTrackInfo(
        "0", "t", "s", "video", ssrc, 0x9999 if rtx else None, SUB_VP8, 101 if rtx else None, ()
    )
    sink = Sink()
    return ROUTER.consume(p, info, sink), sink


def packet(seq: int, payload: bytes = b"payload") -> bytes:
    header = bytes([0x80, 96]) + seq.to_bytes(2, "big") + (seq * 3000).to_bytes(4, "big")
    return header + PUB_SSRC.to_bytes(4, "big") + payload + seq.to_bytes(2, "big")


def test_every_consumer_gets_its_own_rewritten_copy() -> None:
    p = producer()
    a, sink_a = consumer(p, 0xAAAA)
    b, sink_b = consumer(p, 0xBBBB)
    for seq in range(65530, 65536):
        p.forward(packet(seq))
    for seq in range(4):
        p.forward(packet(seq))
    for sink, ssrc in ((sink_a, 0xAAAA), (sink_b, 0xBBBB)):
        assert len(sink.rtp) == 10
        assert {rtp.ssrc(x) for x in sink.rtp} == {ssrc}
        assert {x[1] & 0x7F for x in sink.rtp} == {100}
        seqs = [rtp.seq(x) for x in sink.rtp]
        assert all((b - a) & 0xFFFF == 1 for a, b in zip(seqs, seqs[1:], strict=False))
        assert [x[12:] for x in sink.rtp] == [
            packet(s)[12:] for s in [*range(65530, 65536), *range(4)]
        ]


def test_nack_answers_are_the_packets_sent_before_from_one_shared_history() -> None:
    p = producer()
    a, sink_a = consumer(p, 0xAAAA)
    b, sink_b = consumer(p, 0xBBBB)
    for seq in range(100, 120):
        p.forward(packet(seq))
    sent_a = {rtp.seq(x): x for x in sink_a.rtp}
    wanted = sorted(sent_a)[3:6]
    a.retransmit([*wanted, (max(sent_a) + 50) & 0xFFFF])  # the last was never sent
    assert sink_a.rtp[20:] == [sent_a[s] for s in wanted]
    assert len(sink_b.rtp) == 20  # nothing for the other subscriber
    assert len(p.history._packets) == VIDEO_HISTORY  # one history, in the producer


def test_nack_answers_are_rtx_wrapped_when_negotiated() -> None:
    p = producer()
    c, sink = consumer(p, 0xCCCC, rtx=True)
    for seq in range(10):
        p.forward(packet(seq))
    original = sink.rtp[4]
    c.retransmit([rtp.seq(original)])
    repair = sink.rtp[-1]
    assert rtp.ssrc(repair) == 0x9999 and repair[1] & 0x7F == 101
    assert rtp.unwrap_rtx(repair, ssrc=0xCCCC, payload_type=100) == original


def test_packets_that_fell_out_of_the_history_are_not_resent() -> None:
    p = producer()
    c, sink = consumer(p, 0xAAAA)
    for seq in range(VIDEO_HISTORY + 10):
        p.forward(packet(seq & 0xFFFF))
    first = rtp.seq(sink.rtp[0])
    c.retransmit([first])
    assert len(sink.rtp) == VIDEO_HISTORY + 10


async def test_keyframe_requests_are_rate_limited_but_a_deferred_one_follows() -> None:
    asked: list[int] = []
    info = PublishedTrackInfo("1", "t", "s", "video", (VP8,), (PUB_SSRC,), (), ())
    p = Producer("PA", info, asked.append)
    consumer(p, 0xAAAA)
    now = time.monotonic()
    assert p.request_keyframe(now) is True
    assert p.request_keyframe(now + 0.01) is False  # within the interval: deferred
    assert p.request_keyframe(now + 0.02) is False  # coalesced with the deferred one
    assert asked == [PUB_SSRC]
    await asyncio.sleep(KEYFRAME_INTERVAL + 0.1)
    assert asked == [PUB_SSRC, PUB_SSRC]  # exactly one more, once the interval ended


async def test_no_deferred_keyframe_for_a_producer_nobody_receives_any_more() -> None:
    asked: list[int] = []
    info = PublishedTrackInfo("1", "t", "s", "video", (VP8,), (PUB_SSRC,), (), ())
    p = Producer("PA", info, asked.append)
    consumer(p, 0xAAAA)
    now = time.monotonic()
    p.request_keyframe(now)
    p.request_keyframe(now + 0.01)
    for c in p.consumers:
        c.close()
    await asyncio.sleep(KEYFRAME_INTERVAL + 0.1)
    assert asked == [PUB_SSRC]


def test_audio_producers_never_ask_for_keyframes() -> None:
    asked: list[int] = []
    opus = Codec(111, "opus", 48000, 2)
    info = PublishedTrackInfo("0", "a", "s", "audio", (opus,), (5,), (), ())
    assert Producer("PA", info, asked.append).request_keyframe(time.monotonic()) is False
    assert asked == []
