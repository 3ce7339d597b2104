"""One subscriber's downlink: transport-wide sequence numbers out, feedback in, the
estimate and its probes (the SFU side of send-side bandwidth estimation).

When the subscriber negotiated transport-wide CC (the SFU offers it on the sections it
sends, `codecs.URI_TRANSPORT_CC`), every RTP packet to it goes through `TransportCcSender`,
which appends a one-byte header-extension element with the next transport-wide sequence
number (one 32-bit word: id/length, two bytes of number, one of padding; RFC 8285 allows
padding between elements) and notes when it left and how large it was (`bwe.SendHistory`).
The browser reports arrivals in RTCP transport feedback (`Downlink.on_feedback`), which the
pure `bwe.BandwidthEstimator` turns into an estimate.

The estimate of a path that was never filled is only a lower bound (GCC never grows past
1.5 × what was acknowledged), so `Downlink.limit` hands it to the allocation only after
congestion was seen within `CONGESTION_MEMORY` seconds: then it is a measurement. While it
limits the subscriber below what it would otherwise get, `Downlink.tick` probes: a train of
retransmissions of recently sent packets (the receiver discards them as duplicates) at the
rate wanted; if it gets through, the estimate rises to it and the allocation switches up.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from parlour.media.bwe import BandwidthEstimator, SendHistory
from parlour.media.rtcp import TransportFeedback

__all__ = ["CONGESTION_MEMORY", "Downlink", "Prober", "TransportCcSender", "stamp"]

_U16 = struct.Struct("!H")

CONGESTION_MEMORY = 10.0  # s after congestion during which the estimate limits the allocation
PROBE_INTERVAL = 3.0  # s between probes
PROBE_DURATION = 0.1  # s of traffic at the probed rate, sent as one train
PROBE_RESULT_AFTER = 1.0  # s before a probe's feedback is read
PROBE_PACKET = 1100  # bytes, a typical video packet
PROBE_SLICES = 5  # the train is paced: this many bursts over PROBE_DURATION


class Sink(Protocol):
    def send_rtp(self, packet: bytes) -> None: ...
    def send_rtcp(self, packet: bytes) -> None: ...


class Prober(Protocol):
    """What a probe is made of: a consumer's recent packets, retransmitted (RTX)."""

    def probe_packets(self, count: int) -> list[bytes]: ...


def stamp(packet: bytes, ext_id: int, seq: int) -> bytes:
    """``packet`` with a one-byte transport-wide-cc element (``ext_id``, 1–14) appended to
    its extension block (one made if it has none). A packet with a two-byte block is
    returned as it is. One copy of the packet (``join`` over memoryviews)."""
    element = bytes(((ext_id << 4) | 1, seq >> 8, seq & 0xFF, 0))
    b0 = packet[0]
    pos = 12 + ((b0 & 0x0F) << 2)
    view = memoryview(packet)
    if not b0 & 0x10:
        return b"".join(
            (bytes((b0 | 0x10,)), view[1:pos], b"\xbe\xde\x00\x01", element, view[pos:])
        )
    if packet[pos] != 0xBE or packet[pos + 1] != 0xDE:
        return packet
    words = (packet[pos + 2] << 8) | packet[pos + 3]
    end = pos + 4 + (words << 2)
    return b"".join(
        (view[: pos + 2], _U16.pack(words + 1), view[pos + 4 : end], element, view[end:])
    )


class TransportCcSender:
    """An `RtpSink` that stamps transport-wide sequence numbers and remembers the sends."""

    __slots__ = ("_clock", "_id", "_sink", "cluster", "history", "seq")

    def __init__(
        self, sink: Sink, ext_id: int, history: SendHistory, clock: Callable[[], float]
    ) -> None:
        self._sink = sink
        self._id = ext_id
        self._clock = clock
        self.history = history
        self.seq = 0
        self.cluster = 0  # the probe cluster the packets sent now belong to (0: none)

    def send_rtp(self, packet: bytes) -> None:
        seq = self.seq
        self.seq = (seq + 1) & 0xFFFF
        out = stamp(packet, self._id, seq)
        self.history.sent(seq, self._clock(), len(out), self.cluster)
        self._sink.send_rtp(out)

    def send_rtcp(self, packet: bytes) -> None:
        self._sink.send_rtcp(packet)


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
        self.sender: TransportCcSender | None = None
        self.probes = 0
        self._ext_id = 0
        self._next_cluster = 1
        self._last_probe = -1e9
        self._pending: tuple[int, float, float] | None = None  # cluster, rate, when to read

    def sink(self, transport: Sink, ext_id: int | None) -> Sink:
        """The sink consumers send through: ``transport``, stamped when ``ext_id`` is set."""
        if ext_id is None or not 0 < ext_id < 15:
            self.sender = None
            self._ext_id = 0
            return transport
        if self.sender is None or self._ext_id != ext_id:
            self.sender = TransportCcSender(transport, ext_id, self.history, self._clock)
            self._ext_id = ext_id
        return self.sender

    def on_feedback(self, feedback: TransportFeedback) -> None:
        if self.sender is not None:
            self.estimator.on_feedback(feedback, self.history, self._clock())

    def limit(self, now: float) -> tuple[int | None, bool]:
        """``(available bitrate or None, congested now)`` for the allocation."""
        est = self.estimator
        if self.sender is None or not est.congested(now, CONGESTION_MEMORY):
            return None, False
        return est.estimate, est.congested(now)

    def tick(self, wanted: int, probers: Iterable[Prober], now: float) -> None:
        """About once a second: read a finished probe; probe again if the estimate limits
        the subscriber below ``wanted`` bps and the path is calm."""
        pending = self._pending
        if pending is not None and now >= pending[2]:
            self._pending = None
            self.estimator.probe_result(pending[0], pending[1])
            pending = None
        sender = self.sender
        limit, _ = self.limit(now)
        if (
            sender is None
            or limit is None
            or pending is not None
            or wanted <= limit
            or self.estimator.congested(now, PROBE_INTERVAL)
            or now - self._last_probe < PROBE_INTERVAL
        ):
            return
        rate = min(wanted * 1.1, max(limit * 2, limit + 300_000))
        count = max(PROBE_SLICES, int(rate * PROBE_DURATION / (8 * PROBE_PACKET)))
        packets: list[bytes] = []
        for prober in probers:
            packets += prober.probe_packets(count - len(packets))
            if len(packets) >= count:
                break
        if len(packets) < PROBE_SLICES:
            return
        cluster = self._next_cluster
        self._next_cluster = cluster % 0xFFFF + 1
        n = len(packets)
        for i in range(PROBE_SLICES):
            part = packets[i * n // PROBE_SLICES : (i + 1) * n // PROBE_SLICES]
            self._schedule(i * PROBE_DURATION / PROBE_SLICES, self._send_probe(cluster, part))
        self.probes += 1
        self._last_probe = now
        self._pending = (cluster, rate, now + PROBE_DURATION + PROBE_RESULT_AFTER)

    def _send_probe(self, cluster: int, packets: Sequence[bytes]) -> Callable[[], None]:
        def send() -> None:
            sender = self.sender
            if sender is None:
                return
            sender.cluster = cluster
            try:
                for packet in packets:
                    sender.send_rtp(packet)
            finally:
                sender.cluster = 0

        return send
