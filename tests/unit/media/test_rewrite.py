"""Per-consumer header rewriting (`parlour.media.rewrite`): golden packets, aiortc interop,
fuzzing.
"""

from __future__ import annotations

import random
import struct

import pytest
from aiortc import rtp as artp
from hypothesis import given, settings
from hypothesis import strategies as st

from parlour.media import rtp
from parlour.media.rewrite import ExtensionRewriter, RtpRewriter
from parlour.media.rtcp import SenderReport
from parlour.media.rtp import AUDIO_LEVEL_URI, MID_URI, RtpError
from tests.unit.media.rtp_packets import (
    ABS_SEND_TIME_URI,
    AIORTC,
    CHROME,
    GOLDEN_AUDIO,
    aiortc_map,
    build,
    extensions,
    payload,
)

# ---------------------------------------------------------------------------------------------
# ExtensionRewriter


def rewrite_ext(ext: ExtensionRewriter, pkt: bytes) -> bytes:
    return RtpRewriter(9, 100, extensions=ext).rewrite(pkt)


def test_extension_rewriter_maps_ids_and_replaces_mid_in_place() -> None:
    ext = ExtensionRewriter(CHROME, AIORTC, mid="7")
    out = rewrite_ext(ext, GOLDEN_AUDIO)
    # audio level 1 -> 2; Chrome's mid "0" (id 4) overwritten in place with "7" (id 1)
    assert out[12:20] == bytes.fromhex("bede0001 2085 1037")
    assert payload(out) == payload(GOLDEN_AUDIO)
    parsed = artp.RtpPacket.parse(out, aiortc_map(AIORTC))
    assert parsed.extensions.mid == "7"
    assert parsed.extensions.audio_level == (True, 5)
    assert parsed.payload == bytes.fromhex("a1a2a3a4a5")


def test_extension_rewriter_drops_unnegotiated_and_appends_longer_mid() -> None:
    ext = ExtensionRewriter(CHROME, AIORTC, mid="audio-1")
    pkt = build(ext=[(3, b"\x00\x01"), (1, b"\x7f"), (2, b"\x01\x02\x03"), (4, b"0")])
    out = rewrite_ext(ext, pkt)
    assert extensions(out) == [(2, b"\x7f"), (1, b"audio-1")]
    # the dropped TWCC element became padding; trailing dropped elements were cut off
    assert out[16:22] == b"\x00\x00\x00\x20\x7f\x16"
    assert (len(out) - 16 - len(payload(out))) % 4 == 0
    assert payload(out) == payload(pkt)


def test_extension_rewriter_inserts_block_when_packet_has_none() -> None:
    ext = ExtensionRewriter(CHROME, AIORTC, mid="1")
    out = rewrite_ext(ext, build(payload=b"VP8!"))
    assert out[0] & 0x10
    assert out[12:20] == bytes.fromhex("bede0001 10310000")
    assert payload(out) == b"VP8!"
    assert ext.insert_block == bytes.fromhex("bede0001 10310000")


def test_extension_rewriter_removes_block_when_nothing_is_left() -> None:
    ext = ExtensionRewriter(CHROME, {AUDIO_LEVEL_URI: 5})
    pkt = build(ext=[(2, b"\x01\x02\x03"), (4, b"0")], payload=b"P")
    out = rewrite_ext(ext, pkt)
    assert not out[0] & 0x10
    assert len(out) == 13 and payload(out) == b"P"
    assert ext.mid is None and ext.insert_block == b""


def test_extension_rewriter_without_subscriber_mid_ignores_mid_argument() -> None:
    ext = ExtensionRewriter(CHROME, {AUDIO_LEVEL_URI: 5}, mid="0")
    assert extensions(rewrite_ext(ext, GOLDEN_AUDIO)) == [(5, b"\x85")]


def test_extension_rewriter_identity_copies_block() -> None:
    same = {AUDIO_LEVEL_URI: 1, ABS_SEND_TIME_URI: 2}
    ext = ExtensionRewriter(same, dict(same))
    assert ext.identity
    pkt = build(ext=[(1, b"\x01"), (9, b"keep")])
    assert rewrite_ext(ext, pkt)[12:] == pkt[12:]
    assert not ExtensionRewriter(CHROME, dict(CHROME)).identity  # MID must be rewritten


def test_extension_rewriter_two_byte_input_is_repacked() -> None:
    ext = ExtensionRewriter(CHROME, AIORTC, mid="m")
    body = b"\x01\x01\x85" + b"\x00" + b"\x03\x02\x00\x07" + b"\x04\x01x" + b"\x00"
    pkt = b"\x90\x60" + bytes(10) + struct.pack("!HH", 0x1000, len(body) // 4) + body + b"PP"
    out = rewrite_ext(ext, pkt)
    assert out[12:14] == b"\xbe\xde"  # everything fits the one-byte form again
    assert extensions(out) == [(2, b"\x85"), (1, b"m")]
    assert payload(out) == b"PP"


def test_extension_rewriter_two_byte_output_for_high_ids() -> None:
    ext = ExtensionRewriter(CHROME, {AUDIO_LEVEL_URI: 20, MID_URI: 3}, mid="0")
    out = rewrite_ext(ext, GOLDEN_AUDIO)
    assert out[12:14] == b"\x10\x00"
    assert extensions(out) == [(20, b"\x85"), (3, b"0")]
    long_mid = ExtensionRewriter(CHROME, AIORTC, mid="m" * 20)
    assert extensions(rewrite_ext(long_mid, GOLDEN_AUDIO)) == [
        (2, b"\x85"),
        (1, b"m" * 20),
    ]
    assert long_mid.insert_block[:2] == b"\x10\x00"


def test_extension_rewriter_unknown_profile_drops_block() -> None:
    ext = ExtensionRewriter(CHROME, AIORTC)
    pkt = b"\x90\x60" + bytes(10) + struct.pack("!HH", 0x1234, 1) + b"\x10\x85\x00\x00" + b"P"
    out = rewrite_ext(ext, pkt)
    assert not out[0] & 0x10 and out[12:] == b"P"


def test_extension_rewriter_follows_changing_block_shapes() -> None:
    ext = ExtensionRewriter(CHROME, AIORTC, mid="5")
    shapes = [
        [(1, b"\x85"), (4, b"0")],
        [(1, b"\x86")],
        [(2, b"\x01\x02\x03"), (1, b"\x87")],
        [(1, b"\x88"), (4, b"0")],
        [(1, b"\x89"), (4, b"10")],  # same length, other shape: the cached plan must not match
    ]
    for _ in range(3):
        for i, elements in enumerate(shapes):
            out = rewrite_ext(ext, build(ext=elements, payload=bytes([i])))
            level = dict(elements)[1]
            assert dict(extensions(out)) == {2: level, 1: b"5"}
            assert payload(out) == bytes([i])


def test_extension_rewriter_stop_id_cuts_the_rest() -> None:
    ext = ExtensionRewriter(CHROME, AIORTC)
    body = b"\x10\x85\xf0\x10"  # audio level, then id 15: stop (the 0x10 is not parsed)
    pkt = b"\x90\x60" + bytes(10) + struct.pack("!HH", 0xBEDE, 1) + body + b"P"
    out = rewrite_ext(ext, pkt)
    assert extensions(out) == [(2, b"\x85")]
    assert out[12:20] == bytes.fromhex("bede0001 20850000")


def test_extension_rewriter_stray_id0_bytes_become_padding() -> None:
    ext = ExtensionRewriter(CHROME, AIORTC)
    body = b"\x05\x10\x85\x00"  # 0x05: id 0 with a length nibble = one padding byte
    pkt = b"\x90\x60" + bytes(10) + struct.pack("!HH", 0xBEDE, 1) + body
    assert rewrite_ext(ext, pkt)[12:20] == bytes.fromhex("bede0001 00208500")


def test_extension_rewriter_rejects_truncated_elements_and_bad_ids() -> None:
    ext = ExtensionRewriter(CHROME, AIORTC, mid="0")
    pkt = b"\x90\x60" + bytes(10) + struct.pack("!HH", 0xBEDE, 1) + b"\x10\x85\x23\x00"
    with pytest.raises(RtpError):
        rewrite_ext(ext, pkt)
    with pytest.raises(RtpError):
        ext.rewrite_block(pkt, len(pkt) - 2)
    with pytest.raises(RtpError):
        ext.rewrite_block(pkt[:-1], 12)
    with pytest.raises(RtpError):
        ExtensionRewriter({MID_URI: 0}, AIORTC)
    with pytest.raises(RtpError):
        ExtensionRewriter(CHROME, AIORTC, mid="")
    assert ext.rewrite_block(GOLDEN_AUDIO, 12) == bytes.fromhex("bede0001 20851030")
    # blocks the precomputed plan does not cover (two-byte input, two-byte output)
    high = ExtensionRewriter(CHROME, {AUDIO_LEVEL_URI: 20})
    for profile, body in [
        (0xBEDE, b"\x13ab\x00"),  # one-byte element of 4 bytes in a 4-byte body
        (0x1000, b"\x10\x05ab"),  # two-byte element of 5 bytes in a 4-byte body
        (0x1000, b"\x00\x00\x00\x10"),  # two-byte element header cut by the end
    ]:
        bad = b"\x90\x60" + bytes(10) + struct.pack("!HH", profile, 1) + body
        with pytest.raises(RtpError):
            rewrite_ext(high, bad)
    stop = b"\x90\x60" + bytes(10) + struct.pack("!HH", 0xBEDE, 1) + b"\x10\x85\xf0\x10"
    assert extensions(rewrite_ext(high, stop)) == [(20, b"\x85")]


uris = st.sampled_from([f"urn:x:{i}" for i in range(8)] + [MID_URI])


@st.composite
def id_maps(draw: st.DrawFn, max_id: int = 14) -> dict[str, int]:
    chosen = draw(st.lists(uris, unique=True, max_size=6))
    ids = draw(st.lists(st.integers(1, max_id), unique=True, min_size=len(chosen)))
    return dict(zip(chosen, ids, strict=False))


@settings(max_examples=300, deadline=None)
@given(
    pub=id_maps(),
    sub=id_maps(max_id=30),
    mid=st.none() | st.text(alphabet="0123456789abc", min_size=1, max_size=20),
    values=st.lists(st.binary(min_size=1, max_size=16), min_size=0, max_size=6),
    two_byte=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_extension_rewriter_matches_model(
    pub: dict[str, int],
    sub: dict[str, int],
    mid: str | None,
    values: list[bytes],
    two_byte: bool,
    seed: int,
) -> None:
    ext = ExtensionRewriter(pub, sub, mid=mid)
    in_ids = list(pub.values()) + [i for i in range(1, 15) if i not in pub.values()][:2]
    random.Random(seed).shuffle(in_ids)
    elements = list(zip(in_ids, values, strict=False))
    block = rtp.pack_extensions(elements)
    if two_byte and elements:
        body = b"".join(bytes([i, len(v)]) + v for i, v in elements)
        body += bytes(-len(body) % 4)
        block = struct.pack("!HH", 0x1000, len(body) // 4) + body
    pkt = bytes([0x90 if block else 0x80, 96]) + bytes(10) + block + b"payload"
    by_uri = {i: u for u, i in pub.items()}
    expected = {
        sub[by_uri[i]]: v
        for i, v in elements
        if i in by_uri and by_uri[i] in sub and by_uri[i] != MID_URI
    }
    if mid is not None and MID_URI in sub:
        expected[sub[MID_URI]] = mid.encode()
    if ext.identity:  # same maps, no MID: blocks are copied as they are
        expected = dict(elements)
    for _ in range(2):  # second pass goes through the cached plan
        out = rewrite_ext(ext, pkt)
        assert dict(extensions(out)) == expected
        assert len(extensions(out)) == len(expected)
        assert payload(out) == b"payload"
        assert bool(out[0] & 0x10) == bool(expected)


# ---------------------------------------------------------------------------------------------
# RtpRewriter


def test_rewriter_sets_ssrc_pt_and_offsets_with_wrap() -> None:
    r = RtpRewriter(0xCAFE, 100, seq_offset=10, ts_offset=2**32 - 50)
    out = r.rewrite(build(pt=96, marker=1, seq=65530, ts=20, ssrc=0x1111, payload=b"abc"))
    assert rtp.ssrc(out) == 0xCAFE
    assert out[1] == 0x80 | 100  # marker kept, new payload type
    assert rtp.seq(out) == (65530 + 10) % 65536 == 4
    assert rtp.timestamp(out) == 2**32 - 30
    assert out[12:] == b"abc"
    assert (r.packets, r.octets) == (1, 3)
    assert (r.seq_offset, r.ts_offset) == (10, 2**32 - 50)
    assert (r.last_seq, r.last_timestamp) == (4, 2**32 - 30)


def test_rewriter_output_parses_in_aiortc_with_subscriber_map() -> None:
    pub_map = aiortc_map(CHROME)
    packet = artp.RtpPacket(payload_type=111, marker=1, sequence_number=7, timestamp=960)
    packet.ssrc = 0x1234
    packet.extensions.mid = "0"
    packet.extensions.audio_level = (False, 30)
    packet.extensions.abs_send_time = 0x123456
    packet.payload = b"\xfc" * 80
    data = packet.serialize(pub_map)
    r = RtpRewriter(0xABCD, 109, extensions=ExtensionRewriter(CHROME, AIORTC, mid="3"))
    parsed = artp.RtpPacket.parse(r.rewrite(data), aiortc_map(AIORTC))
    assert (parsed.ssrc, parsed.payload_type, parsed.marker) == (0xABCD, 109, 1)
    assert (parsed.sequence_number, parsed.timestamp) == (7, 960)
    assert parsed.extensions.mid == "3"
    assert parsed.extensions.audio_level == (False, 30)
    assert parsed.extensions.abs_send_time is None
    assert parsed.payload == b"\xfc" * 80
    assert r.octets == 80


def test_rewriter_handles_csrcs_padding_and_two_byte_blocks() -> None:
    ext = ExtensionRewriter(CHROME, AIORTC, mid="9")
    r = RtpRewriter(5, 96, extensions=ext)
    pkt = build(csrcs=(77,), ext=[(1, b"\x10")], payload=b"DATA", padding=3)
    out = r.rewrite(pkt)
    parsed = artp.RtpPacket.parse(out, aiortc_map(AIORTC))
    assert parsed.csrc == [77] and parsed.payload == b"DATA" and parsed.padding_size == 3
    assert parsed.extensions.mid == "9" and parsed.extensions.audio_level == (False, 16)
    assert r.octets == 4
    plain = RtpRewriter(5, 96)  # no rewriter: the block is copied
    assert plain.rewrite(pkt)[12:] == pkt[12:]


def test_rewriter_fast_path_without_block_inserts_mid() -> None:
    r = RtpRewriter(5, 96, extensions=ExtensionRewriter(CHROME, AIORTC, mid="v"))
    out = r.rewrite(build(payload=b"X" * 10))
    assert extensions(out) == [(1, b"v")]
    assert payload(out) == b"X" * 10


def test_rewriter_switches_source_with_continuity() -> None:
    r = RtpRewriter(1, 96, clock_rate=90000, seq_offset=100)
    for s in (10, 12, 11):  # reordered: the highest (12) is what continuity follows
        r.rewrite(build(seq=s, ts=s * 3000, ssrc=0xA))
    assert r.last_seq == 112 and r.last_timestamp == 36000
    out = r.rewrite(build(seq=5000, ts=777, ssrc=0xB))  # new publisher SSRC
    assert rtp.seq(out) == 113
    assert rtp.timestamp(out) == 36000 + 1800  # default step: 20 ms of clock
    out = r.rewrite(build(seq=5001, ts=777 + 3000, ssrc=0xB))
    assert (rtp.seq(out), rtp.timestamp(out)) == (114, 36000 + 1800 + 3000)
    # a resume with the caller's elapsed time
    r.switch_source(ts_delta=90000)
    out = r.rewrite(build(seq=9000, ts=5, ssrc=0xB))
    assert (rtp.seq(out), rtp.timestamp(out)) == (115, 36000 + 1800 + 3000 + 90000)


def test_rewriter_set_extensions_for_a_new_publisher() -> None:
    r = RtpRewriter(1, 96, extensions=ExtensionRewriter(CHROME, AIORTC, mid="0"))
    assert extensions(r.rewrite(build(ssrc=0xA))) == [(1, b"0")]
    other = ExtensionRewriter({AUDIO_LEVEL_URI: 7}, AIORTC)  # no MID written
    r.set_extensions(other)
    r.switch_source()
    assert r.extensions is other
    out = r.rewrite(build(ssrc=0xB, ext=[(7, b"\x01")]))
    assert extensions(out) == [(2, b"\x01")]
    assert not r.rewrite(build(ssrc=0xB, seq=2))[0] & 0x10
    r.set_extensions(None)
    assert r.rewrite(build(ssrc=0xB, seq=3, ext=[(7, b"\x01")]))[12:16] == b"\xbe\xde\x00\x01"


def test_rewriter_resume_on_same_ssrc_keeps_timestamps() -> None:
    r = RtpRewriter(1, 96)
    r.rewrite(build(seq=100, ts=1000, ssrc=0xA))
    r.switch_source()  # paused; packets 101..199 never forwarded
    out = r.rewrite(build(seq=200, ts=91000, ssrc=0xA))
    assert (rtp.seq(out), rtp.timestamp(out)) == (101, 91000)


def test_rewriter_switch_wraps_and_uses_custom_step() -> None:
    r = RtpRewriter(1, 0, clock_rate=48000, seq_offset=0, ts_offset=0, switch_step=960)
    r.rewrite(build(seq=65535, ts=2**32 - 100, ssrc=1))
    out = r.rewrite(build(seq=3, ts=3, ssrc=2))
    assert (rtp.seq(out), rtp.timestamp(out)) == (0, 860)
    r.switch_source()  # before the first packet of a source: nothing to continue from
    fresh = RtpRewriter(1, 0, seq_offset=5)
    fresh.switch_source()
    assert rtp.seq(fresh.rewrite(build(seq=10, ssrc=3))) == 15


def test_rewriter_rejects_malformed_packets() -> None:
    r = RtpRewriter(1, 96)
    for bad in (b"", b"\x80" * 11, b"\x40" + bytes(11), b"\x81" + bytes(11)):
        with pytest.raises(RtpError):
            r.rewrite(bad)
    with pytest.raises(RtpError):
        r.rewrite(b"\x90" + bytes(11) + b"\xbe\xde\x00\x09")
    with pytest.raises(RtpError):
        r.rewrite(b"\xa0" + bytes(11) + b"\x00\x05")
    with pytest.raises(RtpError):
        RtpRewriter(1, 128)


def test_rewriter_state_is_untouched_by_malformed_packets() -> None:
    r = RtpRewriter(1, 96, extensions=ExtensionRewriter(CHROME, AIORTC, mid="0"))
    r.rewrite(build(seq=10, ssrc=0xA))
    bad = bytearray(build(seq=500, ssrc=0xB, ext=[(1, b"\x01")]))
    bad[16] = 0x1F  # element longer than the block
    with pytest.raises(RtpError):
        r.rewrite(bytes(bad))
    assert (r.packets, r.last_seq) == (1, 10)
    assert rtp.seq(r.rewrite(build(seq=11, ssrc=0xA))) == 11


def test_translate_sr_moves_rtp_time_onto_the_output_timeline() -> None:
    r = RtpRewriter(0xBBBB, 96, ts_offset=1000)
    sr = SenderReport(
        ssrc=0xA, ntp=0x1122334455667788, rtp_timestamp=2**32 - 1, packet_count=9, octet_count=99
    )
    assert r.translate_sr(sr) is None  # nothing forwarded yet
    r.rewrite(build(ssrc=0xA, payload=b"12345"))
    out = r.translate_sr(sr)
    assert out == SenderReport(0xBBBB, 0x1122334455667788, 999, 1, 5)
    assert r.translate_sr(SenderReport(0xC, 1, 1, 1, 1)) is None  # not the current source
    parsed = artp.RtcpPacket.parse(bytes(out))[0]
    assert isinstance(parsed, artp.RtcpSrPacket)
    assert parsed.sender_info.rtp_timestamp == 999


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=80))
def test_rewriter_fuzz_raises_only_rtp_error(data: bytes) -> None:
    ext = ExtensionRewriter(CHROME, AIORTC, mid="0")
    for pkt in (data, b"\x90" + data, b"\x80" + data, b"\xb1" + data):
        r = RtpRewriter(1, 96, extensions=ext)
        try:
            out = r.rewrite(pkt)
        except RtpError:
            continue
        assert rtp.seq(out) == rtp.seq(pkt)
