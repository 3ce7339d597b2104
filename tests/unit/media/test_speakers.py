"""Dominant speaker identification (`parlour.media.speakers`): the RFC 6464 level reader on
hand-built and aiortc packets, and the Volfin-Cohen decision on synthetic level sequences at
50 packets/s (deterministic: time is passed in).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping

import pytest
from aiortc import rtp as artp
from hypothesis import given, settings
from hypothesis import strategies as st

from parlour.media import rtp
from parlour.media.rtp import AUDIO_LEVEL_URI, MID_URI
from parlour.media.speakers import DominantSpeaker, audio_level
from tests.unit.media.rtp_packets import GOLDEN_AUDIO, aiortc_map, build, extensions

# ---------------------------------------------------------------------------------------------
# RFC 6464 audio level reader


def two_byte(
    elements: list[tuple[int, bytes]],
    *,
    appbits: int = 0,
    csrcs: tuple[int, ...] = (),
    padding: int = 0,
    lead: bytes = b"",
) -> bytes:
    """An RTP packet with a two-byte (RFC 8285 §4.3) extension block, built by hand."""
    body = lead + b"".join(bytes([i, len(v)]) + v for i, v in elements)
    body += bytes(-len(body) % 4)
    block = struct.pack("!HH", 0x1000 | appbits, len(body) // 4) + body
    b0 = 0x90 | (0x20 if padding else 0) | len(csrcs)
    head = struct.pack("!BBHII", b0, 111, 7, 960, 0xABCD)
    head += b"".join(struct.pack("!I", c) for c in csrcs)
    tail = bytes(padding - 1) + bytes([padding]) if padding else b""
    return head + block + b"\xfc\xff\xfe" + tail


def test_golden_packet() -> None:
    assert audio_level(GOLDEN_AUDIO, 1) == (5, True)
    assert audio_level(GOLDEN_AUDIO, 2) is None
    assert audio_level(memoryview(GOLDEN_AUDIO), 1) == (5, True)
    assert audio_level(bytearray(GOLDEN_AUDIO), 1) == (5, True)


@pytest.mark.parametrize("csrcs", [(), (1,), (1, 2, 3), tuple(range(15))])
@pytest.mark.parametrize("padding", [0, 1, 4, 13])
def test_one_byte_form_with_csrcs_and_padding(csrcs: tuple[int, ...], padding: int) -> None:
    ext = [(4, b"0"), (3, b"\x01\x02\x03"), (1, bytes([0x7F])), (2, b"\x00\x00\x01")]
    pkt = build(pt=111, ext=ext, csrcs=csrcs, padding=padding)
    assert audio_level(pkt, 1) == (127, False)
    assert audio_level(build(ext=[(9, bytes([0x80 | 33]))], csrcs=csrcs, padding=padding), 9) == (
        33,
        True,
    )
    assert audio_level(pkt, 5) is None


def test_one_byte_form_padding_bytes_and_stop_id() -> None:
    # padding bytes (id 0) between elements, then the element
    body = b"\x00\x00\x10\x2a"
    pkt = struct.pack("!BBHII", 0x90, 111, 1, 2, 3) + struct.pack("!HH", 0xBEDE, 1) + body
    assert audio_level(pkt, 1) == (42, False)
    # id 15 stops parsing (RFC 8285 §4.2): an element after it is not read
    body = b"\xf0\x10\x2a\x00"
    pkt = struct.pack("!BBHII", 0x90, 111, 1, 2, 3) + struct.pack("!HH", 0xBEDE, 1) + body
    assert audio_level(pkt, 1) is None
    # ids that a one-byte block cannot carry
    assert audio_level(GOLDEN_AUDIO, 0) is None
    assert audio_level(GOLDEN_AUDIO, 15) is None
    assert audio_level(GOLDEN_AUDIO, -1) is None


@pytest.mark.parametrize("appbits", [0, 5, 15])
@pytest.mark.parametrize("csrcs", [(), (9, 8)])
@pytest.mark.parametrize("padding", [0, 3])
def test_two_byte_form(appbits: int, csrcs: tuple[int, ...], padding: int) -> None:
    elements = [(1, b"mid"), (200, b""), (3, bytes(40)), (77, bytes([0x80 | 12]))]
    pkt = two_byte(elements, appbits=appbits, csrcs=csrcs, padding=padding, lead=b"\x00\x00")
    assert audio_level(pkt, 77) == (12, True)
    assert audio_level(pkt, 200) is None  # zero-length element: no level
    assert audio_level(pkt, 5) is None
    small = two_byte([(2, bytes([90]))])
    assert audio_level(small, 2) == (90, False)


def test_not_applicable_packets() -> None:
    no_ext = build(pt=111)
    assert audio_level(no_ext, 1) is None
    other_profile = bytearray(GOLDEN_AUDIO)
    other_profile[12:14] = b"\x12\x34"
    assert audio_level(bytes(other_profile), 1) is None
    v1 = bytearray(GOLDEN_AUDIO)
    v1[0] = (v1[0] & 0x3F) | 0x40
    assert audio_level(bytes(v1), 1) is None
    assert audio_level(b"", 1) is None


def test_malformed_padding() -> None:
    pkt = bytearray(build(ext=[(1, b"\x05")], padding=4))
    pkt[-1] = 0  # a padding count of 0
    assert audio_level(bytes(pkt), 1) is None
    pkt[-1] = 200  # more padding than the packet
    assert audio_level(bytes(pkt), 1) is None


@pytest.mark.parametrize(
    "pkt",
    [
        GOLDEN_AUDIO,
        build(ext=[(3, b"abc"), (1, b"\x85")], csrcs=(1, 2)),
        two_byte([(30, bytes(20)), (1, b"\x85")], csrcs=(5,)),
    ],
)
def test_truncated_packets(pkt: bytes) -> None:
    header = rtp.header_length(pkt)
    for cut in range(len(pkt)):
        got = audio_level(pkt[:cut], 1)
        if cut < header:
            assert got is None, cut
        else:
            assert got == (5, True)


def test_truncated_elements() -> None:
    # the one-byte element says 2 bytes but the block ends after 1
    pkt = (
        struct.pack("!BBHII", 0x90, 111, 1, 2, 3)
        + struct.pack("!HH", 0xBEDE, 1)
        + b"\x00\x00\x00\x11"
    )
    assert audio_level(pkt, 1) is None
    # two-byte: the element's length runs past the block
    pkt = (
        struct.pack("!BBHII", 0x90, 111, 1, 2, 3)
        + struct.pack("!HH", 0x1000, 1)
        + b"\x00\x00\x01\x09"
    )
    assert audio_level(pkt, 1) is None
    # two-byte: an id without its length byte at the end of the block
    pkt = (
        struct.pack("!BBHII", 0x90, 111, 1, 2, 3)
        + struct.pack("!HH", 0x1000, 1)
        + b"\x00\x00\x00\x01"
    )
    assert audio_level(pkt, 1) is None


@pytest.mark.parametrize(
    ("ids", "ext_id"),
    [
        ({MID_URI: 1, AUDIO_LEVEL_URI: 2}, 2),  # aiortc's ids: one-byte form
        ({MID_URI: 1, AUDIO_LEVEL_URI: 40}, 40),  # an id over 14: two-byte form
    ],
)
@pytest.mark.parametrize(("voice", "level"), [(True, 0), (False, 127), (True, 42)])
def test_aiortc_packets(ids: Mapping[str, int], ext_id: int, voice: bool, level: int) -> None:
    packet = artp.RtpPacket(payload_type=111, sequence_number=9, timestamp=960, ssrc=4)
    packet.csrc = [1, 2]
    packet.extensions.mid = "0"
    packet.extensions.audio_level = (voice, level)
    packet.payload = b"\xfc" * 30
    pkt = packet.serialize(aiortc_map(dict(ids)))
    assert audio_level(pkt, ext_id) == (level, voice)
    assert audio_level(pkt, 3) is None


@settings(max_examples=300, deadline=None)
@given(
    elements=st.lists(
        st.tuples(st.integers(1, 255), st.binary(min_size=1, max_size=20)), max_size=6
    ),
    ext_id=st.integers(1, 255),
    csrcs=st.lists(st.integers(0, 2**32 - 1), max_size=15),
)
def test_agrees_with_aiortc_parser(
    elements: list[tuple[int, bytes]], ext_id: int, csrcs: list[int]
) -> None:
    block = rtp.pack_extensions(elements)
    b0 = 0x80 | (0x10 if block else 0) | len(csrcs)
    pkt = struct.pack("!BBHII", b0, 111, 1, 2, 3)
    pkt += b"".join(struct.pack("!I", c) for c in csrcs) + block + b"\x01"
    found = [v for i, v in extensions(pkt) if i == ext_id]  # parsed by aiortc
    expected = (found[0][0] & 0x7F, found[0][0] >= 0x80) if found else None
    assert audio_level(pkt, ext_id) == expected


@settings(max_examples=500, deadline=None)
@given(data=st.binary(max_size=80), ext_id=st.integers(-2, 300))
def test_never_raises(data: bytes, ext_id: int) -> None:
    got = audio_level(data, ext_id)
    assert got is None or (0 <= got[0] <= 127 and isinstance(got[1], bool))
    forced = bytes([0x90 | (data[0] & 0x2F)]) + data[1:] if data else data
    got = audio_level(forced, ext_id)
    assert got is None or 0 <= got[0] <= 127


# ---------------------------------------------------------------------------------------------
# Dominant speaker: synthetic rooms at 50 packets/s

SILENT = 127  # digital silence
ROOM = 75  # -dBov of a quiet room
TALK = 30  # of ordinary speech
LOUD = 10

Script = Mapping[str, Callable[[float], int | None]]  # level at time t, None: no packet


def speech(start: float, end: float, level: int = TALK) -> Callable[[float], int]:
    """Speech between ``start`` and ``end`` (with a short dip every 0.5 s), a quiet room
    outside."""

    def at(t: float) -> int:
        if start <= t < end:
            return level + 25 if (t - start) % 0.5 >= 0.44 else level
        return ROOM

    return at


def silent(t: float) -> int:
    return SILENT


def run(
    dsi: DominantSpeaker, script: Script, until: float, *, start: float = 0.0
) -> list[tuple[float, str | None]]:
    """Feed one level per speaker every 20 ms and tick every 0.3 s; return the changes."""
    for sid in script:
        dsi.add(sid)
    changes: list[tuple[float, str | None]] = []
    frames = round((until - start) / 0.02)
    for k in range(frames):
        t = round(start + k * 0.02, 6)
        for sid, at in script.items():
            level = at(t)
            if level is not None:
                dsi.level(sid, level, t)
        if k % 15 == 14 and dsi.tick(t):
            changes.append((t, dsi.dominant))
    return changes


def test_one_speaker_talking_becomes_dominant_within_a_second() -> None:
    dsi = DominantSpeaker()
    changes = run(dsi, {"a": silent, "b": speech(1.0, 10.0), "c": silent}, 5.0)
    assert len(changes) == 1
    t, who = changes[0]
    assert who == "b" and 1.0 < t <= 2.0


def test_nobody_is_dominant_before_anyone_speaks() -> None:
    dsi = DominantSpeaker()
    assert run(dsi, {"a": silent}, 3.0) == []
    assert dsi.dominant is None
    assert run(dsi, {"a": silent, "b": silent, "c": lambda t: 70}, 3.0) == []  # murmur
    assert dsi.dominant is None


def test_talk_moving_to_another_switches_within_two_seconds() -> None:
    dsi = DominantSpeaker()
    changes = run(dsi, {"a": speech(0.0, 4.0), "b": speech(4.0, 9.0), "c": silent}, 8.0)
    assert [who for _, who in changes] == ["a", "b"]
    assert changes[0][0] <= 1.0
    assert 4.0 < changes[1][0] <= 5.5


def test_overlapping_talk_keeps_the_dominant_speaker() -> None:
    dsi = DominantSpeaker()
    changes = run(dsi, {"a": speech(0.0, 8.0), "b": speech(3.0, 8.0, LOUD)}, 8.0)
    assert [who for _, who in changes] == ["a"]


def test_a_cough_does_not_take_over() -> None:
    dsi = DominantSpeaker()
    cough = speech(3.0, 3.2, LOUD)
    changes = run(dsi, {"a": speech(0.0, 8.0), "b": cough, "c": silent}, 8.0)
    assert [who for _, who in changes] == ["a"]


def test_a_cough_during_a_pause_does_not_take_over() -> None:
    dsi = DominantSpeaker()

    def talker(t: float) -> int:
        return SILENT if 3.0 <= t < 3.4 else speech(0.0, 8.0)(t)

    # a pauses for 400 ms and b coughs in the middle of it: the tick at 3.28 s sees a silent
    # for 280 ms (immediate and medium scores at the minimum) and b loud, but b has 2 loud
    # 100 ms blocks in the last second against a's 6
    changes = run(dsi, {"a": talker, "b": speech(3.1, 3.3, LOUD)}, 8.0)
    assert [who for _, who in changes] == ["a"]


def test_noise_floor_is_not_speech() -> None:
    dsi = DominantSpeaker()
    hum = {"a": lambda t: 44, "b": speech(2.0, 20.0)}  # a: constant background noise, -44 dBov
    changes = run(dsi, hum, 20.0)
    assert [who for _, who in changes] == ["b"]


def test_long_silence_resets_to_nobody() -> None:
    dsi = DominantSpeaker(silence_timeout=3.0)
    changes = run(dsi, {"a": speech(0.0, 2.0), "b": silent}, 8.0)
    assert [who for _, who in changes] == ["a", None]
    assert 5.0 <= changes[1][0] <= 5.4
    # and the next speaker takes the floor from nobody
    more = run(dsi, {"a": silent, "b": speech(8.0, 10.0)}, 10.0, start=8.0)
    assert [who for _, who in more] == ["b"]


def test_silence_timeout_none_keeps_the_speaker() -> None:
    dsi = DominantSpeaker(silence_timeout=None)
    changes = run(dsi, {"a": speech(0.0, 2.0), "b": silent}, 10.0)
    assert [who for _, who in changes] == ["a"]
    assert dsi.dominant == "a"


def test_a_speaker_who_stops_sending_is_dropped() -> None:
    dsi = DominantSpeaker()

    def gone(t: float) -> int | None:
        return speech(0.0, 2.0)(t) if t < 2.0 else None  # no more packets (muted, DTX, gone)

    changes = run(dsi, {"a": gone, "b": silent}, 6.0)
    assert [who for _, who in changes] == ["a", None]
    assert changes[1][0] <= 5.4


def test_talk_moves_from_a_speaker_who_stopped_sending() -> None:
    dsi = DominantSpeaker()

    def gone(t: float) -> int | None:
        return speech(0.0, 3.0)(t) if t < 3.0 else None

    changes = run(dsi, {"a": gone, "b": speech(3.0, 8.0)}, 8.0)
    assert [who for _, who in changes] == ["a", "b"]
    assert changes[1][0] <= 4.5


def test_removing_the_dominant_speaker() -> None:
    dsi = DominantSpeaker()
    run(dsi, {"a": speech(0.0, 5.0), "b": silent}, 3.0)
    assert dsi.dominant == "a"
    assert dsi.remove("b") is False
    assert dsi.remove("a") is True
    assert dsi.dominant is None
    assert dsi.remove("a") is False
    assert "a" not in dsi and len(dsi) == 0


def test_removing_the_dominant_speaker_hands_over_to_a_speaker() -> None:
    dsi = DominantSpeaker()
    run(dsi, {"a": speech(0.0, 9.0), "b": speech(1.0, 9.0), "c": silent}, 3.9)
    assert dsi.dominant == "a"
    assert dsi.remove("a", 3.9) is True
    assert dsi.dominant == "b"
    assert list(dsi) == ["b", "c"]


def test_levels_for_unknown_or_late_are_ignored() -> None:
    dsi = DominantSpeaker()
    dsi.level("ghost", 0, 1.0)
    assert "ghost" not in dsi
    dsi.add("a")
    dsi.add("a")
    talk = speech(0.0, 9.0)
    for k in range(90):
        dsi.level("a", talk(k * 0.02), k * 0.02)
    for k in range(50):  # older than the latest level: ignored
        dsi.level("a", SILENT, 1.0 + k * 0.01)
    assert dsi.tick(1.8) is True
    assert dsi.dominant == "a"


def test_out_of_range_levels_are_clamped() -> None:
    dsi = DominantSpeaker()
    # a: louder than 0 dBov, with dips (a constant level is only a noise floor); b: silence
    run(dsi, {"a": lambda t: -20 if t % 0.5 < 0.44 else 60, "b": lambda t: 500}, 2.0)
    assert dsi.dominant == "a"


_OPS = st.one_of(
    st.tuples(st.just("add"), st.sampled_from("abcd")),
    st.tuples(st.just("remove"), st.sampled_from("abcde"), st.booleans()),
    st.tuples(
        st.just("level"),
        st.sampled_from("abcde"),
        st.integers(-5, 140),
        st.integers(0, 30),
    ),
    st.tuples(st.just("tick"), st.integers(-3, 300)),
    st.tuples(st.just("burst"), st.sampled_from("abcd"), st.integers(0, 40), st.integers(0, 127)),
)


@settings(max_examples=200, deadline=None)
@given(ops=st.lists(_OPS, max_size=60), timeout=st.sampled_from([None, 0.5, 3.0]))
def test_any_sequence_never_raises(ops: list[tuple[object, ...]], timeout: float | None) -> None:
    dsi = DominantSpeaker(silence_timeout=timeout)
    known: set[str] = set()
    now = 0.0
    for op in ops:
        match op:
            case ("add", str(sid)):
                dsi.add(sid)
                known.add(sid)
            case ("remove", str(sid), bool(with_now)):
                before = dsi.dominant
                changed = dsi.remove(sid, now if with_now else None)
                known.discard(sid)
                assert changed == (before != dsi.dominant)
            case ("level", str(sid), int(level), int(dt)):
                now += dt / 1000
                dsi.level(sid, level, now)
            case ("tick", int(dt)):
                now += dt / 100
                before = dsi.dominant
                assert dsi.tick(now) == (before != dsi.dominant)
            case ("burst", str(sid), int(n), int(level)):
                for _ in range(n):
                    now += 0.02
                    dsi.level(sid, level, now)
        assert dsi.dominant is None or dsi.dominant in known
        assert set(dsi) == known
