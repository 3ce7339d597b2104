"""Pure codec bitstream helpers for muxing without decoding (stdlib only).

- VP8 (RFC 6386 §9.1): keyframe flag and picture size of a frame.
- H.264 (ITU-T H.264 §7.3.2.1): picture size from a sequence parameter set; whether a slice
  is the first of its picture.
- Opus (RFC 6716 §3.1): a packet's duration from its TOC byte; the `OpusHead` header
  (RFC 7845 §5.1) that Matroska stores as the track's CodecPrivate.
"""

from __future__ import annotations

import struct

__all__ = [
    "opus_head",
    "opus_packet_samples",
    "parse_sps",
    "unescape_rbsp",
    "vp8_frame_info",
]


def vp8_frame_info(frame: bytes) -> tuple[bool, int, int]:
    """(keyframe, width, height) of a VP8 frame; the size is 0×0 for interframes.

    The frame tag's bit 0 is 0 for a keyframe, which carries the start code 9d 01 2a and
    the 14-bit width and height.
    """
    if len(frame) < 3 or frame[0] & 0x01:
        return False, 0, 0
    if len(frame) < 10 or frame[3:6] != b"\x9d\x01\x2a":
        return False, 0, 0
    width = int.from_bytes(frame[6:8], "little") & 0x3FFF
    height = int.from_bytes(frame[8:10], "little") & 0x3FFF
    return True, width, height


def unescape_rbsp(data: bytes) -> bytes:
    """Remove emulation prevention bytes (00 00 03 → 00 00)."""
    if b"\x00\x00\x03" not in data:
        return data
    out = bytearray()
    zeros = 0
    for byte in data:
        if zeros >= 2 and byte == 3:
            zeros = 0
            continue
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


class _Bits:
    """MSB-first bit reader with Exp-Golomb codes."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def u(self, n: int) -> int:
        value = 0
        for _ in range(n):
            index = self.pos >> 3
            if index >= len(self.data):
                raise ValueError("truncated")
            value = (value << 1) | ((self.data[index] >> (7 - (self.pos & 7))) & 1)
            self.pos += 1
        return value

    def ue(self) -> int:
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise ValueError("bad Exp-Golomb code")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        value = self.ue()
        return (value + 1) // 2 if value & 1 else -(value // 2)


_HIGH_PROFILES = {100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135}


def _skip_scaling_list(bits: _Bits, size: int) -> None:
    last = next_scale = 8
    for _ in range(size):
        if next_scale != 0:
            next_scale = (last + bits.se() + 256) % 256
        last = next_scale or last


def parse_sps(nal: bytes) -> tuple[int, int] | None:
    """(width, height) in pixels from an SPS NAL unit (header byte included), or None."""
    if len(nal) < 4 or nal[0] & 0x1F != 7:
        return None
    bits = _Bits(unescape_rbsp(nal[1:]))
    try:
        profile = bits.u(8)
        bits.u(16)  # constraint flags, level
        bits.ue()  # seq_parameter_set_id
        chroma_format = 1
        separate_planes = 0
        if profile in _HIGH_PROFILES:
            chroma_format = bits.ue()
            if chroma_format == 3:
                separate_planes = bits.u(1)
            bits.ue()  # bit_depth_luma_minus8
            bits.ue()  # bit_depth_chroma_minus8
            bits.u(1)  # qpprime_y_zero_transform_bypass_flag
            if bits.u(1):  # seq_scaling_matrix_present_flag
                for i in range(8 if chroma_format != 3 else 12):
                    if bits.u(1):
                        _skip_scaling_list(bits, 16 if i < 6 else 64)
        bits.ue()  # log2_max_frame_num_minus4
        poc_type = bits.ue()
        if poc_type == 0:
            bits.ue()
        elif poc_type == 1:
            bits.u(1)
            bits.se()
            bits.se()
            for _ in range(bits.ue()):
                bits.se()
        bits.ue()  # max_num_ref_frames
        bits.u(1)  # gaps_in_frame_num_value_allowed_flag
        width_mbs = bits.ue() + 1
        height_units = bits.ue() + 1
        frame_mbs_only = bits.u(1)
        if not frame_mbs_only:
            bits.u(1)  # mb_adaptive_frame_field_flag
        bits.u(1)  # direct_8x8_inference_flag
        width = width_mbs * 16
        height = (2 - frame_mbs_only) * height_units * 16
        if bits.u(1):  # frame_cropping_flag
            left, right, top, bottom = bits.ue(), bits.ue(), bits.ue(), bits.ue()
            chroma_array = 0 if separate_planes else chroma_format
            unit_x = 1 if chroma_array in (0, 3) else 2
            unit_y = (2 - frame_mbs_only) * (2 if chroma_array == 1 else 1)
            width -= (left + right) * unit_x
            height -= (top + bottom) * unit_y
    except ValueError:
        return None
    if width <= 0 or height <= 0:
        return None
    return width, height


# Samples at 48 kHz of one Opus frame, by TOC configuration number (RFC 6716 §3.1).
_OPUS_FRAME_SAMPLES = (
    [480, 960, 1920, 2880] * 3  # SILK-only NB/MB/WB: 10, 20, 40, 60 ms
    + [480, 960] * 2  # Hybrid SWB/FB: 10, 20 ms
    + [120, 240, 480, 960] * 4  # CELT-only NB/WB/SWB/FB: 2.5, 5, 10, 20 ms
)


def opus_packet_samples(packet: bytes) -> int:
    """Samples (at 48 kHz) an Opus packet decodes to; 0 if it is malformed."""
    if not packet:
        return 0
    toc = packet[0]
    code = toc & 0x03
    if code == 0:
        frames = 1
    elif code in (1, 2):
        frames = 2
    elif len(packet) >= 2:
        frames = packet[1] & 0x3F
    else:
        return 0
    samples = frames * _OPUS_FRAME_SAMPLES[toc >> 3]
    return samples if samples <= 5760 else 0  # at most 120 ms per packet


def opus_head(channels: int = 2, pre_skip: int = 0, input_rate: int = 48000) -> bytes:
    """The 19-byte `OpusHead` (channel mapping family 0)."""
    return b"OpusHead" + struct.pack("<BBHIhB", 1, channels, pre_skip, input_rate, 0, 0)
