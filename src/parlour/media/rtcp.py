"""RTCP (RFC 3550, RFC 4585, RFC 5104, draft-alvestrand-rmcat-remb,
draft-holmer-rmcat-transport-wide-cc-extensions-01), pure.

`parse_rtcp` (never raises; malformed packets are skipped) into small frozen objects
(`SenderReport`, `ReceiverReport`, `ReportBlock`, `Nack`, `Pli`, `Fir`, `Remb`, `Bye`,
`TransportFeedback`), and builders for what the SFU sends: `pli`, `nack`,
`receiver_report`, `sender_report`, `remb` (and `transport_feedback`, for tests and tools).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, TypeAlias

from parlour.media.rtp import Packet, RtpError

__all__ = [
    "Bye",
    "Fir",
    "Nack",
    "Pli",
    "ReceiverReport",
    "Remb",
    "ReportBlock",
    "RtcpPacket",
    "SenderReport",
    "TransportFeedback",
    "bye",
    "nack",
    "parse_rtcp",
    "pli",
    "receiver_report",
    "remb",
    "sender_report",
    "transport_feedback",
]

_MASK16: Final = 0xFFFF
_MASK32: Final = 0xFFFFFFFF
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_PAD = (b"", b"\x00", b"\x00\x00", b"\x00\x00\x00")
_RTCP_HDR = struct.Struct("!BBH")
_TWO_U32 = struct.Struct("!II")
_TWO_U16 = struct.Struct("!HH")
_SENDER_INFO = struct.Struct("!QIII")  # NTP, RTP timestamp, packet count, octet count
_REPORT_BLOCK = struct.Struct("!IIIIII")  # ssrc, fraction|lost, ext seq, jitter, lsr, dlsr

# RTCP packet types (RFC 3550 §12.1, RFC 4585 §6.1)
_SR: Final = 200
_RR: Final = 201
_BYE: Final = 203
_RTPFB: Final = 205
_PSFB: Final = 206
_FMT_NACK: Final = 1
_FMT_PLI: Final = 1
_FMT_FIR: Final = 4
_FMT_AFB: Final = 15
_FMT_TWCC: Final = 15  # RTPFB
_TWCC_TICK_US: Final = 250  # receive delta unit
_TWCC_REFERENCE_US: Final = 64_000  # reference time unit


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


@dataclass(frozen=True, slots=True)
class TransportFeedback:
    """Transport-wide congestion control feedback (RTPFB FMT 15,
    draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1).

    Attributes:
        sender_ssrc: the receiver sending the feedback.
        media_ssrc: the media source (unused by the protocol).
        base_seq: transport-wide sequence number of the first packet reported.
        feedback_count: the feedback packet's own counter (8 bits).
        arrivals: per packet from ``base_seq`` on (mod 2^16), its arrival time in µs on the
            receiver's clock (reference time + receive deltas), or None if not received.
    """

    sender_ssrc: int
    media_ssrc: int
    base_seq: int
    feedback_count: int
    arrivals: tuple[int | None, ...]

    def received(self) -> list[tuple[int, int]]:
        """``(transport-wide seq, arrival µs)`` of the packets received."""
        base = self.base_seq
        return [((base + i) & _MASK16, t) for i, t in enumerate(self.arrivals) if t is not None]

    def __bytes__(self) -> bytes:
        return transport_feedback(
            self.sender_ssrc, self.media_ssrc, self.base_seq, self.feedback_count, self.arrivals
        )


RtcpPacket: TypeAlias = (
    SenderReport | ReceiverReport | Bye | Nack | Pli | Fir | Remb | TransportFeedback
)
"""What `parse_rtcp` returns; SDES, APP, XR and unknown feedback are skipped."""


def _parse_twcc(
    data: Packet, sender: int, media: int, pos: int, end: int
) -> TransportFeedback | None:
    if end - pos < 16:
        return None
    base, count = _TWO_U16.unpack_from(data, pos + 8)
    if not count:
        return None  # reports nothing
    ref = (data[pos + 12] << 16) | (data[pos + 13] << 8) | data[pos + 14]
    if ref & 0x800000:
        ref -= 1 << 24
    fb_count = data[pos + 15]
    symbols: list[int] = []
    p = pos + 16
    while len(symbols) < count:
        if p + 2 > end:
            return None
        chunk = (data[p] << 8) | data[p + 1]
        p += 2
        if not chunk & 0x8000:  # run length: 2-bit symbol, 13-bit length
            run = chunk & 0x1FFF
            symbols.extend([(chunk >> 13) & 0x03] * min(run, count - len(symbols)))
        elif chunk & 0x4000:  # status vector of seven 2-bit symbols
            for shift in range(12, -1, -2):
                symbols.append((chunk >> shift) & 0x03)
        else:  # status vector of fourteen 1-bit symbols
            for shift in range(13, -1, -1):
                symbols.append((chunk >> shift) & 0x01)
    del symbols[count:]
    arrivals: list[int | None] = []
    t = ref * _TWCC_REFERENCE_US
    for symbol in symbols:
        if symbol == 1:
            if p + 1 > end:
                return None
            t += data[p] * _TWCC_TICK_US
            p += 1
        elif symbol == 2:
            if p + 2 > end:
                return None
            delta = (data[p] << 8) | data[p + 1]
            if delta & 0x8000:
                delta -= 1 << 16
            t += delta * _TWCC_TICK_US
            p += 2
        elif symbol == 3:
            return None  # reserved
        else:
            arrivals.append(None)
            continue
        arrivals.append(t)
    return TransportFeedback(sender, media, base, fb_count, tuple(arrivals))


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
        if count == _FMT_TWCC:
            return _parse_twcc(data, sender, media, pos, end)
        if count != _FMT_NACK:
            return None
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
        # RFC 4585 §6.2.1: at least one FCI; an empty NACK asks for nothing (and has no bytes).
        return Nack(sender, media, tuple(seqs)) if seqs else None
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


def transport_feedback(
    sender_ssrc: int,
    media_ssrc: int,
    base_seq: int,
    feedback_count: int,
    arrivals: Sequence[int | None],
) -> bytes:
    """A transport-wide CC feedback packet (see `TransportFeedback`): two-bit status vector
    chunks, small (1-byte) or large (2-byte signed) receive deltas. The reference time is the
    first arrival rounded down to 64 ms (0 without any).

    Raises:
        RtpError: a delta between consecutive arrivals does not fit 16 bits of 250 µs.
    """
    if not 0 < len(arrivals) <= 0xFFFF:
        raise RtpError("transport feedback reports 1-65535 packets")
    first = next((t for t in arrivals if t is not None), 0)
    ref = first // _TWCC_REFERENCE_US
    t = ref * _TWCC_REFERENCE_US
    symbols: list[int] = []
    deltas = bytearray()
    for arrival in arrivals:
        if arrival is None:
            symbols.append(0)
            continue
        delta = (arrival - t) // _TWCC_TICK_US
        t += delta * _TWCC_TICK_US
        if 0 <= delta <= 0xFF:
            symbols.append(1)
            deltas.append(delta)
        elif -0x8000 <= delta <= 0x7FFF:
            symbols.append(2)
            deltas += (delta & 0xFFFF).to_bytes(2, "big")
        else:
            raise RtpError(f"receive delta {delta * _TWCC_TICK_US} µs does not fit")
    chunks = bytearray()
    for start in range(0, len(symbols), 7):
        chunk = 0xC000
        for i, symbol in enumerate(symbols[start : start + 7]):
            chunk |= symbol << (12 - 2 * i)
        chunks += chunk.to_bytes(2, "big")
    body = (
        _TWO_U32.pack(sender_ssrc & _MASK32, media_ssrc & _MASK32)
        + _TWO_U16.pack(base_seq & _MASK16, len(arrivals))
        + (ref & 0xFFFFFF).to_bytes(3, "big")
        + bytes([feedback_count & 0xFF])
        + bytes(chunks)
        + bytes(deltas)
    )
    return _rtcp(_RTPFB, _FMT_TWCC, body + _PAD[-len(body) & 3])
