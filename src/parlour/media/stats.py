"""Receive statistics of one incoming RTP stream, pure: `SeqUnwrapper`, and `LossTracker`
(RFC 3550 §6.4.1 and A.3 loss, A.8 jitter, LSR/DLSR, the report block of a Receiver Report,
and the list of missing sequence numbers to NACK).
"""

from __future__ import annotations

from typing import Final

from parlour.media.rtcp import ReportBlock, _clamp_lost

__all__ = [
    "LossTracker",
    "SeqUnwrapper",
]

_MASK16: Final = 0xFFFF
_MASK32: Final = 0xFFFFFFFF


# ---------------------------------------------------------------------------------------------
# Sequence numbers


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


# ---------------------------------------------------------------------------------------------
# Loss


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
