"""One subscriber's downlink: transport-wide sequence numbers out, feedback in, the
estimate and its probes (the SFU side of send-side bandwidth estimation).

When the subscriber negotiated transport-wide CC (the SFU offers it on the sections it
sends, `codecs.URI_TRANSPORT_CC`), the rewriter of every consumer of it shares one
`rewrite.TransportCc`: each packet gets the next transport-wide sequence number while it is
rewritten, and its send time and size go to a `bwe.SendHistory`. The browser reports
arrivals in RTCP transport feedback (`Downlink.on_feedback`), which the pure
`bwe.BandwidthEstimator` turns into an estimate.

The estimate of a path that was never filled is only a lower bound (GCC never grows past
1.5 × what was acknowledged), so `Downlink.limit` hands it to the allocation only after
congestion was seen within `CONGESTION_MEMORY` seconds: then it is a measurement. While it
limits the subscriber below what it would otherwise get, `Downlink.tick` probes: trains of
retransmissions of recently sent packets (the receiver discards them as duplicates) at the
rate wanted, paced over `PROBE_DURATION`; if they get through, the estimate rises to it and
the allocation switches up.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Protocol

from parlour.media import fastpath
from parlour.media.bwe import BandwidthEstimator, SendHistory
from parlour.media.rewrite import TransportCc
from parlour.media.rtcp import TransportFeedback

__all__ = ["CONGESTION_MEMORY", "Downlink", "Prober"]

CONGESTION_MEMORY = 10.0  # s after congestion during which the estimate limits the allocation
PROBE_INTERVAL = 3.0  # s between probes
PROBE_DURATION = 0.1  # s of traffic at the probed rate
PROBE_RESULT_AFTER = 1.0  # s after the probe before its feedback is read
PROBE_PACKET = 1100  # bytes, a typical video packet
PROBE_SLICES = 5  # the probe is paced: this many trains over PROBE_DURATION


class Sink(Protocol):
    def send_rtp(self, packet: bytes) -> None: ...


class Prober(Protocol):
    """What a probe is made of: a consumer's recent packets, retransmitted (RTX)."""

    def probe_packets(self, count: int) -> list[bytes]: ...


class Downlink:
    """The estimate of one subscriber's downlink and the probing that raises it."""

    def __init__(
        self,
        schedule: Callable[[float, Callable[[], None]], object],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._schedule = schedule  # (delay, callback): the event loop's call_later
        self._clock = clock
        self.estimator = BandwidthEstimator()
        self.history = SendHistory()
        self.transport_cc: TransportCc | None = None
        self.probes = 0
        self._next_cluster = 1
        self._last_probe = -1e9
        self._pending: tuple[int, float, float] | None = None  # cluster, rate, when to read

    def configure(self, ext_id: int | None) -> TransportCc | None:
        """The transport-wide CC state for a negotiated extension id (None: not negotiated;
        ids over 14 are not used: the one-byte form is stamped)."""
        if ext_id is None or not 0 < ext_id < 15:
            self.transport_cc = None
        elif self.transport_cc is None or self.transport_cc.ext_id != ext_id:
            # Numbered in C too (for consumers forwarded by the fast path) when the clock is
            # the monotonic clock the C code reads.
            native = fastpath.native
            state = (
                native.Tcc(ext_id) if native is not None and self._clock is time.monotonic else None
            )
            self.transport_cc = TransportCc(ext_id, self.history.sent, self._clock, state)
        return self.transport_cc

    def on_feedback(self, feedback: TransportFeedback) -> None:
        if self.transport_cc is not None:
            self.transport_cc.drain()  # what the C fast path sent, into `history`
            self.estimator.on_feedback(feedback, self.history, self._clock())

    def limit(self, now: float) -> tuple[int | None, bool]:
        """``(available bitrate or None, congested now)`` for the allocation."""
        est = self.estimator
        if self.transport_cc is None or not est.congested(now, CONGESTION_MEMORY):
            return None, False
        return est.estimate, est.congested(now)

    def tick(self, wanted: int, probers: Sequence[Prober], sink: Sink, now: float) -> None:
        """About once a second: read a finished probe; probe again (sending through
        ``sink``) if the estimate limits the subscriber below ``wanted`` bps and the path
        is calm."""
        pending = self._pending
        if pending is not None and now >= pending[2]:
            self._pending = None
            self.estimator.probe_result(pending[0], pending[1])
            pending = None
        limit, _ = self.limit(now)
        if (
            self.transport_cc is None
            or limit is None
            or pending is not None
            or wanted <= limit
            or not probers
            or self.estimator.congested(now, PROBE_INTERVAL)
            or now - self._last_probe < PROBE_INTERVAL
        ):
            return
        rate = min(wanted * 1.1, max(limit * 2, limit + 300_000))
        count = max(PROBE_SLICES, int(rate * PROBE_DURATION / (8 * PROBE_PACKET)))
        cluster = self._next_cluster
        self._next_cluster = cluster % 0xFFFF + 1
        per_slice = -(-count // PROBE_SLICES)
        for i in range(PROBE_SLICES):
            send = self._probe_slice(cluster, probers, per_slice, sink)
            self._schedule(i * PROBE_DURATION / PROBE_SLICES, send)
        self.probes += 1
        self._last_probe = now
        self._pending = (cluster, rate, now + PROBE_DURATION + PROBE_RESULT_AFTER)

    def _probe_slice(
        self, cluster: int, probers: Sequence[Prober], count: int, sink: Sink
    ) -> Callable[[], None]:
        def send() -> None:
            tcc = self.transport_cc
            if tcc is None:
                return
            tcc.cluster = cluster  # packets are stamped (and timed) as they are made here
            try:
                left = count
                for prober in probers:
                    packets = prober.probe_packets(left)
                    for packet in packets:
                        sink.send_rtp(packet)
                    left -= len(packets)
                    if left <= 0:
                        break
            finally:
                tcc.cluster = 0

        return send
