"""RTP/RTCP toolkit for the packet-forwarding SFU (pure: standard library only).

Everything here works on the raw ``bytes`` of a decrypted packet. The hot path (header
accessors, `RtpRewriter.rewrite`, `PacketHistory`, `LossTracker.update`) builds no objects
beyond the ints it returns and the outgoing packet itself: per-packet Python overhead is what
limits a Python SFU (`/work/shared/reference/media-stack.md` §2), so per-pair work is
precomputed once (`ExtensionRewriter`) and per-packet work is a handful of ``struct`` calls.

Parts:

* Header accessors (`seq`, `timestamp`, `ssrc`, `payload_type`, `marker`, ...) read fields
  without validating; `header_length` / `payload_offset` / `payload_bounds` validate and raise
  `RtpError`. `is_rtcp` demultiplexes RTP from RTCP on an rtcp-mux transport (RFC 5761 §4).
* Header extensions (RFC 8285 one-byte ``0xBEDE`` and two-byte ``0x100x`` forms):
  `parse_extensions`, `get_extension`, `pack_extensions`, and `ExtensionRewriter`, which maps
  one publisher's negotiated ids to one subscriber's, drops what the subscriber did not
  negotiate, and writes the subscriber transceiver's MID (Chrome demuxes BUNDLEd streams by
  MID, RFC 8843 §15).
* `RtpRewriter`: one per consumer (subscriber stream). New SSRC/PT, sequence number and
  timestamp shifted by per-consumer offsets, extensions rewritten; keeps seq/ts continuous when
  the source changes (SSRC change, `RtpRewriter.switch_source`) and translates the source's
  Sender Reports so lip sync survives forwarding.
* RTX (RFC 4588): `wrap_rtx`, `unwrap_rtx`.
* RTCP (RFC 3550, RFC 4585, RFC 5104, draft-alvestrand-rmcat-remb): `parse_rtcp` (never
  raises; malformed packets are skipped) into small frozen objects, and builders `pli`, `fir`,
  `nack`, `receiver_report`, `sender_report`, `remb`, `sdes`, `bye`.
* `SeqUnwrapper`, `PacketHistory` (NACK answers), `LossTracker` (RR stats, jitter, NACK list).
* Keyframe / frame-start detection without decoding for VP8 (RFC 7741) and H.264 (RFC 6184).

What is deliberately *not* rewritten: the codec payload. In particular VP8's PictureID and
TL0PICIDX (RFC 7741 §4.2) pass through untouched. That is correct as long as a consumer
forwards a single source without dropping frames (no simulcast layer switching, no temporal
layer dropping): the receiver sees one encoder's numbering. When the source switches, the
jump in PictureID is harmless because a keyframe (requested by the caller) follows. Layer
switching would need PictureID/TL0PICIDX rewriting here; it is not implemented.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, TypeAlias

__all__ = [
    "AUDIO_LEVEL_URI",
    "MID_URI",
    "Bye",
    "ExtensionRewriter",
    "Fir",
    "LossTracker",
    "Nack",
    "Packet",
    "PacketHistory",
    "Pli",
    "ReceiverReport",
    "Remb",
    "ReportBlock",
    "RtcpPacket",
    "RtpError",
    "RtpRewriter",
    "SenderReport",
    "SeqUnwrapper",
    "bye",
    "csrc_count",
    "fir",
    "get_extension",
    "has_extension",
    "has_padding",
    "header_length",
    "is_frame_start",
    "is_keyframe",
    "is_rtcp",
    "is_rtp",
    "marker",
    "nack",
    "pack_extensions",
    "parse_extensions",
    "parse_rtcp",
    "payload",
    "payload_bounds",
    "payload_offset",
    "payload_type",
    "pli",
    "receiver_report",
    "remb",
    "rewrite",
    "rtx_osn",
    "sdes",
    "sender_report",
    "seq",
    "ssrc",
    "timestamp",
    "unwrap_rtx",
    "version",
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
_SEQ_TS_SSRC = struct.Struct("!HII")  # at offset 2
_pack_hdr = _HDR.pack
_unpack_seq_ts_ssrc = _SEQ_TS_SSRC.unpack_from
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_RTCP_HDR = struct.Struct("!BBH")
_TWO_U32 = struct.Struct("!II")
_TWO_U16 = struct.Struct("!HH")
_SENDER_INFO = struct.Struct("!QIII")  # NTP, RTP timestamp, packet count, octet count
_REPORT_BLOCK = struct.Struct("!IIIIII")  # ssrc, fraction|lost, ext seq, jitter, lsr, dlsr
_ZEROS = tuple(bytes(n) for n in range(18))  # one-byte elements are 2-17 bytes
_PAD = (b"", b"\x00", b"\x00\x00", b"\x00\x00\x00")

# RTCP packet types (RFC 3550 §12.1, RFC 4585 §6.1)
_SR: Final = 200
_RR: Final = 201
_SDES: Final = 202
_BYE: Final = 203
_RTPFB: Final = 205
_PSFB: Final = 206
_FMT_NACK: Final = 1
_FMT_PLI: Final = 1
_FMT_FIR: Final = 4
_FMT_AFB: Final = 15


class RtpError(ValueError):
    """A malformed RTP/RTCP packet, or arguments a packet cannot carry."""


# ---------------------------------------------------------------------------------------------
# Header accessors. No validation: callers on the hot path have already checked the packet
# with `is_rtp`/`header_length` (or take an IndexError on a < 12-byte packet).


def version(pkt: Packet) -> int:
    """Return the RTP/RTCP version field (2 for every valid packet)."""
    return pkt[0] >> 6


def has_padding(pkt: Packet) -> bool:
    """Return the P bit: the last byte counts padding bytes at the end of the packet."""
    return bool(pkt[0] & 0x20)


def has_extension(pkt: Packet) -> bool:
    """Return the X bit: a header extension block follows the CSRC list."""
    return bool(pkt[0] & 0x10)


def csrc_count(pkt: Packet) -> int:
    """Return the number of CSRC identifiers after the fixed header."""
    return pkt[0] & 0x0F


def marker(pkt: Packet) -> bool:
    """Return the M bit (last packet of a video frame; start of an audio talkspurt)."""
    return bool(pkt[1] & 0x80)


def payload_type(pkt: Packet) -> int:
    """Return the 7-bit payload type."""
    return pkt[1] & 0x7F


def seq(pkt: Packet) -> int:
    """Return the 16-bit sequence number."""
    return (pkt[2] << 8) | pkt[3]


def timestamp(pkt: Packet) -> int:
    """Return the 32-bit RTP timestamp."""
    return int.from_bytes(pkt[4:8], "big")


def ssrc(pkt: Packet) -> int:
    """Return the 32-bit SSRC (for RTCP: the sender SSRC of the first packet)."""
    return int.from_bytes(pkt[8:12], "big")


def is_rtcp(pkt: Packet) -> bool:
    """Tell RTCP from RTP on an rtcp-mux transport (RFC 5761 §4).

    RTCP packet types 192–223 put 64–95 in the low 7 bits of the second byte, where RTP has
    its payload type; payload types 64–95 are therefore never used with rtcp-mux.
    """
    return len(pkt) >= 2 and 64 <= (pkt[1] & 0x7F) <= 95


def is_rtp(pkt: Packet) -> bool:
    """Return True for a packet that looks like RTP: version 2, ≥ 12 bytes, not RTCP."""
    return len(pkt) >= 12 and (pkt[0] & 0xC0) == 0x80 and not 64 <= (pkt[1] & 0x7F) <= 95


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


payload_offset = header_length
"""Alias of `header_length`: where the payload starts."""


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


def payload(pkt: Packet) -> bytes:
    """Return a copy of the payload without padding.

    Raises:
        RtpError: malformed header or padding count.
    """
    start, end = payload_bounds(pkt)
    return bytes(pkt[start:end])


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


def _extension_block(pkt: Packet) -> tuple[int, int, int] | None:
    """Return ``(profile, body_start, body_end)`` of the extension block, if any."""
    n = len(pkt)
    if n < 12 or (pkt[0] & 0xC0) != 0x80:
        raise RtpError("not an RTP v2 packet")
    if not pkt[0] & 0x10:
        return None
    pos = 12 + ((pkt[0] & 0x0F) << 2)
    if pos + 4 > n:
        raise RtpError("RTP header extension is truncated")
    profile = (pkt[pos] << 8) | pkt[pos + 1]
    end = pos + 4 + (((pkt[pos + 2] << 8) | pkt[pos + 3]) << 2)
    if end > n:
        raise RtpError("RTP header extension is truncated")
    return profile, pos + 4, end


def parse_extensions(pkt: Packet) -> list[tuple[int, bytes]]:
    """Return the header extension elements ``[(id, value), ...]`` in packet order.

    Unknown profiles (neither one-byte nor two-byte) yield no elements.

    Raises:
        RtpError: malformed header or extension block.
    """
    block = _extension_block(pkt)
    if block is None:
        return []
    profile, start, end = block
    return _extension_elements(pkt, start, end, profile)


def get_extension(pkt: Packet, ext_id: int) -> bytes | None:
    """Return the value of extension element ``ext_id`` or None (e.g. audio level on ingress).

    Raises:
        RtpError: malformed header or extension block.
    """
    for element_id, value in parse_extensions(pkt):
        if element_id == ext_id:
            return value
    return None


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


# (block length, shape mask, shape, keep mask, shift, const, output length): see _make_plan
_Plan: TypeAlias = tuple[int, int, int, int, int, int, int]


def _from_be(data: bytes | bytearray) -> int:
    return int.from_bytes(data, "big")


class ExtensionRewriter:
    """Header extension translation for one (publisher stream → subscriber stream) pair.

    Built once per pair from the two negotiated ``{uri: id}`` maps. Elements whose URI both
    sides negotiated get the subscriber's id; others are dropped (overwritten with padding
    bytes, or cut off when they are last). The publisher's MID is always dropped; when the
    subscriber negotiated MID and ``mid`` is given, the subscriber transceiver's MID is
    written instead (in place when the lengths match, appended otherwise, or in a new block
    when the packet had none).

    The common case (one-byte input, subscriber ids ≤ 14, MID ≤ 16 bytes) is compiled, per
    block shape, into a few big-int operations (see `_make_plan`); a stream's blocks have
    one or two shapes, so the per-element walk runs only when the shape changes. Anything
    else (two-byte input, or output that needs the two-byte form) takes a slower general
    path that parses and re-packs the elements.

    Args:
        publisher: the publisher's negotiated extensions ``{uri: id}``.
        subscriber: the subscriber's negotiated extensions ``{uri: id}``.
        mid: the subscriber transceiver's MID, or None to write no MID.
    """

    __slots__ = (
        "_general",
        "_ids",
        "_mid_element",
        "_mid_out",
        "_mid_value",
        "_plan",
        "_table",
        "identity",
        "insert_block",
        "mid",
    )

    def __init__(
        self,
        publisher: Mapping[str, int],
        subscriber: Mapping[str, int],
        *,
        mid: str | None = None,
    ) -> None:
        for side in (publisher, subscriber):
            for uri, ext_id in side.items():
                if not 0 < ext_id < 256:
                    raise RtpError(f"extension id {ext_id} for {uri} is outside 1-255")
        self.mid = mid if MID_URI in subscriber else None
        self._mid_out = subscriber.get(MID_URI, 0) if self.mid is not None else 0
        self._mid_value = self.mid.encode() if self.mid is not None else b""
        if self.mid is not None and not 0 < len(self._mid_value) <= 255:
            raise RtpError("MID must be 1-255 bytes")
        self._ids: dict[int, int] = {
            in_id: subscriber[uri]
            for uri, in_id in publisher.items()
            if uri in subscriber and uri != MID_URI
        }
        #: True when packets can keep their extension block byte for byte.
        self.identity = dict(publisher) == dict(subscriber) and MID_URI not in subscriber
        mid_one_byte = self._mid_out == 0 or (self._mid_out < 15 and len(self._mid_value) <= 16)
        self._general = not mid_one_byte or any(out > 14 for out in self._ids.values())
        self._mid_element = (
            bytes(((self._mid_out << 4) | (len(self._mid_value) - 1),)) + self._mid_value
            if self._mid_out and mid_one_byte
            else b""
        )
        #: The block to add to packets without one (b"" when there is nothing to add).
        self.insert_block = (
            pack_extensions([(self._mid_out, self._mid_value)]) if self._mid_out else b""
        )
        # header byte (id << 4 | len-1) -> output header byte; 0 = drop; 1 = write our MID.
        table = [0] * 256
        pub_mid = publisher.get(MID_URI, 0)
        for h in range(0x10, 0xF0):
            in_id, length = h >> 4, (h & 0x0F) + 1
            out = self._ids.get(in_id, 0)
            if 0 < out < 15:
                table[h] = (out << 4) | (h & 0x0F)
            elif in_id == pub_mid and self._mid_element and length == len(self._mid_value):
                table[h] = 1
        self._table = bytes(table)
        self._plan: _Plan | None = None

    def rewrite_block(self, pkt: Packet, start: int) -> bytes | bytearray:
        """Return the rewritten extension block that starts at ``pkt[start]`` (its profile).

        The result includes the 4-byte profile/length header; ``b""`` means the output packet
        carries no extension block (clear the X bit).

        Raises:
            RtpError: the block is truncated or malformed.
        """
        if start + 4 > len(pkt):
            raise RtpError("RTP header extension is truncated")
        end = start + 4 + (((pkt[start + 2] << 8) | pkt[start + 3]) << 2)
        if end > len(pkt):
            raise RtpError("RTP header extension is truncated")
        return self._rewrite(pkt, start, end)

    def _rewrite(self, pkt: Packet, start: int, end: int) -> bytes | bytearray:
        if self.identity:
            return pkt[start:end]
        if self._general or pkt[start] != 0xBE or pkt[start + 1] != 0xDE:
            return self._rewrite_general(pkt, start, end, (pkt[start] << 8) | pkt[start + 1])
        # One-byte block: apply the plan of the last block with the same shape, as big-int
        # arithmetic (a few C calls instead of a Python loop over the elements).
        plan = self._plan
        if plan is None or plan[0] != end - start:
            plan = self._plan = self._make_plan(pkt, start, end)
        x = int.from_bytes(pkt[start:end], "big")
        _, shape_mask, shape, keep, shift, const, size = plan
        if x & shape_mask != shape:
            plan = self._plan = self._make_plan(pkt, start, end)
            _, shape_mask, shape, keep, shift, const, size = plan
        if not size:
            return b""
        x &= keep
        x = x << shift if shift >= 0 else x >> -shift
        return (x | const).to_bytes(size, "big")

    def _make_plan(self, pkt: Packet, start: int, end: int) -> _Plan:
        """Walk a one-byte block and derive how to rewrite every block of the same shape.

        The shape is every byte that is not an element value (block header, element
        headers, padding); blocks with the same length and shape parse identically. The
        output is ``((input & keep) shifted) | const`` where ``const`` holds the output
        block header, the new element headers, our MID and the padding.

        Raises:
            RtpError: an element is truncated.
        """
        n = end - start
        shape = bytearray(pkt[start:end])
        shape_mask = bytearray(n)
        keep = bytearray(n)
        const = bytearray(n)
        shape_mask[0:4] = b"\xff\xff\xff\xff"
        const[0:2] = b"\xbe\xde"
        table = self._table
        i = 4
        last = 4  # end of the last element kept
        mid_done = False
        while i < n:
            h = shape[i]
            shape_mask[i] = 0xFF
            if h < 0x10:  # padding (id 0)
                i += 1
                continue
            if h >= 0xF0:  # id 15: stop; the rest is cut off
                break
            size = (h & 0x0F) + 2
            if i + size > n:
                raise RtpError("one-byte header extension is truncated")
            out = table[h]
            if out > 1:
                const[i] = out
                keep[i + 1 : i + size] = b"\xff" * (size - 1)
                last = i + size
            elif out == 1:
                const[i : i + size] = self._mid_element
                mid_done = True
                last = i + size
            i += size
        tail = self._mid_element if not mid_done else b""
        body = last + len(tail)
        if body == 4:
            return (n, _from_be(shape_mask), _from_be(shape) & _from_be(shape_mask), 0, 0, 0, 0)
        size = body + (-body & 3)
        out_const = const[:last] + tail + _ZEROS[size - body]
        _U16.pack_into(out_const, 2, (size - 4) >> 2)
        mask = _from_be(shape_mask)
        return (
            n,
            mask,
            _from_be(shape) & mask,
            _from_be(keep),
            8 * (size - n),
            _from_be(out_const),
            size,
        )

    def _rewrite_general(self, pkt: Packet, start: int, end: int, profile: int) -> bytes:
        if profile != _ONE_BYTE and (profile & 0xFFF0) != _TWO_BYTE:
            return b""  # unknown profile: nothing the subscriber negotiated
        ids = self._ids
        elements = [
            (ids[ext_id], value)
            for ext_id, value in _extension_elements(pkt, start + 4, end, profile)
            if ext_id in ids
        ]
        if self._mid_out:
            elements.append((self._mid_out, self._mid_value))
        return pack_extensions(elements)


# ---------------------------------------------------------------------------------------------
# Rewriting


def _prefix(pkt: Packet, ext: ExtensionRewriter | None) -> tuple[int, bytes | bytearray, int, int]:
    """Validate any RTP packet and rewrite the CSRCs and extension block.

    Returns:
        The output's first byte (X bit adjusted), what goes between the 12-byte fixed header
        and ``pkt[payload_start:]`` (CSRCs and the rewritten extension block), the payload
        start, and the payload octet count (without padding).
    """
    n = len(pkt)
    if n < 12 or (pkt[0] & 0xC0) != 0x80:
        raise RtpError("not an RTP v2 packet")
    b0 = pkt[0]
    pos = 12 + ((b0 & 0x0F) << 2)
    if pos > n:
        raise RtpError("RTP CSRC list is truncated")
    block: bytes | bytearray = b""
    ext_start = pos
    if b0 & 0x10:
        if pos + 4 > n:
            raise RtpError("RTP header extension is truncated")
        pos += 4 + (((pkt[pos + 2] << 8) | pkt[pos + 3]) << 2)
        if pos > n:
            raise RtpError("RTP header extension is truncated")
        block = pkt[ext_start:pos] if ext is None else ext._rewrite(pkt, ext_start, pos)
    elif ext is not None:
        block = ext.insert_block
    octets = n - pos
    if b0 & 0x20:
        pad = pkt[-1]
        if pad == 0 or pad > octets:
            raise RtpError("RTP padding length is invalid")
        octets -= pad
    b0 = (b0 & 0xEF) | (0x10 if block else 0)
    return b0, (pkt[12:ext_start] + block if ext_start > 12 else block), pos, octets


def rewrite(
    pkt: Packet,
    *,
    ssrc: int,
    payload_type: int,
    seq: int,
    timestamp: int,
    extensions: ExtensionRewriter | None = None,
) -> bytes:
    """Return a copy of ``pkt`` with new SSRC, PT, sequence number and timestamp.

    Stateless building block (absolute values); consumers use `RtpRewriter`, which keeps the
    offsets. The marker bit, CSRCs, payload and padding are kept.

    Args:
        pkt: a decrypted RTP packet.
        ssrc: outgoing SSRC.
        payload_type: outgoing payload type (0–127).
        seq: outgoing sequence number (taken mod 2^16).
        timestamp: outgoing timestamp (taken mod 2^32).
        extensions: how to rewrite header extensions; None copies them unchanged.

    Raises:
        RtpError: malformed packet.
    """
    b0, prefix, start, _ = _prefix(pkt, extensions)
    m_pt = (pkt[1] & 0x80) | (payload_type & 0x7F)
    hdr = _pack_hdr(b0, m_pt, seq & _MASK16, timestamp & _MASK32, ssrc & _MASK32)
    return hdr + prefix + pkt[start:]


class RtpRewriter:
    """Rewrites one source's packets for one consumer (a subscriber's stream).

    Output sequence number = input + seq offset (mod 2^16), timestamp = input + ts offset
    (mod 2^32), SSRC and payload type replaced, header extensions rewritten by
    ``extensions``. The offsets start at ``seq_offset``/``ts_offset``; they are recomputed
    when the source's SSRC changes (publisher restart, republish, another producer) or after
    `switch_source`, so that the output continues at ``last_seq + 1`` and the timestamp
    advances by a plausible step. The caller should request a keyframe after a switch.

    The rewriter also counts what it sent (``packets``, ``octets``) for Sender Reports, and
    `translate_sr` maps the source's SR onto the output timeline for lip sync.

    Feed it only the current source: a late packet of an old SSRC counts as a switch. When
    the new source is another publisher (other extension ids), call `set_extensions` too.

    Args:
        ssrc: the consumer's outgoing SSRC (from its SDP ``a=ssrc``).
        payload_type: the consumer's negotiated payload type for this codec.
        extensions: header extension translation for this pair; None copies blocks as is.
        clock_rate: RTP clock rate of the codec (for the default switch step).
        seq_offset: initial sequence number offset.
        ts_offset: initial timestamp offset.
        switch_step: timestamp step across a switch when the caller gives none; defaults
            to 20 ms of clock.
    """

    __slots__ = (
        "_b0",
        "_cur",
        "_hi_seq",
        "_hi_ts",
        "_insert",
        "_next_delta",
        "_seq_off",
        "_src",
        "_started",
        "_step",
        "_ts_off",
        "_ext",
        "clock_rate",
        "octets",
        "packets",
        "payload_type",
        "ssrc",
    )

    def __init__(
        self,
        ssrc: int,
        payload_type: int,
        *,
        extensions: ExtensionRewriter | None = None,
        clock_rate: int = 90000,
        seq_offset: int = 0,
        ts_offset: int = 0,
        switch_step: int | None = None,
    ) -> None:
        if not 0 <= payload_type < 128:
            raise RtpError(f"payload type {payload_type} is outside 0-127")
        self.ssrc = ssrc & _MASK32
        self.payload_type = payload_type
        self.clock_rate = clock_rate
        self.packets = 0
        self.octets = 0
        self._seq_off = seq_offset & _MASK16
        self._ts_off = ts_offset & _MASK32
        self._step = switch_step if switch_step is not None else max(1, clock_rate // 50)
        self._ext = extensions
        self._insert = b""
        self._b0 = 0x80
        self.set_extensions(extensions)
        self._src = -1  # source SSRC to expect; -1 = (re)synchronise on the next packet
        self._cur = -1  # source SSRC of the packets sent so far
        self._started = False
        self._hi_seq = 0  # highest input seq / its timestamp, of the current source
        self._hi_ts = 0
        self._next_delta: int | None = None

    @property
    def extensions(self) -> ExtensionRewriter | None:
        """The header extension translation in use."""
        return self._ext

    def set_extensions(self, extensions: ExtensionRewriter | None) -> None:
        """Use another header extension translation (e.g. the new source's publisher map)."""
        self._ext = extensions
        self._insert = extensions.insert_block if extensions is not None else b""
        self._b0 = 0x90 if self._insert else 0x80  # first byte of packets without a block

    @property
    def source_ssrc(self) -> int | None:
        """The SSRC of the source being forwarded, or None until (re)synchronised."""
        return self._src if self._src >= 0 else None

    @property
    def seq_offset(self) -> int:
        """The current sequence number offset."""
        return self._seq_off

    @property
    def ts_offset(self) -> int:
        """The current timestamp offset (add to source timestamps, mod 2^32)."""
        return self._ts_off

    @property
    def last_seq(self) -> int | None:
        """The highest sequence number sent so far, or None before the first packet."""
        return (self._hi_seq + self._seq_off) & _MASK16 if self._started else None

    @property
    def last_timestamp(self) -> int | None:
        """The timestamp of the packet with `last_seq`, or None before the first packet."""
        return (self._hi_ts + self._ts_off) & _MASK32 if self._started else None

    def switch_source(self, ts_delta: int | None = None) -> None:
        """Resynchronise on the next packet: output seq continues at ``last_seq + 1``.

        Call it when the consumer moves to another source, or resumes after a pause, even if
        the SSRC stays the same (an SSRC change is detected automatically).

        Args:
            ts_delta: timestamp step between the last packet sent and the next one, typically
                the elapsed wall time times the clock rate. None: keep the timestamp offset
                when the SSRC did not change (its timestamps are continuous), otherwise use
                the default step.
        """
        self._next_delta = ts_delta
        self._src = -1

    def _resync(self, in_seq: int, in_ts: int, src: int) -> None:
        if self._started:
            last_seq = (self._hi_seq + self._seq_off) & _MASK16
            last_ts = (self._hi_ts + self._ts_off) & _MASK32
            self._seq_off = (last_seq + 1 - in_seq) & _MASK16
            delta = self._next_delta
            if delta is None and src != self._cur:
                delta = self._step
            if delta is not None:
                self._ts_off = (last_ts + delta - in_ts) & _MASK32
        self._started = True
        self._next_delta = None
        self._src = self._cur = src
        self._hi_seq = in_seq
        self._hi_ts = in_ts

    def rewrite(self, pkt: Packet) -> bytes:
        """Return the outgoing packet for this consumer.

        Raises:
            RtpError: malformed packet.
        """
        try:
            in_seq, in_ts, src = _unpack_seq_ts_ssrc(pkt, 2)
        except struct.error:
            raise RtpError("RTP packet is shorter than 12 bytes") from None
        # Validate and build everything but the fixed header before touching any state.
        b0 = pkt[0]
        prefix: bytes | bytearray  # goes between the fixed header and pkt[start:]
        if b0 == 0x80:  # no padding, extension or CSRC (video once Chrome stops sending MID)
            b0 = self._b0
            prefix = self._insert
            start = 12
            octets = len(pkt) - 12
        else:
            ext = self._ext
            n = len(pkt)
            start = 16 + (((pkt[14] << 8) | pkt[15]) << 2) if n >= 16 else n + 1
            if b0 == 0x90 and ext is not None and start <= n:  # one extension block only
                prefix = ext._rewrite(pkt, 12, start)
                b0 = 0x90 if prefix else 0x80
                octets = n - start
            else:
                b0, prefix, start, octets = _prefix(pkt, ext)
        if src != self._src:
            self._resync(in_seq, in_ts, src)
        if 0 < ((in_seq - self._hi_seq) & 0xFFFF) < 0x8000:
            self._hi_seq = in_seq
            self._hi_ts = in_ts
        self.packets += 1
        self.octets += octets
        # literals instead of _MASK16/_MASK32: global lookups cost on this path
        return (
            _pack_hdr(
                b0,
                (pkt[1] & 0x80) | self.payload_type,
                (in_seq + self._seq_off) & 0xFFFF,
                (in_ts + self._ts_off) & 0xFFFFFFFF,
                self.ssrc,
            )
            + prefix  # small: concatenating it first copies the payload only twice
            + pkt[start:]
        )

    def translate_sr(self, sr: SenderReport) -> SenderReport | None:
        """Map the source's Sender Report onto this consumer's stream.

        The NTP time is kept and the RTP timestamp shifted by the timestamp offset, so the
        subscriber can align this stream with others of the same publisher (lip sync). The
        packet/octet counts are this consumer's own.

        Returns:
            The SR to send (no report blocks), or None when ``sr`` is not from the current
            source (its timestamps would map wrongly).
        """
        if not self._started or sr.ssrc != self._cur:
            return None
        return SenderReport(
            ssrc=self.ssrc,
            ntp=sr.ntp,
            rtp_timestamp=(sr.rtp_timestamp + self._ts_off) & _MASK32,
            packet_count=self.packets & _MASK32,
            octet_count=self.octets & _MASK32,
        )


# ---------------------------------------------------------------------------------------------
# RTX (RFC 4588 §4): payload = original sequence number (OSN) + original payload


def rtx_osn(pkt: Packet) -> int | None:
    """Return the original sequence number carried by an RTX packet, or None if it has none.

    Padding-only RTX packets (bandwidth probes) carry no OSN.

    Raises:
        RtpError: malformed packet.
    """
    start, end = payload_bounds(pkt)
    if end - start < 2:
        return None
    return (pkt[start] << 8) | pkt[start + 1]


def wrap_rtx(pkt: Packet, *, ssrc: int, payload_type: int, seq: int) -> bytes:
    """Wrap an (outgoing) packet for retransmission on an RTX stream.

    The timestamp, marker, CSRCs, extension block and padding are kept; the original
    sequence number becomes the first two payload bytes.

    Args:
        pkt: the packet as originally sent to this subscriber (e.g. from `PacketHistory`).
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
# RTCP


def _clamp_lost(lost: int) -> int:
    return max(-(1 << 23), min(lost, (1 << 23) - 1))


@dataclass(frozen=True, slots=True)
class ReportBlock:
    """One reception report block of an SR or RR (RFC 3550 §6.4.1).

    Attributes:
        ssrc: the source this block reports on.
        fraction_lost: lost fraction since the previous report, in 1/256.
        packets_lost: cumulative lost packets (signed 24-bit).
        highest_seq: extended highest sequence number received.
        jitter: interarrival jitter in timestamp units.
        lsr: middle 32 bits of the NTP time of the last SR received from ``ssrc``.
        dlsr: delay since that SR, in 1/65536 s.
    """

    ssrc: int
    fraction_lost: int
    packets_lost: int
    highest_seq: int
    jitter: int
    lsr: int = 0
    dlsr: int = 0

    def __bytes__(self) -> bytes:
        return _REPORT_BLOCK.pack(
            self.ssrc & _MASK32,
            ((self.fraction_lost & 0xFF) << 24) | (_clamp_lost(self.packets_lost) & 0xFFFFFF),
            self.highest_seq & _MASK32,
            self.jitter & _MASK32,
            self.lsr & _MASK32,
            self.dlsr & _MASK32,
        )


@dataclass(frozen=True, slots=True)
class SenderReport:
    """RTCP SR (PT 200): the sender's NTP ↔ RTP timestamp mapping and counts.

    Attributes:
        ssrc: the sender.
        ntp: 64-bit NTP timestamp (32.32 fixed point seconds since 1900).
        rtp_timestamp: the RTP timestamp corresponding to ``ntp``.
        packet_count: packets sent.
        octet_count: payload octets sent.
        reports: reception report blocks.
    """

    ssrc: int
    ntp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[ReportBlock, ...] = ()

    def __bytes__(self) -> bytes:
        return sender_report(
            self.ssrc,
            self.ntp,
            self.rtp_timestamp,
            self.packet_count,
            self.octet_count,
            self.reports,
        )


@dataclass(frozen=True, slots=True)
class ReceiverReport:
    """RTCP RR (PT 201)."""

    ssrc: int
    reports: tuple[ReportBlock, ...] = ()

    def __bytes__(self) -> bytes:
        return receiver_report(self.ssrc, self.reports)


@dataclass(frozen=True, slots=True)
class Bye:
    """RTCP BYE (PT 203): the sources are leaving."""

    ssrcs: tuple[int, ...]
    reason: str = ""

    def __bytes__(self) -> bytes:
        return bye(self.ssrcs, self.reason)


@dataclass(frozen=True, slots=True)
class Nack:
    """Generic NACK (RTPFB FMT 1, RFC 4585 §6.2.1), expanded to sequence numbers."""

    sender_ssrc: int
    media_ssrc: int
    seqs: tuple[int, ...]

    def __bytes__(self) -> bytes:
        return nack(self.sender_ssrc, self.media_ssrc, self.seqs)


@dataclass(frozen=True, slots=True)
class Pli:
    """Picture Loss Indication (PSFB FMT 1, RFC 4585 §6.3.1)."""

    sender_ssrc: int
    media_ssrc: int

    def __bytes__(self) -> bytes:
        return pli(self.sender_ssrc, self.media_ssrc)


@dataclass(frozen=True, slots=True)
class Fir:
    """Full Intra Request (PSFB FMT 4, RFC 5104 §4.3.1).

    Attributes:
        sender_ssrc: the requester.
        entries: ``(media_ssrc, command_seq_nr)`` per FCI entry.
    """

    sender_ssrc: int
    entries: tuple[tuple[int, int], ...]

    def __bytes__(self) -> bytes:
        body = b"".join(struct.pack("!IB3x", s & _MASK32, n & 0xFF) for s, n in self.entries)
        return _rtcp(_PSFB, _FMT_FIR, _TWO_U32.pack(self.sender_ssrc & _MASK32, 0) + body)


@dataclass(frozen=True, slots=True)
class Remb:
    """Receiver Estimated Max Bitrate (PSFB FMT 15 "REMB", draft-alvestrand-rmcat-remb).

    Attributes:
        sender_ssrc: the estimator.
        bitrate: estimated available bitrate in bit/s.
        ssrcs: the media streams the estimate applies to.
    """

    sender_ssrc: int
    bitrate: int
    ssrcs: tuple[int, ...]

    def __bytes__(self) -> bytes:
        return remb(self.sender_ssrc, self.bitrate, self.ssrcs)


RtcpPacket: TypeAlias = SenderReport | ReceiverReport | Bye | Nack | Pli | Fir | Remb
"""What `parse_rtcp` returns; SDES, APP, XR, TWCC and unknown feedback are skipped."""


def _report_blocks(data: Packet, pos: int, end: int, count: int) -> tuple[ReportBlock, ...]:
    blocks = []
    for _ in range(min(count, (end - pos) // 24)):
        src, word, ext_seq, jitter, lsr, dlsr = _REPORT_BLOCK.unpack_from(data, pos)
        lost = word & 0xFFFFFF
        if lost & 0x800000:
            lost -= 1 << 24
        blocks.append(ReportBlock(src, word >> 24, lost, ext_seq, jitter, lsr, dlsr))
        pos += 24
    return tuple(blocks)


def _parse_one(data: Packet, pt: int, count: int, pos: int, end: int) -> RtcpPacket | None:
    size = end - pos
    if pt == _SR:
        if size < 24:
            return None
        (sender,) = _U32.unpack_from(data, pos)
        ntp, rtp_ts, packets, octets = _SENDER_INFO.unpack_from(data, pos + 4)
        blocks = _report_blocks(data, pos + 24, end, count)
        return SenderReport(sender, ntp, rtp_ts, packets, octets, blocks)
    if pt == _RR:
        if size < 4:
            return None
        (sender,) = _U32.unpack_from(data, pos)
        return ReceiverReport(sender, _report_blocks(data, pos + 4, end, count))
    if pt == _BYE:
        n = min(count, size // 4)
        ssrcs = struct.unpack_from(f"!{n}I", data, pos)
        reason = ""
        rpos = pos + 4 * n
        if rpos < end:
            rlen = min(data[rpos], end - rpos - 1)
            reason = bytes(data[rpos + 1 : rpos + 1 + rlen]).decode("utf-8", "replace")
        return Bye(ssrcs, reason)
    if size < 8:
        return None
    sender, media = _TWO_U32.unpack_from(data, pos)
    if pt == _RTPFB:
        if count != _FMT_NACK:
            return None  # TWCC (FMT 15) and others: not ours to read
        seqs: list[int] = []
        for fpos in range(pos + 8, end - 3, 4):
            pid = (data[fpos] << 8) | data[fpos + 1]
            blp = (data[fpos + 2] << 8) | data[fpos + 3]
            seqs.append(pid)
            bit = 1
            while blp:
                if blp & 1:
                    seqs.append((pid + bit) & _MASK16)
                blp >>= 1
                bit += 1
        return Nack(sender, media, tuple(seqs))
    if pt == _PSFB:
        if count == _FMT_PLI:
            return Pli(sender, media)
        if count == _FMT_FIR:
            entries = tuple(
                (int.from_bytes(data[e : e + 4], "big"), data[e + 4])
                for e in range(pos + 8, end - 7, 8)
            )
            return Fir(sender, entries)
        if count == _FMT_AFB and size >= 16 and data[pos + 8 : pos + 12] == b"REMB":
            num = min(data[pos + 12], (size - 16) // 4)
            b = data[pos + 13]
            bitrate = (((b & 0x03) << 16) | (data[pos + 14] << 8) | data[pos + 15]) << (b >> 2)
            return Remb(sender, bitrate, struct.unpack_from(f"!{num}I", data, pos + 16))
    return None


def parse_rtcp(data: Packet) -> list[RtcpPacket]:
    """Parse a (compound) RTCP packet into `RtcpPacket` objects.

    Never raises: a packet with a bad header ends the walk (the compound boundaries are
    lost), a packet with a bad body is skipped, and what was parsed is returned.
    """
    out: list[RtcpPacket] = []
    pos = 0
    n = len(data)
    while pos + 4 <= n:
        b0 = data[pos]
        end = pos + 4 + (((data[pos + 2] << 8) | data[pos + 3]) << 2)
        if (b0 & 0xC0) != 0x80 or end > n:
            break
        body_end = end
        if b0 & 0x20:
            pad = data[end - 1]
            if pad == 0 or pad > end - pos - 4:
                pos = end
                continue
            body_end -= pad
        try:
            packet = _parse_one(data, data[pos + 1], b0 & 0x1F, pos + 4, body_end)
        except (struct.error, IndexError):  # pragma: no cover - the parsers check bounds
            packet = None
        if packet is not None:
            out.append(packet)
        pos = end
    return out


def _rtcp(packet_type: int, count: int, body: bytes) -> bytes:
    return _RTCP_HDR.pack(0x80 | count, packet_type, len(body) >> 2) + body


def pli(sender_ssrc: int, media_ssrc: int) -> bytes:
    """Build a Picture Loss Indication asking ``media_ssrc``'s sender for a keyframe."""
    return _rtcp(_PSFB, _FMT_PLI, _TWO_U32.pack(sender_ssrc & _MASK32, media_ssrc & _MASK32))


def fir(sender_ssrc: int, media_ssrc: int, seq_nr: int) -> bytes:
    """Build a Full Intra Request (RFC 5104 §4.3.1) for ``media_ssrc``.

    Args:
        sender_ssrc: the requester's SSRC.
        media_ssrc: the stream that should send a keyframe.
        seq_nr: command sequence number; increment it (mod 256) for each new request.
    """
    return bytes(Fir(sender_ssrc, ((media_ssrc, seq_nr),)))


def nack(sender_ssrc: int, media_ssrc: int, seqs: Iterable[int]) -> bytes:
    """Build a generic NACK for the given sequence numbers, packed as PID + BLP pairs.

    The numbers may span a wrap-around; they are ordered within ±2^15 of the first one and
    deduplicated.

    Raises:
        RtpError: no sequence numbers.
    """
    items = [s & _MASK16 for s in seqs]
    if not items:
        raise RtpError("NACK needs at least one sequence number")
    ref = items[0]
    ordered = sorted(set(items), key=lambda s: (s - ref + 0x8000) & _MASK16)
    fci: list[bytes] = []
    pid = ordered[0]
    blp = 0
    for s in ordered[1:]:
        d = (s - pid) & _MASK16
        if d <= 16:
            blp |= 1 << (d - 1)
        else:
            fci.append(_TWO_U16.pack(pid, blp))
            pid, blp = s, 0
    fci.append(_TWO_U16.pack(pid, blp))
    body = _TWO_U32.pack(sender_ssrc & _MASK32, media_ssrc & _MASK32) + b"".join(fci)
    return _rtcp(_RTPFB, _FMT_NACK, body)


def _blocks(reports: Sequence[ReportBlock]) -> bytes:
    if len(reports) > 31:
        raise RtpError("at most 31 report blocks fit in one SR/RR")
    return b"".join(bytes(r) for r in reports)


def receiver_report(ssrc: int, reports: Sequence[ReportBlock] = ()) -> bytes:
    """Build a Receiver Report.

    Raises:
        RtpError: more than 31 report blocks.
    """
    return _rtcp(_RR, len(reports), _U32.pack(ssrc & _MASK32) + _blocks(reports))


def sender_report(
    ssrc: int,
    ntp: int,
    rtp_timestamp: int,
    packet_count: int,
    octet_count: int,
    reports: Sequence[ReportBlock] = (),
) -> bytes:
    """Build a Sender Report.

    Raises:
        RtpError: more than 31 report blocks.
    """
    body = (
        _U32.pack(ssrc & _MASK32)
        + _SENDER_INFO.pack(
            ntp & 0xFFFFFFFFFFFFFFFF,
            rtp_timestamp & _MASK32,
            packet_count & _MASK32,
            octet_count & _MASK32,
        )
        + _blocks(reports)
    )
    return _rtcp(_SR, len(reports), body)


def remb(sender_ssrc: int, bitrate: int, ssrcs: Sequence[int]) -> bytes:
    """Build a REMB message (18-bit mantissa, 6-bit exponent; rounds the bitrate down).

    Raises:
        RtpError: negative bitrate or more than 255 SSRCs.
    """
    if bitrate < 0 or len(ssrcs) > 255:
        raise RtpError("REMB needs a bitrate >= 0 and at most 255 SSRCs")
    exponent = 0
    mantissa = bitrate
    while mantissa > 0x3FFFF:
        mantissa >>= 1
        exponent += 1
    if exponent > 63:
        raise RtpError("REMB bitrate is too large")
    body = (
        _TWO_U32.pack(sender_ssrc & _MASK32, 0)
        + b"REMB"
        + bytes((len(ssrcs), (exponent << 2) | (mantissa >> 16)))
        + _U16.pack(mantissa & _MASK16)
        + b"".join(_U32.pack(s & _MASK32) for s in ssrcs)
    )
    return _rtcp(_PSFB, _FMT_AFB, body)


def sdes(ssrc: int, cname: str) -> bytes:
    """Build an SDES packet with one CNAME chunk (RFC 3550 §6.5).

    Raises:
        RtpError: the CNAME is longer than 255 bytes.
    """
    text = cname.encode()
    if len(text) > 255:
        raise RtpError("CNAME is longer than 255 bytes")
    chunk = _U32.pack(ssrc & _MASK32) + bytes((1, len(text))) + text + b"\x00"
    chunk += _PAD[-len(chunk) & 3]
    return _rtcp(_SDES, 1, chunk)


def bye(ssrcs: Sequence[int], reason: str = "") -> bytes:
    """Build a BYE packet.

    Raises:
        RtpError: more than 31 SSRCs or a reason longer than 255 bytes.
    """
    text = reason.encode()
    if len(ssrcs) > 31 or len(text) > 255:
        raise RtpError("BYE takes at most 31 SSRCs and a 255-byte reason")
    body = b"".join(_U32.pack(s & _MASK32) for s in ssrcs)
    if text:
        tail = bytes((len(text),)) + text
        body += tail + _PAD[-len(tail) & 3]
    return _rtcp(_BYE, len(ssrcs), body)


# ---------------------------------------------------------------------------------------------
# Sequence numbers, history, loss


class SeqUnwrapper:
    """Extends 16-bit sequence numbers to unbounded ints across wrap-arounds.

    The first number is returned as is; later ones are placed within ±2^15 of the highest
    seen, so a reordered packet from before the first one can come out negative.
    """

    __slots__ = ("_highest",)

    def __init__(self) -> None:
        self._highest: int | None = None

    @property
    def highest(self) -> int | None:
        """The highest extended sequence number returned so far."""
        return self._highest

    def unwrap(self, seq: int) -> int:
        """Return the extended sequence number of ``seq`` (0–65535)."""
        highest = self._highest
        if highest is None:
            self._highest = seq
            return seq
        ext = highest + (((seq - highest + 0x8000) & _MASK16) - 0x8000)
        if ext > highest:
            self._highest = ext
        return ext


class PacketHistory:
    """Fixed-size ring of sent packets by sequence number, to answer NACKs.

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


class LossTracker:
    """Reception statistics and NACK bookkeeping for one incoming stream.

    Feeds Receiver Reports (RFC 3550 §6.4.1 and A.3: cumulative and fractional loss, A.8:
    interarrival jitter) and metrics, and keeps the list of missing sequence numbers to
    NACK, bounded by ``max_missing`` and ``max_retries``. Jitter is updated by in-order
    packets only, so retransmissions and reordering do not inflate it.

    Call `nacks` on a timer (about once per RTT) to get the numbers to request.

    Args:
        ssrc: the media SSRC the reports are about.
        max_missing: most missing numbers remembered; beyond it the oldest are given up.
        max_retries: how many times one number is NACKed before giving up.
    """

    __slots__ = (
        "_expected_prior",
        "_jitter16",
        "_keyframe",
        "_lsr",
        "_max_missing",
        "_max_retries",
        "_missing",
        "_received_prior",
        "_sr_arrival",
        "_transit",
        "_unwrapper",
        "base_seq",
        "highest_seq",
        "received",
        "ssrc",
    )

    def __init__(self, ssrc: int, *, max_missing: int = 256, max_retries: int = 10) -> None:
        self.ssrc = ssrc
        self.received = 0
        self.base_seq = 0  # extended seq of the first packet
        self.highest_seq = -1  # extended; -1 before the first packet
        self._unwrapper = SeqUnwrapper()
        self._max_missing = max_missing
        self._max_retries = max_retries
        self._missing: dict[int, int] = {}  # extended seq -> times NACKed
        self._keyframe = False
        self._jitter16 = 0  # jitter * 16 (A.8 integer form)
        self._transit = 0  # arrival - timestamp of the last in-order packet
        self._expected_prior = 0
        self._received_prior = 0
        self._lsr = 0
        self._sr_arrival = 0.0

    @property
    def expected(self) -> int:
        """Packets expected from the first to the highest sequence number received."""
        return self.highest_seq - self.base_seq + 1 if self.received else 0

    @property
    def lost(self) -> int:
        """Cumulative packets lost (expected − received; negative with duplicates)."""
        return self.expected - self.received

    @property
    def jitter(self) -> int:
        """Interarrival jitter in timestamp units."""
        return self._jitter16 >> 4

    @property
    def missing(self) -> list[int]:
        """The sequence numbers (16-bit) still missing, oldest first."""
        return [s & _MASK16 for s in self._missing]

    def update(self, seq: int, timestamp: int, arrival: int) -> int:
        """Account for one received packet.

        Args:
            seq: its sequence number (RTX already unwrapped).
            timestamp: its RTP timestamp.
            arrival: arrival time in the same clock units as the timestamp.

        Returns:
            The extended sequence number.
        """
        ext = self._unwrapper.unwrap(seq)
        self.received += 1
        highest = self.highest_seq
        if self.received == 1:
            self.base_seq = self.highest_seq = ext
            self._transit = arrival - timestamp
            return ext
        if ext > highest:
            self.highest_seq = ext
            if ext > highest + 1:
                self._add_missing(highest + 1, ext)
            transit = arrival - timestamp
            # D(i-1, i) of RFC 3550 A.8, with the timestamp difference taken mod 2^32
            d = ((transit - self._transit + 0x80000000) & _MASK32) - 0x80000000
            self._jitter16 += abs(d) - ((self._jitter16 + 8) >> 4)
            self._transit = transit
        elif self._missing:
            self._missing.pop(ext, None)
        return ext

    def _add_missing(self, first: int, end: int) -> None:
        missing = self._missing
        if end - first >= self._max_missing:
            missing.clear()
            first = end - self._max_missing
            self._keyframe = True
        for s in range(first, end):
            missing[s] = 0
        while len(missing) > self._max_missing:
            del missing[next(iter(missing))]
            self._keyframe = True

    def nacks(self) -> list[int]:
        """Return the sequence numbers to NACK now and count a retry for each.

        Numbers NACKed ``max_retries`` times are given up (and a keyframe is flagged).
        """
        missing = self._missing
        out = [s & _MASK16 for s in missing]
        limit = self._max_retries
        expired = []
        for s, tries in missing.items():
            if tries + 1 >= limit:
                expired.append(s)
            else:
                missing[s] = tries + 1
        for s in expired:
            del missing[s]
        if expired:
            self._keyframe = True
        return out

    def take_keyframe_request(self) -> bool:
        """Return True once after losses that retransmission will not repair."""
        flag = self._keyframe
        self._keyframe = False
        return flag

    def on_sender_report(self, ntp: int, arrival: float) -> None:
        """Remember the last SR from this source (for LSR/DLSR).

        Args:
            ntp: the SR's 64-bit NTP timestamp.
            arrival: when it arrived, in seconds on the caller's clock.
        """
        self._lsr = (ntp >> 16) & _MASK32
        self._sr_arrival = arrival

    def report_block(self, now: float) -> ReportBlock:
        """Build this stream's report block and start a new reporting interval.

        Args:
            now: current time in seconds on the clock given to `on_sender_report`.
        """
        expected = self.expected
        expected_interval = expected - self._expected_prior
        received_interval = self.received - self._received_prior
        self._expected_prior = expected
        self._received_prior = self.received
        lost_interval = expected_interval - received_interval
        fraction = 0
        if expected_interval > 0 and lost_interval > 0:
            fraction = min(255, (lost_interval << 8) // expected_interval)
        dlsr = 0
        if self._lsr:
            dlsr = max(0, min(_MASK32, int((now - self._sr_arrival) * 65536)))
        return ReportBlock(
            ssrc=self.ssrc,
            fraction_lost=fraction,
            packets_lost=_clamp_lost(self.lost),
            highest_seq=max(0, self.highest_seq) & _MASK32,
            jitter=self.jitter,
            lsr=self._lsr,
            dlsr=dlsr,
        )


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


def _vp8_frame_start(payload: _Buffer, offset: int) -> bool:
    return offset < len(payload) and (payload[offset] & 0x17) == 0x10


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


def _h264_frame_start(payload: _Buffer, offset: int) -> bool:
    n = len(payload)
    if offset >= n:
        return False
    nal = payload[offset] & 0x1F
    if 1 <= nal <= 24:
        return True
    if nal == 28:
        return offset + 1 < n and bool(payload[offset + 1] & 0x80)
    return False


def _always(payload: _Buffer, offset: int) -> bool:
    return True


def _never(payload: _Buffer, offset: int) -> bool:
    return False


_KEYFRAME = {"vp8": _vp8_keyframe, "h264": _h264_keyframe}
_FRAME_START = {"vp8": _vp8_frame_start, "h264": _h264_frame_start}


def is_keyframe(codec: str, payload: _Buffer, offset: int = 0) -> bool:
    """Return True if this RTP payload starts a keyframe.

    VP8 (RFC 7741): S bit set, PartID 0 and the P bit of the VP8 frame header clear.
    H.264 (RFC 6184): a single NAL unit of type 5 (IDR) or 7 (SPS), a STAP-A containing
    one, or the start fragment of an FU-A of such a type. Other codecs: False.

    Args:
        codec: codec name, e.g. ``"VP8"`` or ``"H264"`` (case-insensitive).
        payload: the RTP payload, or the whole packet with ``offset`` = `payload_offset`.
        offset: where the payload starts in ``payload``.
    """
    return _KEYFRAME.get(codec.lower(), _never)(payload, offset)


def is_frame_start(codec: str, payload: _Buffer, offset: int = 0) -> bool:
    """Return True if this RTP payload can begin a frame (a safe point to start forwarding).

    VP8: S bit set with PartID 0 (exact). H.264: a single NAL unit, a STAP-A or an FU-A
    start fragment (a frame may also span several such packets; use the previous packet's
    marker bit for certainty). Audio and other codecs: every packet is a frame.
    """
    return _FRAME_START.get(codec.lower(), _always)(payload, offset)
