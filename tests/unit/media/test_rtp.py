"""RTP/RTCP toolkit (`parlour.media.rtp`): golden packets, aiortc interop, fuzzing."""

from __future__ import annotations

import fractions
import random
import struct

import av
import pytest
from aiortc import rtp as artp
from aiortc.codecs import get_encoder
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import VpxPayloadDescriptor
from aiortc.rtcrtpparameters import (
    RTCRtpCodecParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpParameters,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from parlour.media import rewrite, rtcp, rtp
from parlour.media.rewrite import ExtensionRewriter, RtpRewriter
from parlour.media.rtcp import (
    Bye,
    Fir,
    Nack,
    Pli,
    ReceiverReport,
    Remb,
    ReportBlock,
    SenderReport,
)
from parlour.media.rtp import AUDIO_LEVEL_URI, MID_URI, PacketHistory, RtpError
from parlour.media.stats import LossTracker, SeqUnwrapper

ABS_SEND_TIME_URI = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
TWCC_URI = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"

# Chrome-like publisher ids and aiortc-like subscriber ids (aiortc: mid=1, audio-level=2, ...)
CHROME = {AUDIO_LEVEL_URI: 1, ABS_SEND_TIME_URI: 2, TWCC_URI: 3, MID_URI: 4}
AIORTC = {MID_URI: 1, AUDIO_LEVEL_URI: 2}

# V=2 X=1 CC=0 | M=1 PT=111 | seq 0x1234 | ts 100 | SSRC 0xDEADBEEF
# + one-byte block: audio-level(id 1)=0x85, mid(id 4)="0", then 1 byte of padding
GOLDEN_AUDIO = bytes.fromhex("90ef1234 00000064 deadbeef bede0001 1085 4030 a1a2a3a4a5")


def build(
    *,
    pt: int = 96,
    marker: int = 0,
    seq: int = 1,
    ts: int = 1000,
    ssrc: int = 0x1111,
    ext: list[tuple[int, bytes]] | None = None,
    csrcs: tuple[int, ...] = (),
    payload: bytes = b"\x01\x02\x03\x04",
    padding: int = 0,
) -> bytes:
    """Build an RTP packet by hand (independent of the code under test)."""
    block = b""
    if ext:
        body = b"".join(bytes([(i << 4) | (len(v) - 1)]) + v for i, v in ext)
        body += bytes(-len(body) % 4)
        block = struct.pack("!HH", 0xBEDE, len(body) // 4) + body
    b0 = 0x80 | (0x20 if padding else 0) | (0x10 if block else 0) | len(csrcs)
    head = struct.pack("!BBHII", b0, (marker << 7) | pt, seq, ts, ssrc)
    head += b"".join(struct.pack("!I", c) for c in csrcs)
    tail = bytes(padding - 1) + bytes([padding]) if padding else b""
    return head + block + payload + tail


def aiortc_map(ids: dict[str, int]) -> artp.HeaderExtensionsMap:
    hmap = artp.HeaderExtensionsMap()
    hmap.configure(
        RTCRtpParameters(
            headerExtensions=[RTCRtpHeaderExtensionParameters(id=i, uri=u) for u, i in ids.items()]
        )
    )
    return hmap


# ---------------------------------------------------------------------------------------------
# header accessors


def test_accessors_on_golden_packet() -> None:
    pkt = GOLDEN_AUDIO
    assert rtp.version(pkt) == 2
    assert rtp.is_rtp(pkt) and not rtp.is_rtcp(pkt)
    assert rtp.has_extension(pkt) and not rtp.has_padding(pkt)
    assert rtp.csrc_count(pkt) == 0
    assert rtp.marker(pkt) is True
    assert rtp.payload_type(pkt) == 111
    assert rtp.seq(pkt) == 0x1234
    assert rtp.timestamp(pkt) == 100
    assert rtp.ssrc(pkt) == 0xDEADBEEF
    assert rtp.header_length(pkt) == rtp.payload_offset(pkt) == 20
    assert rtp.payload(pkt) == bytes.fromhex("a1a2a3a4a5")
    assert rtp.parse_extensions(pkt) == [(1, b"\x85"), (4, b"0")]
    assert rtp.get_extension(pkt, 4) == b"0"
    assert rtp.get_extension(pkt, 2) is None


def test_accessors_agree_with_aiortc() -> None:
    packet = artp.RtpPacket(payload_type=100, marker=1, sequence_number=65535, timestamp=2**32 - 1)
    packet.ssrc = 0x01020304
    packet.csrc = [7, 8]
    packet.extensions.mid = "video"
    packet.extensions.audio_level = (True, 42)
    packet.payload = b"x" * 50
    packet.padding_size = 6
    data = packet.serialize(aiortc_map(AIORTC))
    assert (rtp.payload_type(data), rtp.marker(data), rtp.seq(data)) == (100, True, 65535)
    assert (rtp.timestamp(data), rtp.ssrc(data), rtp.csrc_count(data)) == (2**32 - 1, 0x01020304, 2)
    start, end = rtp.payload_bounds(data)
    assert data[start:end] == b"x" * 50 and rtp.payload(data) == b"x" * 50
    assert dict(rtp.parse_extensions(data)) == {1: b"video", 2: bytes([0x80 | 42])}


def test_header_length_with_csrcs_and_padding() -> None:
    pkt = build(csrcs=(1, 2, 3), ext=[(5, b"ab")], payload=b"PAY", padding=4)
    assert rtp.header_length(pkt) == 12 + 12 + 8
    assert rtp.payload(pkt) == b"PAY"
    assert rtp.has_padding(pkt)


@pytest.mark.parametrize(
    "pkt",
    [
        b"",
        b"\x80\x60",
        bytes(12),  # version 0
        b"\x40" + bytes(11),  # version 1
        b"\x81" + bytes(11),  # CSRC count 1, no CSRC
        b"\x90" + bytes(11) + b"\xbe\xde",  # extension header truncated
        b"\x90" + bytes(11) + b"\xbe\xde\x00\x02\x10\x00",  # extension body truncated
    ],
)
def test_header_length_rejects_malformed(pkt: bytes) -> None:
    with pytest.raises(RtpError):
        rtp.header_length(pkt)


def test_is_rtp_is_a_cheap_first_byte_check() -> None:
    assert rtp.is_rtp(build()) and rtp.is_rtp(b"\x81" + bytes(11))  # is_rtp reads no further
    assert not rtp.is_rtp(b"\x80" * 11) and not rtp.is_rtp(b"\x40" + bytes(11))
    assert not rtp.is_rtp(rtcp.pli(1, 2) + bytes(4))


@pytest.mark.parametrize("padding_byte", [0, 9])
def test_bad_padding_is_rejected(padding_byte: int) -> None:
    pkt = b"\xa0" + bytes(11) + b"\x00\x00\x00" + bytes([padding_byte])
    with pytest.raises(RtpError):
        rtp.payload_bounds(pkt)


@pytest.mark.parametrize("second", [192, 200, 201, 205, 206, 207, 223, 64 | 128, 95])
def test_is_rtcp_per_rfc5761(second: int) -> None:
    assert rtp.is_rtcp(bytes([0x80, second, 0, 1]))


@pytest.mark.parametrize("second", [0, 8, 96, 96 | 0x80, 111, 127, 63, 224, 255])
def test_is_not_rtcp(second: int) -> None:
    assert not rtp.is_rtcp(bytes([0x80, second, 0, 1]))
    assert not rtp.is_rtcp(b"\x80")


# ---------------------------------------------------------------------------------------------
# header extensions


def test_parse_one_byte_with_padding_and_stop_id() -> None:
    body = b"\x00\x10\x85\x00\x00\x22abc\xf0\x33\x00"  # pad, id1, pad x2, id2, id15: stop
    block = struct.pack("!HH", 0xBEDE, 3) + body
    pkt = b"\x90" + bytes(11) + block
    assert rtp.parse_extensions(pkt) == [(1, b"\x85"), (2, b"abc")]


def test_parse_two_byte_form_with_zero_length_and_appbits() -> None:
    body = b"\x0f\x00" + b"\x00" + b"\x10\x03xyz" + b"\x00"  # id15 len0, pad, id16 len3, pad
    pkt = b"\x90" + bytes(11) + struct.pack("!HH", 0x1005, 2) + body
    assert rtp.parse_extensions(pkt) == [(15, b""), (16, b"xyz")]


def test_parse_unknown_profile_yields_nothing() -> None:
    pkt = b"\x90" + bytes(11) + struct.pack("!HH", 0xABCD, 1) + b"\x10\x85\x00\x00"
    assert rtp.parse_extensions(pkt) == []
    assert rtp.parse_extensions(build()) == []


@pytest.mark.parametrize(
    ("profile", "body"),
    [
        (0xBEDE, b"\x13ab\x00"),  # one-byte element of 4 bytes in a 4-byte body
        (0x1000, b"\x10\x05ab"),  # two-byte element of 5 bytes in a 4-byte body
        (0x1000, b"\x00\x00\x00\x10"),  # two-byte element header cut by the end
    ],
)
def test_parse_truncated_elements_raise(profile: int, body: bytes) -> None:
    pkt = b"\x90" + bytes(11) + struct.pack("!HH", profile, 1) + body
    with pytest.raises(RtpError):
        rtp.parse_extensions(pkt)


def test_pack_extensions_forms_match_aiortc() -> None:
    for elements in (
        [(1, b"0"), (3, b"\x01\x02\x03")],
        [(1, b"a" * 16)],
        [(15, b"x")],  # id 15 needs the two-byte form
        [(2, b"")],  # zero length needs the two-byte form
        [(2, b"b" * 17)],
    ):
        block = rtp.pack_extensions(elements)
        profile, body = artp.pack_header_extensions(elements)
        assert block == struct.pack("!HH", profile, len(body) // 4) + body
        assert rtp.parse_extensions(b"\x90" + bytes(11) + block) == elements
    assert rtp.pack_extensions([]) == b""
    with pytest.raises(RtpError):
        rtp.pack_extensions([(256, b"x")])
    with pytest.raises(RtpError):
        rtp.pack_extensions([(1, b"x" * 256)])


def rewrite_ext(ext: ExtensionRewriter, pkt: bytes) -> bytes:
    return rewrite.rewrite(pkt, ssrc=9, payload_type=100, seq=1, timestamp=1, extensions=ext)


def test_extension_rewriter_maps_ids_and_replaces_mid_in_place() -> None:
    ext = ExtensionRewriter(CHROME, AIORTC, mid="7")
    out = rewrite_ext(ext, GOLDEN_AUDIO)
    # audio level 1 -> 2; Chrome's mid "0" (id 4) overwritten in place with "7" (id 1)
    assert out[12:20] == bytes.fromhex("bede0001 2085 1037")
    assert rtp.payload(out) == rtp.payload(GOLDEN_AUDIO)
    parsed = artp.RtpPacket.parse(out, aiortc_map(AIORTC))
    assert parsed.extensions.mid == "7"
    assert parsed.extensions.audio_level == (True, 5)
    assert parsed.payload == bytes.fromhex("a1a2a3a4a5")


def test_extension_rewriter_drops_unnegotiated_and_appends_longer_mid() -> None:
    ext = ExtensionRewriter(CHROME, AIORTC, mid="audio-1")
    pkt = build(ext=[(3, b"\x00\x01"), (1, b"\x7f"), (2, b"\x01\x02\x03"), (4, b"0")])
    out = rewrite_ext(ext, pkt)
    assert rtp.parse_extensions(out) == [(2, b"\x7f"), (1, b"audio-1")]
    # the dropped TWCC element became padding; trailing dropped elements were cut off
    assert out[16:22] == b"\x00\x00\x00\x20\x7f\x16"
    assert (len(out) - 16 - len(rtp.payload(out))) % 4 == 0
    assert rtp.payload(out) == rtp.payload(pkt)


def test_extension_rewriter_inserts_block_when_packet_has_none() -> None:
    ext = ExtensionRewriter(CHROME, AIORTC, mid="1")
    out = rewrite_ext(ext, build(payload=b"VP8!"))
    assert out[0] & 0x10
    assert out[12:20] == bytes.fromhex("bede0001 10310000")
    assert rtp.payload(out) == b"VP8!"
    assert ext.insert_block == bytes.fromhex("bede0001 10310000")


def test_extension_rewriter_removes_block_when_nothing_is_left() -> None:
    ext = ExtensionRewriter(CHROME, {AUDIO_LEVEL_URI: 5})
    pkt = build(ext=[(2, b"\x01\x02\x03"), (4, b"0")], payload=b"P")
    out = rewrite_ext(ext, pkt)
    assert not out[0] & 0x10
    assert len(out) == 13 and rtp.payload(out) == b"P"
    assert ext.mid is None and ext.insert_block == b""


def test_extension_rewriter_without_subscriber_mid_ignores_mid_argument() -> None:
    ext = ExtensionRewriter(CHROME, {AUDIO_LEVEL_URI: 5}, mid="0")
    assert rtp.parse_extensions(rewrite_ext(ext, GOLDEN_AUDIO)) == [(5, b"\x85")]


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
    assert rtp.parse_extensions(out) == [(2, b"\x85"), (1, b"m")]
    assert rtp.payload(out) == b"PP"


def test_extension_rewriter_two_byte_output_for_high_ids() -> None:
    ext = ExtensionRewriter(CHROME, {AUDIO_LEVEL_URI: 20, MID_URI: 3}, mid="0")
    out = rewrite_ext(ext, GOLDEN_AUDIO)
    assert out[12:14] == b"\x10\x00"
    assert rtp.parse_extensions(out) == [(20, b"\x85"), (3, b"0")]
    long_mid = ExtensionRewriter(CHROME, AIORTC, mid="m" * 20)
    assert rtp.parse_extensions(rewrite_ext(long_mid, GOLDEN_AUDIO)) == [
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
            assert dict(rtp.parse_extensions(out)) == {2: level, 1: b"5"}
            assert rtp.payload(out) == bytes([i])


def test_extension_rewriter_stop_id_cuts_the_rest() -> None:
    ext = ExtensionRewriter(CHROME, AIORTC)
    body = b"\x10\x85\xf0\x10"  # audio level, then id 15: stop (the 0x10 is not parsed)
    pkt = b"\x90\x60" + bytes(10) + struct.pack("!HH", 0xBEDE, 1) + body + b"P"
    out = rewrite_ext(ext, pkt)
    assert rtp.parse_extensions(out) == [(2, b"\x85")]
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
        assert dict(rtp.parse_extensions(out)) == expected
        assert len(rtp.parse_extensions(out)) == len(expected)
        assert rtp.payload(out) == b"payload"
        assert bool(out[0] & 0x10) == bool(expected)


# ---------------------------------------------------------------------------------------------
# RtpRewriter


def test_rewriter_sets_ssrc_pt_and_offsets_with_wrap() -> None:
    r = RtpRewriter(0xCAFE, 100, seq_offset=10, ts_offset=2**32 - 50)
    out = r.rewrite(build(pt=96, marker=1, seq=65530, ts=20, ssrc=0x1111, payload=b"abc"))
    assert rtp.ssrc(out) == 0xCAFE
    assert rtp.payload_type(out) == 100 and rtp.marker(out)
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
    assert rtp.parse_extensions(out) == [(1, b"v")]
    assert rtp.payload(out) == b"X" * 10


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
    assert rtp.parse_extensions(r.rewrite(build(ssrc=0xA))) == [(1, b"0")]
    other = ExtensionRewriter({AUDIO_LEVEL_URI: 7}, AIORTC)  # no MID written
    r.set_extensions(other)
    r.switch_source()
    assert r.extensions is other
    out = r.rewrite(build(ssrc=0xB, ext=[(7, b"\x01")]))
    assert rtp.parse_extensions(out) == [(2, b"\x01")]
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
    with pytest.raises(RtpError):
        rewrite.rewrite(b"\x80", ssrc=1, payload_type=1, seq=1, timestamp=1)


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


# ---------------------------------------------------------------------------------------------
# RTX


def test_rtx_round_trip_and_aiortc_agreement() -> None:
    original = build(pt=96, marker=1, seq=4242, ts=9, ssrc=0x10, ext=[(1, b"0")], payload=b"VP8")
    wrapped = rtp.wrap_rtx(original, ssrc=0x20, payload_type=97, seq=7)
    packet = artp.RtpPacket.parse(original, aiortc_map({MID_URI: 1}))
    expected = artp.wrap_rtx(packet, payload_type=97, sequence_number=7, ssrc=0x20)
    assert wrapped == expected.serialize(aiortc_map({MID_URI: 1}))
    assert rtp.rtx_osn(wrapped) == 4242
    assert rtp.unwrap_rtx(wrapped, ssrc=0x10, payload_type=96) == original


def test_unwrap_rtx_keeps_padding_and_skips_probes() -> None:
    wrapped = build(pt=97, seq=1, ssrc=0x20, payload=b"\x01\x02DATA", padding=2)
    out = rtp.unwrap_rtx(wrapped, ssrc=0x10, payload_type=96)
    assert out is not None
    assert (rtp.seq(out), rtp.ssrc(out), rtp.payload_type(out)) == (0x0102, 0x10, 96)
    assert rtp.payload(out) == b"DATA"
    probe = build(pt=97, payload=b"", padding=224)
    assert rtp.unwrap_rtx(probe, ssrc=1, payload_type=96) is None
    assert rtp.rtx_osn(probe) is None


# ---------------------------------------------------------------------------------------------
# RTCP


def test_builders_parse_in_aiortc() -> None:
    (p,) = artp.RtcpPacket.parse(rtcp.pli(1, 2))
    assert isinstance(p, artp.RtcpPsfbPacket) and (p.fmt, p.ssrc, p.media_ssrc) == (1, 1, 2)

    (f,) = artp.RtcpPacket.parse(rtcp.fir(1, 0xABCDEF01, 300))
    assert isinstance(f, artp.RtcpPsfbPacket) and (f.fmt, f.media_ssrc) == (4, 0)
    assert f.fci == bytes.fromhex("abcdef01 2c000000")

    (n,) = artp.RtcpPacket.parse(rtcp.nack(1, 2, [10, 11, 26, 27, 100]))
    assert isinstance(n, artp.RtcpRtpfbPacket) and (n.fmt, n.media_ssrc) == (1, 2)
    assert n.lost == [10, 11, 26, 27, 100]

    block = ReportBlock(0x55, 12, -3, 70000, 40, 0x12345678, 655)
    (rr,) = artp.RtcpPacket.parse(rtcp.receiver_report(9, [block]))
    assert isinstance(rr, artp.RtcpRrPacket) and rr.ssrc == 9
    info = rr.reports[0]
    assert (info.ssrc, info.fraction_lost, info.packets_lost) == (0x55, 12, -3)
    assert (info.highest_sequence, info.jitter, info.lsr, info.dlsr) == (70000, 40, 0x12345678, 655)

    (sr,) = artp.RtcpPacket.parse(rtcp.sender_report(3, 2**63 + 5, 4, 5, 6, [block]))
    assert isinstance(sr, artp.RtcpSrPacket) and sr.ssrc == 3
    assert (sr.sender_info.ntp_timestamp, sr.sender_info.rtp_timestamp) == (2**63 + 5, 4)
    assert (sr.sender_info.packet_count, sr.sender_info.octet_count) == (5, 6)
    assert sr.reports[0].packets_lost == -3

    (remb,) = artp.RtcpPacket.parse(rtcp.remb(7, 1_500_000, [0x10, 0x20]))
    assert isinstance(remb, artp.RtcpPsfbPacket) and remb.fmt == 15
    bitrate, ssrcs = artp.unpack_remb_fci(remb.fci)
    assert ssrcs == [0x10, 0x20] and 1_500_000 - bitrate < 1_500_000 / 2**17

    sdes, bye = artp.RtcpPacket.parse(rtcp.sdes(4, "cname-é") + rtcp.bye([4, 5], "left"))
    assert isinstance(sdes, artp.RtcpSdesPacket)
    assert sdes.chunks[0].ssrc == 4 and sdes.chunks[0].items == [(1, "cname-é".encode())]
    assert isinstance(bye, artp.RtcpByePacket) and bye.sources == [4, 5]


def test_aiortc_packets_parse_in_ours() -> None:
    info = artp.RtcpReceiverInfo(
        ssrc=0x77,
        fraction_lost=3,
        packets_lost=-8,
        highest_sequence=65600,
        jitter=12,
        lsr=5,
        dlsr=6,
    )
    sender = artp.RtcpSenderInfo(
        ntp_timestamp=0xE0000000_80000000, rtp_timestamp=123, packet_count=4, octet_count=400
    )
    compound = (
        bytes(artp.RtcpSrPacket(ssrc=1, sender_info=sender, reports=[info]))
        + bytes(artp.RtcpSdesPacket(chunks=[artp.RtcpSourceInfo(ssrc=1, items=[(1, b"x")])]))
        + bytes(artp.RtcpRrPacket(ssrc=2, reports=[info]))
        + bytes(artp.RtcpRtpfbPacket(fmt=1, ssrc=3, media_ssrc=4, lost=[100, 101, 103, 140]))
        + bytes(artp.RtcpPsfbPacket(fmt=1, ssrc=5, media_ssrc=6))
        + bytes(
            artp.RtcpPsfbPacket(
                fmt=15, ssrc=7, media_ssrc=0, fci=artp.pack_remb_fci(300_000, [8, 9])
            )
        )
        + bytes(artp.RtcpByePacket(sources=[10]))
    )
    block = ReportBlock(0x77, 3, -8, 65600, 12, 5, 6)
    assert rtcp.parse_rtcp(compound) == [
        SenderReport(1, 0xE0000000_80000000, 123, 4, 400, (block,)),
        ReceiverReport(2, (block,)),
        Nack(3, 4, (100, 101, 103, 140)),
        Pli(5, 6),
        Remb(7, 300_000, (8, 9)),
        Bye((10,)),
    ]


def test_objects_serialize_symmetrically() -> None:
    block = ReportBlock(1, 2, 3, 4, 5, 6, 7)
    packets = [
        SenderReport(1, 2, 3, 4, 5, (block, block)),
        ReceiverReport(8, (block,)),
        ReceiverReport(8),
        Bye((1, 2), "bye now"),
        Bye(()),
        Nack(1, 2, (65534, 65535, 0, 1, 17, 18, 30000)),
        Pli(3, 4),
        Fir(5, ((6, 7), (8, 255))),
        Remb(9, 262143, (10,)),
        Remb(9, 0, ()),
    ]
    assert rtcp.parse_rtcp(b"".join(bytes(p) for p in packets)) == packets


def test_nack_packing_across_wrap_and_dedup() -> None:
    data = rtcp.nack(1, 2, [0, 65535, 65534, 0, 15, 16, 17])
    # ordered around the first number: 65534 65535 0 | 15 16 17 (15 is 17 past 65534)
    assert data[12:] == struct.pack("!HHHH", 65534, 0b11, 15, 0b11)
    assert rtcp.parse_rtcp(data) == [Nack(1, 2, (65534, 65535, 0, 15, 16, 17))]
    with pytest.raises(RtpError):
        rtcp.nack(1, 2, [])


def test_remb_mantissa_exponent() -> None:
    data = rtcp.remb(1, 2**40 + 12345, [1])
    (parsed,) = rtcp.parse_rtcp(data)
    assert isinstance(parsed, Remb)
    assert parsed.bitrate == (2**40 + 12345) >> 23 << 23
    assert artp.unpack_remb_fci(data[12:])[0] == parsed.bitrate
    with pytest.raises(RtpError):
        rtcp.remb(1, -1, [])
    with pytest.raises(RtpError):
        rtcp.remb(1, 2**90, [])
    with pytest.raises(RtpError):
        rtcp.remb(1, 1, list(range(256)))


def test_builder_limits() -> None:
    block = ReportBlock(1, 0, 0, 0, 0)
    with pytest.raises(RtpError):
        rtcp.receiver_report(1, [block] * 32)
    with pytest.raises(RtpError):
        rtcp.sender_report(1, 0, 0, 0, 0, [block] * 32)
    with pytest.raises(RtpError):
        rtcp.sdes(1, "x" * 256)
    with pytest.raises(RtpError):
        rtcp.bye(list(range(32)))
    assert len(rtcp.sdes(1, "ab")) % 4 == 0 and len(rtcp.sdes(1, "abcd")) % 4 == 0
    # lost counts beyond 24 bits are clamped
    (rr,) = rtcp.parse_rtcp(rtcp.receiver_report(1, [ReportBlock(1, 0, -(2**30), 0, 0)]))
    assert isinstance(rr, ReceiverReport) and rr.reports[0].packets_lost == -(2**23)


def test_parse_skips_what_it_does_not_read() -> None:
    twcc = bytes([0x8F, 205, 0, 3]) + bytes(12)
    app = bytes([0x80, 204, 0, 2]) + b"\x00\x00\x00\x01NAME"
    xr = bytes([0x80, 207, 0, 1]) + bytes(4)
    afb = bytes([0x8F, 206, 0, 3]) + bytes(8) + b"ABCD"  # application feedback, not REMB
    sli = bytes([0x82, 206, 0, 2]) + bytes(8)
    short_sr = bytes([0x80, 200, 0, 1]) + bytes(4)
    short_rr = bytes([0x80, 201, 0, 0])
    short_fb = bytes([0x81, 206, 0, 1]) + bytes(4)
    stream = twcc + app + xr + afb + sli + short_sr + short_rr + short_fb + rtcp.pli(1, 2)
    assert rtcp.parse_rtcp(stream) == [Pli(1, 2)]


def test_parse_handles_padding_truncation_and_bad_versions() -> None:
    padded = bytes([0xA1, 206, 0, 3]) + struct.pack("!II", 1, 2) + b"\x00\x00\x00\x04"
    assert rtcp.parse_rtcp(padded) == [Pli(1, 2)]
    short_after_pad = bytes([0xA1, 206, 0, 2]) + struct.pack("!II", 1, 2)  # 2 pad: 6 bytes
    assert rtcp.parse_rtcp(short_after_pad) == []
    huge_pad = bytes([0xA1, 206, 0, 2]) + struct.pack("!II", 1, 200)
    assert rtcp.parse_rtcp(huge_pad + rtcp.pli(3, 4)) == [Pli(3, 4)]
    zero_pad = bytes([0xA1, 206, 0, 2]) + bytes(8)
    assert rtcp.parse_rtcp(zero_pad + rtcp.pli(3, 4)) == [Pli(3, 4)]
    # a bad header ends the walk; what came before is kept
    assert rtcp.parse_rtcp(rtcp.pli(1, 2) + b"\x40\xce\x00\x02" + rtcp.pli(3, 4)) == [Pli(1, 2)]
    assert rtcp.parse_rtcp(rtcp.pli(1, 2) + rtcp.pli(3, 4)[:-1]) == [Pli(1, 2)]
    assert rtcp.parse_rtcp(b"") == [] and rtcp.parse_rtcp(b"\x80\xc8") == []
    # counts larger than the data: parse what is there
    sr = bytearray(rtcp.sender_report(1, 2, 3, 4, 5))
    sr[0] |= 5
    assert rtcp.parse_rtcp(bytes(sr)) == [SenderReport(1, 2, 3, 4, 5)]
    bye = bytes([0x83, 203, 0, 1]) + b"\x00\x00\x00\x09"
    assert rtcp.parse_rtcp(bye) == [Bye((9,))]
    reason = bytes([0x81, 203, 0, 2]) + b"\x00\x00\x00\x09" + b"\x09ab\xff"
    assert rtcp.parse_rtcp(reason) == [Bye((9,), "ab\ufffd")]
    remb_short = bytearray(rtcp.remb(1, 1000, [1, 2]))
    remb_short[16] = 9  # claims 9 SSRCs, carries 2
    assert rtcp.parse_rtcp(bytes(remb_short)) == [Remb(1, 1000, (1, 2))]


@settings(max_examples=500, deadline=None)
@given(data=st.binary(max_size=200))
def test_parse_rtcp_fuzz_never_raises(data: bytes) -> None:
    packets = rtcp.parse_rtcp(data)
    kinds = (SenderReport, ReceiverReport, Bye, Nack, Pli, Fir, Remb)
    assert all(isinstance(p, kinds) for p in packets)
    for p in packets:
        if not isinstance(p, (Bye, Nack)):  # BYE reasons and NACK lists may not re-encode 1:1
            assert rtcp.parse_rtcp(bytes(p)) == [p]


@settings(max_examples=300, deadline=None)
@given(
    data=st.binary(min_size=1, max_size=60),
    kind=st.sampled_from([200, 201, 203, 205, 206]),
    count=st.integers(0, 31),
)
def test_parse_rtcp_fuzz_structured(data: bytes, kind: int, count: int) -> None:
    body = data + bytes(-len(data) % 4)
    pkt = bytes([0x80 | count, kind]) + struct.pack("!H", len(body) // 4) + body
    assert rtcp.parse_rtcp(pkt + rtcp.pli(1, 2))[-1] == Pli(1, 2)


@settings(max_examples=200, deadline=None)
@given(seqs=st.lists(st.integers(0, 65535), min_size=1, max_size=60))
def test_nack_round_trip_property(seqs: list[int]) -> None:
    (parsed,) = rtcp.parse_rtcp(rtcp.nack(1, 2, seqs))
    assert isinstance(parsed, Nack)
    assert sorted(parsed.seqs) == sorted(set(seqs))
    assert len(parsed.seqs) == len(set(parsed.seqs))


# ---------------------------------------------------------------------------------------------
# SeqUnwrapper, PacketHistory, LossTracker


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


def test_packet_history() -> None:
    h = PacketHistory(8)
    assert h.size == 8
    pkts = [build(seq=s) for s in range(65530, 65536)] + [build(seq=s) for s in range(4)]
    for p in pkts:
        h.put(p)
    assert h.get(65531) is None  # overwritten by seq 3 (same slot)
    assert h.get(65532) is pkts[2]
    assert h.get(0) is pkts[6] and h.get(3) is pkts[9]
    assert h.get(4) is None and h.get(65532 + 8) is None
    h.clear()
    assert h.get(3) is None
    with pytest.raises(RtpError):
        PacketHistory(100)
    assert PacketHistory().size == 512


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


# ---------------------------------------------------------------------------------------------
# keyframes


def vp8(descriptor: VpxPayloadDescriptor, frame_header: int) -> bytes:
    return bytes(descriptor) + bytes([frame_header, 0, 0])


@pytest.mark.parametrize(
    "descriptor",
    [
        VpxPayloadDescriptor(partition_start=1, partition_id=0),
        VpxPayloadDescriptor(partition_start=1, partition_id=0, picture_id=0x1234),
        VpxPayloadDescriptor(1, 0, picture_id=5, tl0picidx=3, tid=(1, 1), keyidx=4),
        VpxPayloadDescriptor(1, 0, tl0picidx=3),
        VpxPayloadDescriptor(1, 0, keyidx=2),
    ],
)
def test_vp8_keyframe_descriptors(descriptor: VpxPayloadDescriptor) -> None:
    assert rtp.is_keyframe("VP8", vp8(descriptor, 0x10))  # P bit 0
    assert not rtp.is_keyframe("vp8", vp8(descriptor, 0x11))  # P bit 1: interframe
    assert rtp.is_frame_start("VP8", vp8(descriptor, 0x11))
    assert not rtp.is_keyframe("VP8", bytes(descriptor))  # no VP8 header byte


def test_vp8_7bit_picture_id_and_non_start_packets() -> None:
    assert rtp.is_keyframe("VP8", bytes([0x90, 0x80, 0x05, 0x10]))  # I with 7-bit picture id
    assert not rtp.is_keyframe("VP8", bytes([0x00, 0x10]))  # S=0: continuation
    assert not rtp.is_frame_start("VP8", bytes([0x00, 0x10]))
    assert not rtp.is_keyframe("VP8", bytes([0x11, 0x10]))  # PartID 1
    assert not rtp.is_frame_start("VP8", bytes([0x11, 0x10]))
    for truncated in (b"", b"\x90", b"\x90\x80", b"\x90\x80\x85", b"\x90\x40"):
        assert not rtp.is_keyframe("VP8", truncated)
    assert not rtp.is_frame_start("VP8", b"")


def h264_nal(nal_type: int, size: int = 20) -> bytes:
    return bytes([0x60 | nal_type]) + bytes(i % 255 + 1 for i in range(size - 1))


def test_h264_keyframes_single_stap_fu() -> None:
    assert rtp.is_keyframe("H264", h264_nal(5))
    assert rtp.is_keyframe("h264", h264_nal(7))
    assert not rtp.is_keyframe("H264", h264_nal(1))
    assert not rtp.is_keyframe("H264", h264_nal(8))
    stap = H264Encoder._packetize([h264_nal(7, 10), h264_nal(8, 4), h264_nal(5, 30)])
    assert len(stap) == 1 and stap[0][0] & 0x1F == 24
    assert rtp.is_keyframe("H264", stap[0])
    only_p = H264Encoder._packetize([h264_nal(6, 5), h264_nal(1, 30)])
    assert only_p[0][0] & 0x1F == 24 and not rtp.is_keyframe("H264", only_p[0])
    fus = H264Encoder._packetize([h264_nal(5, 3000)])
    assert len(fus) == 3 and all(p[0] & 0x1F == 28 for p in fus)
    assert [rtp.is_keyframe("H264", p) for p in fus] == [True, False, False]
    assert [rtp.is_frame_start("H264", p) for p in fus] == [True, False, False]
    fus_p = H264Encoder._packetize([h264_nal(1, 3000)])
    assert [rtp.is_keyframe("H264", p) for p in fus_p] == [False, False, False]
    assert rtp.is_frame_start("H264", h264_nal(1)) and rtp.is_frame_start("H264", stap[0])
    for odd in (b"", b"\x7c", b"\x78", b"\x78\x00", b"\x78\x00\x00\x65", bytes([25, 0, 0])):
        assert not rtp.is_keyframe("H264", odd)
    assert not rtp.is_frame_start("H264", b"") and not rtp.is_frame_start("H264", b"\x7c")
    assert not rtp.is_frame_start("H264", bytes([29, 0x80]))


def test_keyframe_offset_and_other_codecs() -> None:
    pkt = build(payload=h264_nal(5), ext=[(1, b"0")])
    assert rtp.is_keyframe("H264", pkt, rtp.payload_offset(pkt))
    assert not rtp.is_keyframe("opus", b"\x10\x10")
    assert rtp.is_frame_start("opus", b"")
    assert rtp.is_keyframe("VP8", memoryview(bytes([0x10, 0x10])))


@pytest.mark.parametrize("mime", ["video/VP8", "video/H264"])
def test_keyframes_from_real_encoders(mime: str) -> None:
    codec = mime.split("/")[1]
    encoder = get_encoder(RTCRtpCodecParameters(mimeType=mime, clockRate=90000, payloadType=96))
    rng = random.Random(1)
    for i in range(3):
        frame = av.VideoFrame(width=320, height=240, format="yuv420p")
        for plane in frame.planes:
            plane.update(rng.randbytes(plane.buffer_size))  # noise: many packets per frame
        frame.pts = i * 3000
        frame.time_base = fractions.Fraction(1, 90000)
        payloads, _ = encoder.encode(frame, force_keyframe=i == 0)
        assert len(payloads) > 3
        flags = [rtp.is_keyframe(codec, p) for p in payloads]
        assert flags[0] is (i == 0)
        # VP8 marks only the first packet; an H.264 IDR also has FU-A starts of its slices
        assert sum(flags) == (i == 0) if codec == "VP8" else sum(flags) >= (i == 0)
        assert not i or not any(flags)
        assert rtp.is_frame_start(codec, payloads[0])
        if codec == "VP8":
            assert not any(rtp.is_frame_start(codec, p) for p in payloads[1:])


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=40), codec=st.sampled_from(["VP8", "H264", "opus"]))
def test_keyframe_detection_fuzz_never_raises(data: bytes, codec: str) -> None:
    assert isinstance(rtp.is_keyframe(codec, data), bool)
    assert isinstance(rtp.is_frame_start(codec, data), bool)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=60))
def test_rtp_parsers_fuzz_raise_only_rtp_error(data: bytes) -> None:
    for pkt in (data, b"\x90" + data, b"\xb0" + data):
        for fn in (rtp.header_length, rtp.payload_bounds, rtp.parse_extensions, rtp.rtx_osn):
            try:
                fn(pkt)
            except RtpError:
                pass
        try:
            rtp.unwrap_rtx(pkt, ssrc=1, payload_type=96)
            rtp.wrap_rtx(pkt, ssrc=1, payload_type=97, seq=1)
        except RtpError:
            pass


def test_all_is_complete() -> None:
    public = {
        name
        for name, value in vars(rtp).items()
        if not name.startswith("_") and getattr(value, "__module__", None) == rtp.__name__
    }
    assert public <= set(rtp.__all__)
    assert all(hasattr(rtp, name) for name in rtp.__all__)
