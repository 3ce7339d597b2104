"""Codec bitstream helpers (pure), checked against streams PyAV encodes."""

from __future__ import annotations

import fractions
import struct

import av
import pytest

from parlour.recording.bitstream import (
    opus_head,
    opus_packet_samples,
    parse_sps,
    unescape_rbsp,
    vp8_frame_info,
)
from tests.recording_samples import encode_opus, encode_video, split_annexb


@pytest.mark.parametrize("size", [(160, 120), (322, 242), (640, 360), (1280, 720)])
def test_vp8_keyframe_size(size: tuple[int, int]) -> None:
    frames = encode_video("VP8", 2, size=size)
    assert vp8_frame_info(frames[0].data) == (True, *size)
    assert vp8_frame_info(frames[1].data) == (False, 0, 0)
    assert vp8_frame_info(b"") == (False, 0, 0)


def _sps(profile: str, size: tuple[int, int]) -> bytes:
    ctx = av.CodecContext.create("libx264", "w")
    ctx.width, ctx.height = size
    ctx.pix_fmt = "yuv420p"
    ctx.time_base = fractions.Fraction(1, 30)
    ctx.profile = profile
    ctx.options = {"preset": "ultrafast"}
    frame = av.VideoFrame(*size, "yuv420p")
    frame.pts = 0
    data = b"".join(bytes(p) for p in [*ctx.encode(frame), *ctx.encode(None)])
    return next(n for n in split_annexb(data) if n[0] & 0x1F == 7)


@pytest.mark.parametrize("profile", ["Baseline", "Main", "High"])
@pytest.mark.parametrize("size", [(160, 120), (322, 242), (1280, 720), (1920, 1080)])
def test_h264_sps_size_with_cropping(profile: str, size: tuple[int, int]) -> None:
    assert parse_sps(_sps(profile, size)) == size


def test_h264_sps_rejects_other_nals_and_truncation() -> None:
    sps = _sps("High", (320, 240))
    assert parse_sps(b"\x68" + sps[1:]) is None  # a PPS header
    assert parse_sps(sps[:5]) is None


def test_unescape_rbsp() -> None:
    assert unescape_rbsp(b"\x00\x00\x03\x01\x00\x00\x03") == b"\x00\x00\x01\x00\x00"
    assert unescape_rbsp(b"abc") == b"abc"


def test_opus_samples_from_real_packets() -> None:
    assert {opus_packet_samples(f.data) for f in encode_opus(0.2)} == {960}


@pytest.mark.parametrize(
    ("toc", "extra", "samples"),
    [
        (0 << 3, b"", 480),  # SILK NB 10 ms, one frame
        (3 << 3, b"", 2880),  # SILK 60 ms
        (13 << 3 | 1, b"", 1920),  # hybrid FB 20 ms, two frames
        (16 << 3 | 2, b"", 240),  # CELT NB 2.5 ms, two frames
        (31 << 3 | 3, b"\x03", 2880),  # CELT FB 20 ms, code 3 with 3 frames
        (31 << 3 | 3, b"\x07", 0),  # 140 ms: too long
        (31 << 3 | 3, b"", 0),  # code 3 without its count byte
    ],
)
def test_opus_toc(toc: int, extra: bytes, samples: int) -> None:
    assert opus_packet_samples(bytes([toc]) + extra) == samples


def test_opus_head_layout() -> None:
    head = opus_head(2)
    assert head[:8] == b"OpusHead" and len(head) == 19
    assert struct.unpack("<BBHIhB", head[8:]) == (1, 2, 0, 48000, 0, 0)
