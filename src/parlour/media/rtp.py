"""RTP packets for the packet-forwarding SFU (pure: standard library only).

Everything here works on the raw ``bytes`` of a decrypted packet, building no objects beyond
the ints it returns and the outgoing packet itself: per-packet Python overhead is what limits
a Python SFU, so per-packet work is a handful of ``struct`` calls.

* Header accessors (`seq`, `timestamp`, `ssrc`) read fields without validating;
  `header_length` and `payload_bounds` validate and raise `RtpError`.
* Header extensions (RFC 8285 one-byte ``0xBEDE`` and two-byte ``0x100x`` forms):
  `pack_extensions`, and the element parser `rewrite.ExtensionRewriter` falls back on.
* RTX (RFC 4588): `wrap_rtx`, `unwrap_rtx`.
* `PacketHistory`: the packets a producer received, by sequence number, for NACK answers.
* `is_keyframe`: keyframe detection without decoding, VP8 (RFC 7741) and H.264 (RFC 6184).

The other RTP/RTCP modules: `rtcp` (parse and build), `rewrite` (per-consumer header
rewriting, Sender Report translation), `stats` (receive statistics, NACK lists).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Final, TypeAlias

__all__ = [
    "AUDIO_LEVEL_URI",
    "MID_URI",
    "Packet",
    "PacketHistory",
    "RtpError",
    "header_length",
    "is_keyframe",
    "pack_extensions",
    "payload_bounds",
    "seq",
    "ssrc",
    "timestamp",
    "unwrap_rtx",
    "wrap_rtx",
]

Packet: TypeAlias = bytes | bytearray
"""A decrypted RTP or RTCP packet."""

_Buffer: TypeAlias = bytes | bytearray | memoryview

MID_URI: Final = "urn:ietf:params:rtp-hdrext:sdes:mid"
AUDIO_LEVEL_URI: Final = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"

_MASK16: Final = 0xFFFF
_MASK32: Final = 0xFFFFFFFF
_ONE_BYTE: Final = 0xBEDE
_TWO_BYTE: Final = 0x1000  # low 4 bits are "appbits" (RFC 8285 §4.3)

_HDR = struct.Struct("!BBHII")  # V/P/X/CC, M/PT, seq, timestamp, SSRC
_ZEROS = tuple(bytes(n) for n in range(18))  # one-byte elements are 2-17 bytes
_PAD = (b"", b"\x00", b"\x00\x00", b"\x00\x00\x00")


class RtpError(ValueError):
    """A malformed RTP/RTCP packet, or arguments a packet cannot carry."""


# ---------------------------------------------------------------------------------------------
# Header accessors. No validation: the hot path reads packets SRTP has already unprotected
# (`dtls.DtlsSrtpTransport` tells RTP from RTCP); `header_length`/`payload_bounds` validate.


def seq(pkt: Packet) -> int:
    """Return the 16-bit sequence number."""
    return (pkt[2] << 8) | pkt[3]


def timestamp(pkt: Packet) -> int:
    """Return the 32-bit RTP timestamp."""
    return int.from_bytes(pkt[4:8], "big")


def ssrc(pkt: Packet) -> int:
    """Return the 32-bit SSRC (for RTCP: the sender SSRC of the first packet)."""
    return int.from_bytes(pkt[8:12], "big")


def header_length(pkt: Packet) -> int:
    """Return the length of the RTP header including CSRCs and the extension block.

    Raises:
        RtpError: the packet is not version 2 or is shorter than its header says.
    """
    n = len(pkt)
    if n < 12 or (pkt[0] & 0xC0) != 0x80:
        raise RtpError("not an RTP v2 packet")
    b0 = pkt[0]
    pos = 12 + ((b0 & 0x0F) << 2)
    if b0 & 0x10:
        if pos + 4 > n:
            raise RtpError("RTP header extension is truncated")
        pos += 4 + (((pkt[pos + 2] << 8) | pkt[pos + 3]) << 2)
    if pos > n:
        raise RtpError("RTP header is truncated")
    return pos


def payload_bounds(pkt: Packet) -> tuple[int, int]:
    """Return ``(start, end)`` of the payload, excluding padding (RFC 3550 §5.1, P bit).

    Raises:
        RtpError: malformed header or padding count.
    """
    start = header_length(pkt)
    end = len(pkt)
    if pkt[0] & 0x20:
        pad = pkt[-1]
        if pad == 0 or start + pad > end:
            raise RtpError("RTP padding length is invalid")
        end -= pad
    return start, end


# ---------------------------------------------------------------------------------------------
# Header extensions (RFC 8285)


def _extension_elements(pkt: Packet, pos: int, end: int, profile: int) -> list[tuple[int, bytes]]:
    """Parse the elements of an extension block whose body is ``pkt[pos:end]``."""
    out: list[tuple[int, bytes]] = []
    if profile == _ONE_BYTE:
        while pos < end:
            h = pkt[pos]
            if h < 0x10:  # id 0: padding (one byte, whatever its length nibble)
                pos += 1
                continue
            if h >= 0xF0:  # id 15: reserved, "stop parsing" (RFC 8285 §4.2)
                break
            size = (h & 0x0F) + 1
            if pos + 1 + size > end:
                raise RtpError("one-byte header extension is truncated")
            out.append((h >> 4, bytes(pkt[pos + 1 : pos + 1 + size])))
            pos += 1 + size
    elif (profile & 0xFFF0) == _TWO_BYTE:
        while pos < end:
            ext_id = pkt[pos]
            if ext_id == 0:
                pos += 1
                continue
            if pos + 2 > end:
                raise RtpError("two-byte header extension is truncated")
            size = pkt[pos + 1]
            if pos + 2 + size > end:
                raise RtpError("two-byte header extension is truncated")
            out.append((ext_id, bytes(pkt[pos + 2 : pos + 2 + size])))
            pos += 2 + size
    return out


def pack_extensions(elements: Sequence[tuple[int, bytes]]) -> bytes:
    """Build an extension block (profile, length, elements, padding) from ``(id, value)``.

    Uses the one-byte form when every id is 1–14 and every value 1–16 bytes long, the
    two-byte form otherwise. An empty sequence gives ``b""`` (no block: clear the X bit).

    Raises:
        RtpError: an id outside 1–255 or a value longer than 255 bytes.
    """
    if not elements:
        return b""
    one_byte = all(0 < i < 15 and 0 < len(v) <= 16 for i, v in elements)
    parts: list[bytes] = []
    if one_byte:
        for ext_id, value in elements:
            parts.append(bytes(((ext_id << 4) | (len(value) - 1),)))
            parts.append(value)
        profile = _ONE_BYTE
    else:
        for ext_id, value in elements:
            if not 0 < ext_id < 256 or len(value) > 255:
                raise RtpError(f"extension id {ext_id} / length {len(value)} does not fit")
            parts.append(bytes((ext_id, len(value))))
            parts.append(value)
        profile = _TWO_BYTE
    body = b"".join(parts)
    body += _PAD[-len(body) & 3]
    return struct.pack("!HH", profile, len(body) >> 2) + body


# ---------------------------------------------------------------------------------------------
# RTX (RFC 4588 §4): payload = original sequence number (OSN) + original payload


def wrap_rtx(pkt: Packet, *, ssrc: int, payload_type: int, seq: int) -> bytes:
    """Wrap an (outgoing) packet for retransmission on an RTX stream.

    The timestamp, marker, CSRCs, extension block and padding are kept; the original
    sequence number becomes the first two payload bytes.

    Args:
        pkt: the packet as sent to this subscriber (the producer's `PacketHistory` copy,
            rewritten again for the subscriber).
        ssrc: the subscriber's RTX SSRC.
        payload_type: the RTX payload type whose ``apt`` is the packet's payload type.
        seq: the RTX stream's own next sequence number.

    Raises:
        RtpError: malformed packet.
    """
    start, _ = payload_bounds(pkt)
    return (
        _HDR.pack(
            pkt[0],
            (pkt[1] & 0x80) | (payload_type & 0x7F),
            seq & _MASK16,
            int.from_bytes(pkt[4:8], "big"),
            ssrc & _MASK32,
        )
        + pkt[12:start]
        + pkt[2:4]
        + pkt[start:]
    )


def unwrap_rtx(pkt: Packet, *, ssrc: int, payload_type: int) -> bytes | None:
    """Recover the original packet from an RTX packet.

    Args:
        pkt: an RTX packet from the publisher.
        ssrc: the media SSRC the RTX stream repairs (``a=ssrc-group:FID``).
        payload_type: the ``apt`` of the RTX payload type.

    Returns:
        The original packet, or None for a padding-only RTX packet (no OSN).

    Raises:
        RtpError: malformed packet.
    """
    start, end = payload_bounds(pkt)
    if end - start < 2:
        return None
    return (
        _HDR.pack(
            pkt[0],
            (pkt[1] & 0x80) | (payload_type & 0x7F),
            (pkt[start] << 8) | pkt[start + 1],
            int.from_bytes(pkt[4:8], "big"),
            ssrc & _MASK32,
        )
        + pkt[12:start]
        + pkt[start + 2 :]
    )


# ---------------------------------------------------------------------------------------------
# Packet history


class PacketHistory:
    """Fixed-size ring of packets by sequence number (a producer's), to answer NACKs.

    ``put`` stores a reference (no copy, no allocation) in slot ``seq % size``; ``get``
    returns it while it has not been overwritten by a packet ``size`` numbers later.
    512 slots hold about 2–5 s of 1 Mbit/s video.

    Args:
        size: number of slots, a power of two.
    """

    __slots__ = ("_mask", "_packets", "_seqs")

    def __init__(self, size: int = 512) -> None:
        if size <= 0 or size & (size - 1):
            raise RtpError("PacketHistory size must be a power of two")
        self._mask = size - 1
        self._packets: list[bytes | None] = [None] * size
        self._seqs: list[int] = [-1] * size

    @property
    def size(self) -> int:
        """The number of slots."""
        return self._mask + 1

    def put(self, pkt: bytes) -> None:
        """Store a packet under its own sequence number."""
        s = (pkt[2] << 8) | pkt[3]
        i = s & self._mask
        self._packets[i] = pkt
        self._seqs[i] = s

    def get(self, seq: int) -> bytes | None:
        """Return the packet with sequence number ``seq``, or None if it is gone."""
        i = seq & self._mask
        if self._seqs[i] == seq:
            return self._packets[i]
        return None

    def clear(self) -> None:
        """Forget every packet (e.g. when the consumer's SSRC changes)."""
        size = self._mask + 1
        self._packets = [None] * size
        self._seqs = [-1] * size


# ---------------------------------------------------------------------------------------------
# Keyframes and frame starts, without decoding


def _vp8_descriptor_size(payload: _Buffer, offset: int) -> int:
    """Return the VP8 payload descriptor size (RFC 7741 §4.2), or 0 if truncated."""
    n = len(payload)
    if offset >= n:
        return 0
    size = 1
    if payload[offset] & 0x80:  # X: extended control bits
        if offset + 1 >= n:
            return 0
        x = payload[offset + 1]
        size = 2
        if x & 0x80:  # I: PictureID, 7 or 15 bits (M)
            if offset + size >= n:
                return 0
            size += 2 if payload[offset + size] & 0x80 else 1
        if x & 0x40:  # L: TL0PICIDX
            size += 1
        if x & 0x30:  # T or K: TID/Y/KEYIDX
            size += 1
    return size if offset + size < n else 0


def _vp8_keyframe(payload: _Buffer, offset: int) -> bool:
    size = _vp8_descriptor_size(payload, offset)
    if not size:
        return False
    # S=1 and PartID=0: start of the first partition, whose header's P bit is 0 on keyframes
    return (payload[offset] & 0x17) == 0x10 and not payload[offset + size] & 0x01


def _h264_keyframe(payload: _Buffer, offset: int) -> bool:
    n = len(payload)
    if offset >= n:
        return False
    nal = payload[offset] & 0x1F
    if nal == 5 or nal == 7:  # IDR slice, SPS
        return True
    if nal == 24:  # STAP-A: [16-bit size, NAL] ...
        pos = offset + 1
        while pos + 2 < n:
            size = (payload[pos] << 8) | payload[pos + 1]
            if size == 0:
                break
            if payload[pos + 2] & 0x1F in (5, 7):
                return True
            pos += 2 + size
        return False
    if nal == 28:  # FU-A: start bit + original NAL type
        return offset + 1 < n and (payload[offset + 1] & 0x9F) in (0x85, 0x87)
    return False


def _never(payload: _Buffer, offset: int) -> bool:
    return False


_KEYFRAME = {"vp8": _vp8_keyframe, "h264": _h264_keyframe}


def is_keyframe(codec: str, payload: _Buffer, offset: int = 0) -> bool:
    """Return True if this RTP payload starts a keyframe.

    VP8 (RFC 7741): S bit set, PartID 0 and the P bit of the VP8 frame header clear.
    H.264 (RFC 6184): a single NAL unit of type 5 (IDR) or 7 (SPS), a STAP-A containing
    one, or the start fragment of an FU-A of such a type. Other codecs: False.

    Args:
        codec: codec name, e.g. ``"VP8"`` or ``"H264"`` (case-insensitive).
        payload: the RTP payload, or the whole packet with ``offset`` = `header_length`.
        offset: where the payload starts in ``payload``.
    """
    return _KEYFRAME.get(codec.lower(), _never)(payload, offset)
