"""RTP packets (`parlour.media.rtp`): golden packets, aiortc interop, fuzzing."""

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
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from hypothesis import given, settings
from hypothesis import strategies as st

from parlour.media import rtp
from parlour.media.rtp import MID_URI, PacketHistory, RtpError
from tests.unit.media.rtp_packets import (
    AIORTC,
    GOLDEN_AUDIO,
    aiortc_map,
    build,
    extensions,
    payload,
)

# ---------------------------------------------------------------------------------------------
# header accessors


def test_accessors_on_golden_packet() -> None:
    pkt = GOLDEN_AUDIO
    assert rtp.seq(pkt) == 0x1234
    assert rtp.timestamp(pkt) == 100
    assert rtp.ssrc(pkt) == 0xDEADBEEF
    assert rtp.header_length(pkt) == 20
    assert rtp.payload_bounds(pkt) == (20, 25)


def test_accessors_agree_with_aiortc() -> None:
    packet = artp.RtpPacket(payload_type=100, marker=1, sequence_number=65535, timestamp=2**32 - 1)
    packet.ssrc = 0x01020304
    packet.csrc = [7, 8]
    packet.extensions.mid = "video"
    packet.extensions.audio_level = (True, 42)
    packet.payload = b"x" * 50
    packet.padding_size = 6
    data = packet.serialize(aiortc_map(AIORTC))
    assert rtp.seq(data) == 65535
    assert (rtp.timestamp(data), rtp.ssrc(data)) == (2**32 - 1, 0x01020304)
    start, end = rtp.payload_bounds(data)
    assert data[start:end] == b"x" * 50


def test_header_length_with_csrcs_and_padding() -> None:
    pkt = build(csrcs=(1, 2, 3), ext=[(5, b"ab")], payload=b"PAY", padding=4)
    assert rtp.header_length(pkt) == 12 + 12 + 8
    assert rtp.payload_bounds(pkt) == (32, 35)


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


@pytest.mark.parametrize("padding_byte", [0, 9])
def test_bad_padding_is_rejected(padding_byte: int) -> None:
    pkt = b"\xa0" + bytes(11) + b"\x00\x00\x00" + bytes([padding_byte])
    with pytest.raises(RtpError):
        rtp.payload_bounds(pkt)


# ---------------------------------------------------------------------------------------------
# header extensions


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
        assert extensions(b"\x90" + bytes(11) + block) == elements
    assert rtp.pack_extensions([]) == b""
    with pytest.raises(RtpError):
        rtp.pack_extensions([(256, b"x")])
    with pytest.raises(RtpError):
        rtp.pack_extensions([(1, b"x" * 256)])


# ---------------------------------------------------------------------------------------------
# RTX


def test_rtx_round_trip_and_aiortc_agreement() -> None:
    original = build(pt=96, marker=1, seq=4242, ts=9, ssrc=0x10, ext=[(1, b"0")], payload=b"VP8")
    wrapped = rtp.wrap_rtx(original, ssrc=0x20, payload_type=97, seq=7)
    packet = artp.RtpPacket.parse(original, aiortc_map({MID_URI: 1}))
    expected = artp.wrap_rtx(packet, payload_type=97, sequence_number=7, ssrc=0x20)
    assert wrapped == expected.serialize(aiortc_map({MID_URI: 1}))
    assert rtp.unwrap_rtx(wrapped, ssrc=0x10, payload_type=96) == original


def test_unwrap_rtx_keeps_padding_and_skips_probes() -> None:
    wrapped = build(pt=97, seq=1, ssrc=0x20, payload=b"\x01\x02DATA", padding=2)
    out = rtp.unwrap_rtx(wrapped, ssrc=0x10, payload_type=96)
    assert out is not None
    assert (rtp.seq(out), rtp.ssrc(out), out[1] & 0x7F) == (0x0102, 0x10, 96)
    assert payload(out) == b"DATA"
    probe = build(pt=97, payload=b"", padding=224)
    assert rtp.unwrap_rtx(probe, ssrc=1, payload_type=96) is None


# ---------------------------------------------------------------------------------------------
# PacketHistory


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
    assert not rtp.is_keyframe("VP8", bytes(descriptor))  # no VP8 header byte


def test_vp8_7bit_picture_id_and_non_start_packets() -> None:
    assert rtp.is_keyframe("VP8", bytes([0x90, 0x80, 0x05, 0x10]))  # I with 7-bit picture id
    assert not rtp.is_keyframe("VP8", bytes([0x00, 0x10]))  # S=0: continuation
    assert not rtp.is_keyframe("VP8", bytes([0x11, 0x10]))  # PartID 1
    for truncated in (b"", b"\x90", b"\x90\x80", b"\x90\x80\x85", b"\x90\x40"):
        assert not rtp.is_keyframe("VP8", truncated)


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
    fus_p = H264Encoder._packetize([h264_nal(1, 3000)])
    assert [rtp.is_keyframe("H264", p) for p in fus_p] == [False, False, False]
    for odd in (b"", b"\x7c", b"\x78", b"\x78\x00", b"\x78\x00\x00\x65", bytes([25, 0, 0])):
        assert not rtp.is_keyframe("H264", odd)


def test_keyframe_offset_and_other_codecs() -> None:
    pkt = build(payload=h264_nal(5), ext=[(1, b"0")])
    assert rtp.is_keyframe("H264", pkt, rtp.header_length(pkt))
    assert not rtp.is_keyframe("opus", b"\x10\x10")
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


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=40), codec=st.sampled_from(["VP8", "H264", "opus"]))
def test_keyframe_detection_fuzz_never_raises(data: bytes, codec: str) -> None:
    assert isinstance(rtp.is_keyframe(codec, data), bool)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=60))
def test_rtp_parsers_fuzz_raise_only_rtp_error(data: bytes) -> None:
    for pkt in (data, b"\x90" + data, b"\xb0" + data):
        for fn in (rtp.header_length, rtp.payload_bounds):
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
