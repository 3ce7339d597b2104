"""The C forwarding path (`parlour.media._fastpath`) against the Python reference: rewriting.

Same bytes out for the same bytes in: a recorded packet sequence (seeded, Chrome-like:
audio with audio-level/abs-send-time/transport-cc/MID, video with and without MID, padding,
CSRCs, two-byte blocks, SSRC changes, reordering, malformed packets) goes through a
`_fastpath.Lane` and through `rewrite.RtpRewriter` as `router.Consumer.forward` drives it.
With SRTP, sockets and the router: tests/integration/media/test_fastpath_forwarding.py.
"""

from __future__ import annotations

import os
import random
import struct
import time
from collections.abc import Iterator
from typing import Any

import pylibsrtp
import pytest

from parlour.media import fastpath, rtp
from parlour.media.rewrite import ExtensionRewriter, RtpRewriter, TransportCc
from parlour.media.stats import LossTracker
from tests.unit.media.rtp_packets import AIORTC, CHROME, build

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


@pytest.mark.parametrize("name", list(EXTENSION_PAIRS))
def test_lane_stamps_transport_wide_numbers_like_python(name: str) -> None:
    """With transport-wide CC: the same stamped packets, and the same sends recorded (the
    lanes' log, drained, against `TransportCc.record`), numbering shared with Python."""
    publisher, subscriber, mid = EXTENSION_PAIRS[name]
    pt_map = {96: 100, 111: 101}
    recorded: list[tuple[int, float, int, int]] = []
    reference = RtpRewriter(9, 100, extensions=ExtensionRewriter(publisher, subscriber, mid=mid))
    reference.transport_cc = TransportCc(5, lambda *a: recorded.append(a), lambda: 0.0)
    drained: list[tuple[int, float, int, int]] = []
    state = native.Tcc(5)
    shared = TransportCc(5, lambda *a: drained.append(a), time.monotonic, state)
    twin = RtpRewriter(9, 100, extensions=ExtensionRewriter(publisher, subscriber, mid=mid))
    twin.transport_cc = shared
    lane = native.Lane(native.Egress(), pt_table(pt_map), twin.extensions, state)
    lane.load(twin._dump())
    before = time.monotonic()
    for i, packet in enumerate(recorded_sequence(7, 600)):
        if i % 50 == 10:  # the probe cluster set while probing
            reference.transport_cc.cluster = shared.cluster = i
        expected = python_forward(reference, pt_map, packet)
        if i % 40 == 39:  # a packet sent by Python (a repair): numbering stays shared
            twin._load(lane.dump())
            got = python_forward(twin, pt_map, packet)
            lane.load(twin._dump())
        else:
            got = lane.rewrite(packet)
        assert got == expected, f"packet {i}: {packet.hex()}"
    shared.drain()
    assert [(s, n, c) for s, _, n, c in sorted(drained)] == [
        (s, n, c) for s, _, n, c in sorted(recorded)
    ]
    assert all(before <= t <= time.monotonic() for _, t, _, _ in drained)
    assert shared.seq == reference.transport_cc.seq == len(recorded) & 0xFFFF
    assert state.drain() == []


def test_tcc_log_keeps_the_latest_sends() -> None:
    state = native.Tcc(3)
    lane = native.Lane(native.Egress(), pt_table({96: 100}), None, state)
    for seq in range(5000):
        assert lane.rewrite(build(seq=seq)) is not None
    log = state.drain()
    assert len(log) == 4096 and log[0][0] == 5000 - 4096 and log[-1][0] == 4999
    assert state.seq == 5000
    with pytest.raises(ValueError):
        native.Tcc(15)
    with pytest.raises(TypeError):
        native.Lane(native.Egress(), pt_table({}), None, "not a Tcc")


def test_fanout_takes_any_buffer_and_drops_what_it_cannot_protect() -> None:
    egress = native.Egress()  # not keyed: every packet is rewritten, then dropped and counted
    lanes = [native.Lane(egress, pt_table({96: 100}), None) for _ in range(3)]
    fan = native.FanOut(lanes)
    packet = build(seq=7)
    fan.forward(packet)
    fan.forward(bytearray(packet))
    fan.forward(memoryview(packet))
    fan.forward(build(pt=111))  # a payload type nobody forwards
    assert egress.dropped == 9 and egress.packets == 0
    assert all(lane.packets == 3 for lane in lanes)
    with pytest.raises(TypeError):
        fan.forward(5)
    with pytest.raises(TypeError):
        native.FanOut(["not a lane"])
    fan.lanes = lanes[:1]
    assert fan.lanes == (lanes[0],)


def test_lane_shifts_vp8_numbering_like_the_python_rewriter() -> None:
    """`Lane.vp8_pic_off`/`vp8_tl0_off` against `simulcast.Vp8Rewriter.rewrite`: 7- and
    15-bit PictureIDs, with and without TL0PICIDX, extensions and CSRCs, every truncation."""
    from parlour.media import simulcast

    descriptors = [
        bytes([0x90, 0xE0, 0x80 | 0x7F, 0xF0, 0xFE, 0x40]),  # 15-bit PictureID, L, T
        bytes([0x90, 0xC0, 0x7E, 0x09]),  # 7-bit PictureID, L
        bytes([0x90, 0x80, 0x05]),  # 7-bit PictureID only
        bytes([0x90, 0x40, 0xFF]),  # TL0PICIDX only
        bytes([0x90, 0x20, 0x80]),  # T only
        bytes([0x10]),  # no X
    ]
    vp8 = simulcast.Vp8Rewriter()
    last = build(payload=bytes([0x90, 0xC0, 0x7E, 0x10, 0x40]))
    first = build(payload=bytes([0x90, 0xE0, 0x80, 0x03, 0x20, 0x40]))
    vp8.switched(first, 12, last, 12)  # 7 → 15 bits: offsets from the descriptors
    for pic_off, tl0_off in [vp8.offsets, (0x7FFF, 0xFF), (1, 0), (0, 1), (300, 200)]:
        vp8._pic_off, vp8._tl0_off = pic_off, tl0_off
        for kwargs in [{}, {"ext": [(1, b"\x01\x02")]}, {"csrcs": (1, 2)}]:
            for descriptor in descriptors:
                payload = descriptor + b"\x9d\x01\x2a"
                for cut in range(len(payload) + 1):
                    packet = build(seq=cut, payload=payload[:cut], **kwargs)
                    lane = native.Lane(native.Egress(), pt_table({96: 100}), None)
                    lane.vp8_pic_off, lane.vp8_tl0_off = pic_off, tl0_off
                    plain = RtpRewriter(0xABCD0001, 100)
                    lane.load(plain._dump())
                    expected = plain.rewrite(packet)
                    expected = vp8.rewrite(expected, simulcast.payload_offset(expected))
                    assert lane.rewrite(packet) == expected, (packet.hex(), pic_off, tl0_off)


def _tracker_state(tracker: LossTracker) -> tuple[Any, ...]:
    return (
        tracker._unwrapper.highest,
        tracker.received,
        tracker.base_seq,
        tracker.highest_seq,
        dict(tracker._missing),
        tracker._keyframe,
        tracker._jitter16,
        tracker._transit,
        tracker.lost,
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_loss_update_in_c_keeps_the_trackers_state_like_python(seed: int) -> None:
    """`_fastpath.loss_update` (what a receive route does: the next packet in order in C,
    on the tracker's own attributes, the rest by `LossTracker.update`) against the Python
    method alone, state compared after every packet: runs in order, gaps, reordering,
    duplicates, wrap-arounds, jumps past the missing limit, timestamps wrapping."""
    r = random.Random(seed)
    python, c = LossTracker(1, max_missing=32), LossTracker(1, max_missing=32)
    seq, ts, arrival = r.randrange(0x10000), r.randrange(1 << 32), r.randrange(1 << 40)
    in_c = 0
    for _ in range(5000):
        roll = r.random()
        if roll < 0.05:
            step = r.randrange(2, 5)  # a gap
        elif roll < 0.08:
            step = -r.randrange(0, 6)  # reordered or duplicated
        elif roll < 0.085:
            step = r.randrange(40, 30000)  # a jump: past the missing limit
        else:
            step = 1
        seq = (seq + step) & 0xFFFF
        if r.random() < 0.4:
            ts = (ts + r.choice((3000, 2970, -3000, 1 << 31))) & 0xFFFFFFFF
        arrival += r.randrange(0, 6000)
        want = python.update(seq, ts, arrival)
        in_c += native.loss_update(c, seq, ts, arrival)
        assert _tracker_state(c) == _tracker_state(python)
        assert c._unwrapper.highest is None or want <= c._unwrapper.highest
    assert 3000 < in_c < 5000  # both ways were taken
    assert python.missing == c.missing and python.nacks() == c.nacks()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_audio_level_in_c_reads_what_python_reads(seed: int) -> None:
    """`_fastpath.audio_level` (what an audio route feeds the speaker observer) against
    `speakers.audio_level` on well-formed packets of both extension forms, with CSRCs and
    padding, then on every truncation and on random corruptions of them."""
    from parlour.media.speakers import audio_level

    r = random.Random(seed)
    packets = []
    for _ in range(60):
        ext = [(r.randrange(1, 15), r.randbytes(r.randrange(1, 4))) for _ in range(r.randrange(4))]
        packets.append(
            build(
                pt=111,
                ext=ext or None,
                csrcs=tuple(range(r.randrange(3))),
                padding=r.choice((0, 0, 1, 4)),
                payload=r.randbytes(r.randrange(0, 40)),
            )
        )
    for _ in range(30):  # the two-byte form (RFC 8285 §4.3), with padding bytes between
        body = b""
        for _ in range(r.randrange(1, 4)):
            value = r.randbytes(r.randrange(0, 3))
            body += bytes(r.randrange(2)) + bytes([r.choice((1, 5, 20, 255)), len(value)]) + value
        body += bytes(-len(body) % 4)
        block = struct.pack("!HH", 0x1000 | r.randrange(16), len(body) // 4) + body
        packets.append(struct.pack("!BBHII", 0x90, 111, 1, 2, 3) + block + r.randbytes(20))
    corpus = list(packets)
    for packet in packets:
        corpus += [packet[:n] for n in range(0, len(packet), 3)]
        for _ in range(5):
            broken = bytearray(packet)
            broken[r.randrange(len(broken))] = r.randrange(256)
            corpus.append(bytes(broken))
    corpus += [r.randbytes(r.randrange(40)) for _ in range(100)]
    found = 0
    for packet in corpus:
        for ext_id in (-1, 0, 1, 2, 5, 9, 14, 15, 20, 255):
            heard = audio_level(packet, ext_id)
            want = None if heard is None else heard[0]
            assert native.audio_level(packet, ext_id) == want, (packet.hex(), ext_id)
            found += want is not None
    assert found > 50  # the corpus had levels to read, not only misses
