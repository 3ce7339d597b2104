"""Receive statistics (`parlour.media.stats`): `SeqUnwrapper`, `LossTracker`."""

from __future__ import annotations

import random

from parlour.media import rtcp
from parlour.media.rtcp import Nack
from parlour.media.stats import LossTracker, SeqUnwrapper


def test_seq_unwrapper() -> None:
    u = SeqUnwrapper()
    assert u.highest is None
    assert [u.unwrap(s) for s in (65534, 65535, 0, 65533, 1, 32768)] == [
        65534,
        65535,
        65536,
        65533,
        65537,
        98304,
    ]
    assert u.highest == 98304
    v = SeqUnwrapper()
    assert [v.unwrap(s) for s in (5, 65530, 6)] == [5, -6, 6]


def test_loss_tracker_counts_and_report() -> None:
    t = LossTracker(0x99)
    assert t.expected == 0 and t.lost == 0
    for s in [65534, 65535, 2, 3, 1]:  # 0 lost, 1 late
        t.update(s, 0, 0)
    assert t.received == 5 and t.expected == 6 and t.lost == 1
    assert t.highest_seq == 65539 and t.base_seq == 65534
    block = t.report_block(now=0.0)
    assert block.ssrc == 0x99 and block.packets_lost == 1 and block.highest_seq == 65539
    assert block.fraction_lost == (1 << 8) // 6
    assert (block.lsr, block.dlsr) == (0, 0)
    t.update(4, 0, 0)
    t.on_sender_report(0x0000_1234_5678_0000, arrival=10.0)
    block = t.report_block(now=10.5)
    assert block.fraction_lost == 0 and block.lsr == 0x12345678 and block.dlsr == 32768
    t.update(10, 0, 0)
    assert t.report_block(now=11.0).fraction_lost == (5 << 8) // 6


def test_loss_tracker_jitter_matches_rfc3550_reference() -> None:
    rng = random.Random(7)
    t = LossTracker(1)
    ref = 0.0
    prev_transit = None
    arrival = 0
    for i in range(500):
        ts = (4_294_900_000 + i * 3000) % 2**32  # wraps
        arrival += 3000 + rng.randint(-900, 900)
        t.update(i % 65536, ts, arrival)
        transit = arrival - (4_294_900_000 + i * 3000)
        if prev_transit is not None:
            ref += (abs(transit - prev_transit) - ref) / 16
        prev_transit = transit
    assert abs(t.jitter - ref) <= 1
    assert t.report_block(0).jitter == t.jitter
    t.update(3, 0, 10**9)  # late packet: no jitter update
    assert abs(t.jitter - ref) <= 1


def test_loss_tracker_nacks_with_retries_and_bounds() -> None:
    t = LossTracker(1, max_missing=5, max_retries=2)
    t.update(10, 0, 0)
    t.update(14, 0, 0)
    assert t.missing == [11, 12, 13]
    t.update(12, 0, 0)  # recovered
    assert t.nacks() == [11, 13]
    assert not t.take_keyframe_request()
    assert t.nacks() == [11, 13]  # second and last try
    assert t.nacks() == [] and t.missing == []
    assert t.take_keyframe_request() and not t.take_keyframe_request()
    t.update(18, 0, 0)  # 15, 16, 17 missing
    t.update(22, 0, 0)  # + 19, 20, 21: 6 > 5, the oldest is given up
    assert t.missing == [16, 17, 19, 20, 21]
    assert t.take_keyframe_request()
    t.update(1000, 0, 0)  # a gap bigger than the list: keep the newest only
    assert t.missing == list(range(995, 1000))
    assert t.take_keyframe_request()


def test_loss_tracker_nack_across_wrap() -> None:
    t = LossTracker(1)
    t.update(65534, 0, 0)
    t.update(2, 0, 0)
    assert t.nacks() == [65535, 0, 1]
    (parsed,) = rtcp.parse_rtcp(rtcp.nack(1, 2, t.missing))
    assert isinstance(parsed, Nack) and parsed.seqs == (65535, 0, 1)
