"""Pure: RTP packets (bytes) in, whole codec frames out, for recording (stdlib only).

- VP8, RFC 7741: payload descriptor stripped; a frame starts at a packet with S=1 and
  partition index 0 and ends at the marker.
- H.264, RFC 6184 (packetization-mode 1): single NAL units, STAP-A and FU-A become one
  Annex-B access unit per RTP timestamp (start codes, SPS/PPS kept; a keyframe lacking
  them gets the last ones seen, so every keyframe can start a file).
- Opus, RFC 7587: one packet is one frame.

Robustness, all driven by the packets' own sequence numbers and timestamps:

- **Reordering** within a small window (`reorder_packets`, `reorder_seconds` of arrival
  time); a packet still missing after that is lost. Duplicates and packets older than the
  window are dropped.
- **Loss**: a frame with a missing packet is dropped whole; video then waits for the next
  keyframe (an interframe after a hole would decode to garbage). Lost audio is a gap.
- **Timeline**: RTP timestamps are unwrapped (32-bit wrap) onto one continuous, strictly
  increasing timeline, so a paused or muted track keeps its gap and later media is not
  shifted. When the source restarts (a new SSRC after `ssrc_switch_seconds` of silence of
  the old one, a sequence jump, or timestamps that disagree with arrival times by more
  than `max_jump_seconds`), the timeline continues from the arrival time instead.
- Only one SSRC is recorded at a time (a second stream, e.g. a simulcast layer, is
  ignored while the first one is alive).
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass

from parlour.recording.bitstream import parse_sps, vp8_frame_info

__all__ = ["CODECS", "Depacketizer", "Frame", "RtpPacket", "parse_rtp"]

#: Codec name → RTP clock rate.
CODECS = {"OPUS": 48000, "VP8": 90000, "H264": 90000}

_START_CODE = b"\x00\x00\x00\x01"
_RESTART_SEQ_GAP = 3000  # a sequence jump this large is a new stream, not loss


@dataclass(frozen=True, slots=True)
class RtpPacket:
    payload_type: int
    marker: bool
    seq: int
    timestamp: int
    ssrc: int
    payload: bytes


def parse_rtp(packet: bytes) -> RtpPacket | None:
    """The header fields and payload of an RTP packet (RFC 3550 §5.1), or None if it is not
    one (too short, not version 2, RTCP, bad extension or padding)."""
    size = len(packet)
    if size < 12:
        return None
    first = packet[0]
    if first >> 6 != 2:
        return None
    payload_type = packet[1] & 0x7F
    if 64 <= payload_type <= 95:  # RTCP (RFC 5761 §4)
        return None
    start = 12 + 4 * (first & 0x0F)
    if first & 0x10:
        if size < start + 4:
            return None
        start += 4 + 4 * int.from_bytes(packet[start + 2 : start + 4], "big")
    end = size
    if first & 0x20:
        padding = packet[-1]
        if padding == 0:
            return None
        end -= padding
    if start > end:
        return None
    return RtpPacket(
        payload_type=payload_type,
        marker=bool(packet[1] & 0x80),
        seq=int.from_bytes(packet[2:4], "big"),
        timestamp=int.from_bytes(packet[4:8], "big"),
        ssrc=int.from_bytes(packet[8:12], "big"),
        payload=packet[start:end],
    )


@dataclass(frozen=True, slots=True)
class Frame:
    """One complete encoded frame.

    Args:
        timestamp: on the track's continuous timeline, in RTP clock units (only
            differences matter).
        arrival: when its first packet arrived (the caller's monotonic seconds).
        width, height: the picture size a video keyframe declares (0 otherwise).
    """

    data: bytes
    timestamp: int
    keyframe: bool
    arrival: float
    width: int = 0
    height: int = 0


# -- per-codec frame assembly ------------------------------------------------------------

_Assembled = tuple[bytes, bool, int, int]  # data (b"" = nothing to emit), keyframe, w, h


class _Vp8:
    def __init__(self) -> None:
        self.parts: list[bytes] = []

    @staticmethod
    def _descriptor(payload: bytes) -> tuple[int, bool] | None:
        """(descriptor size, starts a frame) of a VP8 payload descriptor (RFC 7741 §4.2)."""
        if not payload:
            return None
        first = payload[0]
        size = 1
        if first & 0x80:  # X: extension byte follows
            if len(payload) < 2:
                return None
            ext = payload[1]
            size = 2
            if ext & 0x80:  # I: PictureID, 7 or 15 bits
                if len(payload) <= size:
                    return None
                size += 2 if payload[size] & 0x80 else 1
            if ext & 0x40:  # L: TL0PICIDX
                size += 1
            if ext & 0x30:  # T or K: TID/Y/KEYIDX
                size += 1
        if size >= len(payload):
            return None
        return size, bool(first & 0x10) and first & 0x07 == 0

    def starts_frame(self, payload: bytes) -> bool:
        descriptor = self._descriptor(payload)
        return descriptor is not None and descriptor[1]

    def add(self, payload: bytes) -> bool:
        descriptor = self._descriptor(payload)
        if descriptor is None:
            return False
        self.parts.append(payload[descriptor[0] :])
        return True

    def finish(self) -> _Assembled | None:
        data = b"".join(self.parts)
        self.parts = []
        if not data:
            return None
        keyframe, width, height = vp8_frame_info(data)
        return data, keyframe, width, height

    def reset(self) -> None:
        self.parts = []


class _H264:
    def __init__(self) -> None:
        self.nals: list[bytes] = []
        self.fragment: bytearray | None = None
        self.sps: bytes | None = None
        self.pps: bytes | None = None

    def starts_frame(self, payload: bytes) -> bool:
        # A FU-A fragment other than the first cannot begin an access unit.
        return bool(payload) and not (
            payload[0] & 0x1F == 28 and len(payload) > 1 and not payload[1] & 0x80
        )

    def add(self, payload: bytes) -> bool:
        if not payload:
            return False
        nal_type = payload[0] & 0x1F
        if 1 <= nal_type <= 23:
            if self.fragment is not None:
                return False
            self.nals.append(payload)
            return True
        if nal_type == 24:  # STAP-A
            if self.fragment is not None:
                return False
            pos = 1
            while pos < len(payload):
                if pos + 2 > len(payload):
                    return False
                size = int.from_bytes(payload[pos : pos + 2], "big")
                pos += 2
                if size == 0 or pos + size > len(payload):
                    return False
                self.nals.append(payload[pos : pos + size])
                pos += size
            return True
        if nal_type == 28 and len(payload) > 2:  # FU-A
            header = payload[1]
            if header & 0x80:  # start
                if self.fragment is not None:
                    return False
                self.fragment = bytearray([(payload[0] & 0xE0) | (header & 0x1F)])
            elif self.fragment is None:
                return False
            self.fragment += payload[2:]
            if header & 0x40:  # end
                self.nals.append(bytes(self.fragment))
                self.fragment = None
            return True
        return False  # STAP-B, MTAP, FU-B: not in packetization-mode 1

    def finish(self) -> _Assembled | None:
        nals, fragment = self.nals, self.fragment
        self.reset()
        if fragment is not None or not nals:
            return None
        have_sps = have_pps = False
        for nal in nals:
            kind = nal[0] & 0x1F
            if kind == 7:
                self.sps, have_sps = nal, True
            elif kind == 8:
                self.pps, have_pps = nal, True
        slices = [n for n in nals if 1 <= n[0] & 0x1F <= 5]
        if not slices:
            return b"", False, 0, 0  # parameter sets or SEI alone: kept for the next keyframe
        if len(slices[0]) < 2 or not slices[0][1] & 0x80:
            return None  # the first slice must start the picture (first_mb_in_slice = 0)
        keyframe = any(n[0] & 0x1F == 5 for n in slices)
        width = height = 0
        if keyframe:
            if self.sps is None or self.pps is None:
                keyframe = False  # cannot start a file without parameter sets
            else:
                if not have_pps:
                    nals.insert(0, self.pps)
                if not have_sps:
                    nals.insert(0, self.sps)
                width, height = parse_sps(self.sps) or (0, 0)
        return b"".join(_START_CODE + n for n in nals), keyframe, width, height

    def reset(self) -> None:
        self.nals = []
        self.fragment = None


# -- the depacketizer --------------------------------------------------------------------


class Depacketizer:
    """Reassembles one track's frames from its RTP packets; feed it in arrival order.

    Args:
        codec: `OPUS`, `VP8` or `H264`.
        payload_types: only packets with these payload types are used (all if empty).
    """

    def __init__(
        self,
        codec: str,
        *,
        payload_types: Collection[int] = (),
        reorder_packets: int = 64,
        reorder_seconds: float = 0.25,
        ssrc_switch_seconds: float = 1.0,
        max_jump_seconds: float = 10.0,
    ) -> None:
        self.codec = codec.upper()
        if self.codec not in CODECS:
            raise ValueError(f"cannot depacketize {codec!r}")
        self.clock_rate = CODECS[self.codec]
        self.video = self.codec != "OPUS"
        self._assembler: _Vp8 | _H264 | None = (
            _Vp8() if self.codec == "VP8" else _H264() if self.codec == "H264" else None
        )
        self._payload_types = frozenset(payload_types)
        self._reorder_packets = reorder_packets
        self._start_packets = min(8, reorder_packets)
        self._reorder_seconds = reorder_seconds
        self._ssrc_switch = ssrc_switch_seconds
        self._max_jump = max_jump_seconds
        # stream and reordering
        self._ssrc: int | None = None
        self._ssrc_seen = -math.inf
        self._highest: int | None = None
        self._next: int | None = None  # None until the first packets were released
        self._gap = False
        self._buffer: dict[int, tuple[RtpPacket, float]] = {}
        # the frame being assembled
        self._open = False
        self._frame_ok = False
        self._frame_ts = 0
        self._frame_arrival = 0.0
        # timeline
        self._ts_raw: int | None = None
        self._ts_ext = 0
        self._offset = 0
        self._rebase = False
        self._last_ts: int | None = None
        self._last_arrival = 0.0
        self.awaiting_keyframe = self.video
        # counters
        self.packets = 0
        self.malformed = 0
        self.ignored = 0
        self.duplicates = 0
        self.late = 0
        self.lost = 0
        self.frames = 0
        self.incomplete = 0
        self.skipped = 0  # complete frames dropped while waiting for a keyframe
        self.restarts = 0

    @property
    def codec_config(self) -> bytes:
        """H.264: the last SPS and PPS, Annex-B (the track's extradata); else empty."""
        asm = self._assembler
        if isinstance(asm, _H264) and asm.sps is not None and asm.pps is not None:
            return _START_CODE + asm.sps + _START_CODE + asm.pps
        return b""

    # -- input ----------------------------------------------------------------------------

    def push(self, packet: bytes, arrival: float) -> list[Frame]:
        """One packet; returns the frames it completed (possibly none)."""
        self.packets += 1
        pkt = parse_rtp(packet)
        if pkt is None:
            self.malformed += 1
            return []
        if self._payload_types and pkt.payload_type not in self._payload_types:
            self.ignored += 1
            return []
        out: list[Frame] = []
        if pkt.ssrc != self._ssrc:
            if self._ssrc is not None:
                if arrival - self._ssrc_seen < self._ssrc_switch:
                    self.ignored += 1
                    return []
                out += self._restart()
            self._ssrc = pkt.ssrc
        self._ssrc_seen = arrival
        ext = self._unwrap_seq(pkt.seq)
        anchor = self._next if self._next is not None else min(self._buffer, default=ext)
        if abs(ext - anchor) > _RESTART_SEQ_GAP:
            out += self._restart()
            self._highest = ext
        elif self._next is not None and ext < self._next:
            self.late += 1
            return out
        if ext in self._buffer:
            self.duplicates += 1
            return out
        self._buffer[ext] = (pkt, arrival)
        out += self._release(arrival)
        return out

    def flush(self) -> list[Frame]:
        """Everything still held back (the stream ended); an unfinished frame is dropped."""
        out = self._drain()
        self._drop_open_frame()
        return out

    # -- reordering -----------------------------------------------------------------------

    def _unwrap_seq(self, seq: int) -> int:
        if self._highest is None:
            self._highest = seq
            return seq
        delta = (seq - self._highest) & 0xFFFF
        if delta >= 0x8000:
            delta -= 0x10000
        ext = self._highest + delta
        self._highest = max(self._highest, ext)
        return ext

    def _release(self, now: float) -> list[Frame]:
        """Process packets in sequence order; give up on a hole held too long."""
        out: list[Frame] = []
        buffer = self._buffer
        if self._next is None:
            # The stream's first packets may be reordered too: hold a few before starting.
            oldest = min(arrival for _, arrival in buffer.values())
            if len(buffer) < self._start_packets and now - oldest <= self._reorder_seconds:
                return out
            self._next = min(buffer)
        while True:
            while self._next in buffer:
                pkt, arrival = buffer.pop(self._next)
                self._next += 1
                out += self._process(pkt, arrival)
            if not buffer:
                return out
            oldest = min(arrival for _, arrival in buffer.values())
            if len(buffer) <= self._reorder_packets and now - oldest <= self._reorder_seconds:
                return out
            first = min(buffer)
            self.lost += first - self._next
            self._next = first
            self._gap = True

    def _drain(self) -> list[Frame]:
        out: list[Frame] = []
        while self._buffer:
            first = min(self._buffer)
            if self._next is not None and first != self._next:
                self.lost += first - self._next
                self._gap = True
            pkt, arrival = self._buffer.pop(first)
            self._next = first + 1
            out += self._process(pkt, arrival)
        return out

    def _restart(self) -> list[Frame]:
        """The source restarted: finish the old stream; continue the timeline by arrival."""
        out = self._drain()
        self._drop_open_frame()
        self._next = self._highest = None
        self._gap = False
        self._rebase = True
        self.awaiting_keyframe = self.video
        self.restarts += 1
        return out

    # -- frames ---------------------------------------------------------------------------

    def _drop_open_frame(self) -> None:
        if self._open:
            self._open = False
            self.incomplete += 1
            if self._assembler is not None:
                self._assembler.reset()
            self.awaiting_keyframe = self.video

    def _process(self, pkt: RtpPacket, arrival: float) -> list[Frame]:
        if self._gap:
            self._gap = False
            self._drop_open_frame()
            # Whatever was lost (part of a frame or whole ones), later frames may refer to it.
            self.awaiting_keyframe = self.video
        if not pkt.payload:
            return []  # padding only (bandwidth probing)
        asm = self._assembler
        if asm is None:  # Opus: every packet is a frame
            return self._emit(pkt.payload, pkt.timestamp, True, arrival, 0, 0)
        out: list[Frame] = []
        if self._open and pkt.timestamp != self._frame_ts:
            # The previous frame ended without a marker, and nothing was lost since.
            out += self._finish_frame()
        if not self._open:
            self._open = True
            self._frame_ts = pkt.timestamp
            self._frame_arrival = arrival
            asm.reset()
            self._frame_ok = asm.starts_frame(pkt.payload)
        if self._frame_ok:
            self._frame_ok = asm.add(pkt.payload)
        if pkt.marker:
            out += self._finish_frame()
        return out

    def _finish_frame(self) -> list[Frame]:
        asm = self._assembler
        assert asm is not None
        self._open = False
        assembled = asm.finish() if self._frame_ok else None
        asm.reset()
        if assembled is None:
            self.incomplete += 1
            self.awaiting_keyframe = True
            return []
        data, keyframe, width, height = assembled
        if not data:
            return []
        if self.awaiting_keyframe and not keyframe:
            self.skipped += 1
            return []
        return self._emit(data, self._frame_ts, keyframe, self._frame_arrival, width, height)

    def _unwrap_ts(self, ts: int) -> int:
        if self._ts_raw is None:
            self._ts_ext = ts
        else:
            delta = (ts - self._ts_raw) & 0xFFFFFFFF
            if delta >= 0x80000000:
                delta -= 1 << 32
            self._ts_ext += delta
        self._ts_raw = ts
        return self._ts_ext

    def _emit(
        self, data: bytes, ts: int, keyframe: bool, arrival: float, width: int, height: int
    ) -> list[Frame]:
        timestamp = self._unwrap_ts(ts) + self._offset
        last = self._last_ts
        if last is not None:
            elapsed = arrival - self._last_arrival
            if not self._rebase:
                delta = timestamp - last
                if delta <= 0 and -delta < self._max_jump * self.clock_rate:
                    self.late += 1  # a stale or repeated frame: keep the timeline increasing
                    self.awaiting_keyframe = self.video
                    return []
                if abs(delta / self.clock_rate - elapsed) > self._max_jump:
                    self._rebase = True
            if self._rebase:
                target = last + max(1, round(max(0.0, elapsed) * self.clock_rate))
                self._offset += target - timestamp
                timestamp = target
        self._rebase = False
        self._last_ts = timestamp
        self._last_arrival = arrival
        self.awaiting_keyframe = False
        self.frames += 1
        return [Frame(data, timestamp, keyframe, arrival, width, height)]
