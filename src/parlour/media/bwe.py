"""Send-side bandwidth estimation for one subscriber's downlink (GCC), pure.

The SFU stamps every packet it sends a subscriber with a transport-wide sequence number
(`SendHistory` keeps when each left and its size); the subscriber's browser reports when
each arrived (RTCP transport feedback, `rtcp.TransportFeedback`). `BandwidthEstimator`
turns that into an estimate of the bitrate the path carries, as Google Congestion Control
does (draft-ietf-rmcat-gcc-02, libwebrtc's ``goog_cc``):

* **Delay-based** (`TrendlineEstimator` + `AimdRateControl`): packets sent within 5 ms form a
  group; the change of one-way delay between groups is accumulated and smoothed, and the
  slope of a least-squares line through the last 20 values (the delay *trend*) is compared
  with an adaptive threshold: above it for more than 10 ms is *overuse* (queues grow), below
  its negative *underuse*. Overuse cuts the rate to 85 % of what was acknowledged; normal
  use grows it by 8 % a second, never beyond 1.5 × the acknowledged bitrate plus 10 kbps
  (what the path has not shown it carries must be probed first).
* **Loss-based** (`LossBasedControl`): over at least `LOSS_PACKETS` packets or `LOSS_WINDOW`,
  more than 10 % lost cuts the rate by half the loss; under 2 % lets it grow by 8 % a second.
* **Probes** (`ProbeCluster`): a burst sent on purpose above the estimate (padding made of
  retransmissions) is measured at the receiver; if it got through at a rate, the estimate
  may jump to it. The owner decides when to probe (before switching a layer up).

The estimate is the smaller of the two controllers. Everything takes the time as an
argument (seconds, any monotonic origin; arrival times are on the receiver's clock and only
their differences are used), so tests drive it with synthetic feedback.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import Enum
from typing import Final

from parlour.media.rtcp import TransportFeedback

__all__ = [
    "AimdRateControl",
    "BandwidthEstimator",
    "BandwidthUsage",
    "LossBasedControl",
    "ProbeCluster",
    "SendHistory",
    "TrendlineEstimator",
    "UplinkEstimator",
]

BURST: Final = 0.005  # packets sent this close together form one group (s)
WINDOW: Final = 20  # trendline regression window (groups)
SMOOTHING: Final = 0.9
THRESHOLD_GAIN: Final = 4.0
OVERUSE_TIME: Final = 0.010  # s above the threshold before it counts
K_UP: Final = 0.0087
K_DOWN: Final = 0.039
BETA: Final = 0.85  # multiplicative decrease on overuse
ACKED_WINDOW: Final = 0.5  # s of acknowledged traffic for the acked bitrate
LOSS_PACKETS: Final = 50  # the loss fraction is measured over at least this many packets…
LOSS_WINDOW: Final = 1.0  # … or this long (s)
MIN_BITRATE: Final = 30_000
MAX_BITRATE: Final = 20_000_000


class BandwidthUsage(Enum):
    NORMAL = "normal"
    OVERUSING = "overusing"
    UNDERUSING = "underusing"


class SendHistory:
    """What was sent, by transport-wide sequence number: send time (s), size, probe cluster.

    A ring of the last ``size`` numbers (a power of two); older ones are forgotten.
    """

    __slots__ = ("_cluster", "_mask", "_seq", "_size", "_time")

    def __init__(self, size: int = 8192) -> None:
        if size & (size - 1):
            raise ValueError("size must be a power of two")
        self._mask = size - 1
        self._time = [0.0] * size
        self._size = [0] * size
        self._seq = [-1] * size
        self._cluster = [0] * size

    def sent(self, seq: int, now: float, size: int, cluster: int = 0) -> None:
        i = seq & self._mask
        self._seq[i] = seq
        self._time[i] = now
        self._size[i] = size
        self._cluster[i] = cluster

    def get(self, seq: int) -> tuple[float, int, int] | None:
        """(send time, size, probe cluster id or 0) of ``seq``, or None if not kept."""
        i = seq & self._mask
        if self._seq[i] != seq:
            return None
        return self._time[i], self._size[i], self._cluster[i]


class TrendlineEstimator:
    """The delay-based overuse detector (trendline filter + adaptive threshold)."""

    def __init__(self) -> None:
        self.threshold = 12.5
        self.usage = BandwidthUsage.NORMAL
        self.trend = 0.0  # the last modified trend (ms)
        self._accumulated = 0.0
        self._smoothed = 0.0
        self._first_arrival: float | None = None
        self._points: deque[tuple[float, float]] = deque(maxlen=WINDOW)
        self._deltas = 0
        self._time_over = -1.0
        self._overuse_count = 0
        self._prev_trend = 0.0
        self._last_update: float | None = None

    def update(self, recv_delta: float, send_delta: float, arrival: float) -> BandwidthUsage:
        """One group: arrival and send time differences from the previous group (s), and its
        arrival time (s, receiver clock)."""
        delta_ms = (recv_delta - send_delta) * 1000
        self._deltas += 1
        self._accumulated += delta_ms
        self._smoothed = SMOOTHING * self._smoothed + (1 - SMOOTHING) * self._accumulated
        if self._first_arrival is None:
            self._first_arrival = arrival
        self._points.append(((arrival - self._first_arrival) * 1000, self._smoothed))
        trend = self._prev_trend
        if len(self._points) == WINDOW:
            trend = _slope(self._points)
        self._detect(trend, send_delta, arrival)
        return self.usage

    def _detect(self, trend: float, send_delta: float, now: float) -> None:
        modified = min(self._deltas, 60) * trend * THRESHOLD_GAIN
        self.trend = modified
        if modified > self.threshold:
            if self._time_over < 0:
                self._time_over = send_delta / 2
            else:
                self._time_over += send_delta
            self._overuse_count += 1
            if (
                self._time_over > OVERUSE_TIME
                and self._overuse_count > 1
                and trend >= self._prev_trend
            ):
                self._time_over = 0.0
                self._overuse_count = 0
                self.usage = BandwidthUsage.OVERUSING
        elif modified < -self.threshold:
            self._time_over = -1.0
            self._overuse_count = 0
            self.usage = BandwidthUsage.UNDERUSING
        else:
            self._time_over = -1.0
            self._overuse_count = 0
            self.usage = BandwidthUsage.NORMAL
        self._prev_trend = trend
        self._adapt_threshold(modified, now)

    def _adapt_threshold(self, modified: float, now: float) -> None:
        last = self._last_update
        self._last_update = now
        if last is None or abs(modified) > self.threshold + 15:
            return  # a spike (e.g. a route change) must not drag the threshold
        k = K_DOWN if abs(modified) < self.threshold else K_UP
        dt_ms = min((now - last) * 1000, 100.0)
        self.threshold += k * (abs(modified) - self.threshold) * dt_ms
        self.threshold = min(max(self.threshold, 6.0), 600.0)


def _slope(points: deque[tuple[float, float]]) -> float:
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    num = sum((x - mean_x) * (y - mean_y) for x, y in points)
    den = sum((x - mean_x) ** 2 for x, _ in points)
    return num / den if den else 0.0


class AimdRateControl:
    """Additive-increase/multiplicative-decrease on the delay signal (GCC §5.5)."""

    def __init__(self, initial: int) -> None:
        self.estimate = float(initial)
        self._state = "increase"
        self._last: float | None = None

    def update(self, usage: BandwidthUsage, acked: float | None, now: float) -> int:
        dt = 0.0 if self._last is None else min(now - self._last, 1.0)
        self._last = now
        if usage is BandwidthUsage.OVERUSING:
            base = acked if acked else self.estimate
            self.estimate = min(self.estimate, BETA * base)
            self._state = "hold"
        elif usage is BandwidthUsage.UNDERUSING:
            self._state = "hold"
        elif self._state == "hold":
            self._state = "increase"
        elif dt > 0:
            grown = self.estimate * (1.08**dt)
            if acked is not None:
                grown = min(grown, max(self.estimate, 1.5 * acked + 10_000))
            self.estimate = grown
        self.estimate = min(max(self.estimate, MIN_BITRATE), MAX_BITRATE)
        return int(self.estimate)

    def raise_to(self, bitrate: float) -> None:
        """A probe showed the path carries ``bitrate``."""
        self.estimate = min(max(self.estimate, bitrate), MAX_BITRATE)


class LossBasedControl:
    """The loss-based controller (GCC §6)."""

    def __init__(self, initial: int) -> None:
        self.estimate = float(initial)
        self._last: float | None = None

    def update(self, lost: int, total: int, now: float) -> int:
        dt = 0.0 if self._last is None else min(now - self._last, 1.0)
        self._last = now
        if total:
            loss = lost / total
            if loss > 0.10:
                self.estimate *= 1 - 0.5 * loss
            elif loss < 0.02 and dt > 0:
                self.estimate *= 1.08**dt
        self.estimate = min(max(self.estimate, MIN_BITRATE), MAX_BITRATE)
        return int(self.estimate)

    def raise_to(self, bitrate: float) -> None:
        self.estimate = min(max(self.estimate, bitrate), MAX_BITRATE)


@dataclass(slots=True)
class ProbeCluster:
    """What the receiver reported of one probe burst."""

    id: int
    bytes: int = 0
    packets: int = 0
    first_send: float = 0.0
    last_send: float = 0.0
    first_arrival: float = 0.0
    last_arrival: float = 0.0

    def add(self, send: float, arrival: float, size: int) -> None:
        if not self.packets:
            self.first_send = self.last_send = send
            self.first_arrival = self.last_arrival = arrival
        self.first_send = min(self.first_send, send)
        self.last_send = max(self.last_send, send)
        self.first_arrival = min(self.first_arrival, arrival)
        self.last_arrival = max(self.last_arrival, arrival)
        self.bytes += size
        self.packets += 1

    def bitrate(self) -> float | None:
        """The rate the burst got through at: the lower of its send and receive rates."""
        if self.packets < 5:
            return None
        send = self.last_send - self.first_send
        recv = self.last_arrival - self.first_arrival
        if send <= 0 or recv <= 0:
            return None
        return min(self.bytes * 8 / send, self.bytes * 8 / recv)


class BandwidthEstimator:
    """One subscriber's downlink estimate from its transport feedback.

    Attributes:
        estimate: bps, the smaller of the delay- and loss-based controllers.
        usage: the last delay signal.
        congested_at: when overuse or heavy loss was last seen (None: never).
        acked_bitrate: bps acknowledged over the last `ACKED_WINDOW` (None: too little yet).
        loss: the fraction lost over the last loss measurement (`LOSS_PACKETS`).
    """

    def __init__(self, initial: int = 1_000_000) -> None:
        self.trendline = TrendlineEstimator()
        self.delay = AimdRateControl(initial)
        self.loss_control = LossBasedControl(initial)
        self.estimate = initial
        self.usage = BandwidthUsage.NORMAL
        self.congested_at: float | None = None
        self.acked_bitrate: float | None = None
        self.loss = 0.0
        self.feedbacks = 0
        self._lost = 0
        self._total = 0
        self._loss_since: float | None = None
        self._acked: deque[tuple[float, int]] = deque()
        self._acked_bytes = 0
        self._highest: int | None = None  # unwrapped highest seq processed
        self._group: tuple[float, float, float] | None = None  # first send, last send, last arrival
        self._prev_group: tuple[float, float] | None = None  # its last send, last arrival
        self._probes: dict[int, ProbeCluster] = {}

    def congested(self, now: float, within: float = 2.0) -> bool:
        """Overuse or heavy loss within the last ``within`` seconds."""
        return self.congested_at is not None and now - self.congested_at < within

    def on_feedback(self, feedback: TransportFeedback, history: SendHistory, now: float) -> int:
        """Take one transport feedback; returns the new estimate (bps)."""
        self.feedbacks += 1
        lost = 0
        total = 0
        base = feedback.base_seq
        for i, arrival_us in enumerate(feedback.arrivals):
            seq = (base + i) & 0xFFFF
            unwrapped = self._unwrap(seq)
            if self._highest is not None and unwrapped <= self._highest:
                continue  # reported before
            self._highest = unwrapped
            sent = history.get(seq)
            if sent is None:
                continue
            total += 1
            if arrival_us is None:
                lost += 1
                continue
            send, size, cluster = sent
            arrival = arrival_us / 1e6
            self._ack(arrival, size)
            if cluster:
                probe = self._probes.setdefault(cluster, ProbeCluster(cluster))
                probe.add(send, arrival, size)
            self._packet(send, arrival)
        delay_based = self.delay.update(self.usage, self.acked_bitrate, now)
        self._lost += lost
        self._total += total
        if self._loss_since is None:
            self._loss_since = now
        loss_based = int(self.loss_control.estimate)
        if self._total >= LOSS_PACKETS or (self._total and now - self._loss_since >= LOSS_WINDOW):
            self.loss = self._lost / self._total
            loss_based = self.loss_control.update(self._lost, self._total, now)
            self._lost = self._total = 0
            self._loss_since = now
            if self.loss > 0.10:
                self.congested_at = now
        if self.usage is BandwidthUsage.OVERUSING:
            self.congested_at = now
        self.estimate = min(delay_based, loss_based)
        return self.estimate

    def probe_result(self, cluster: int, target: float | None = None) -> float | None:
        """The rate a finished probe burst got through at (None: not enough reported); the
        estimate rises to it (at most to ``target``, the rate probed for) when nothing
        congested meanwhile."""
        probe = self._probes.pop(cluster, None)
        rate = probe.bitrate() if probe is not None else None
        if rate is not None and self.usage is not BandwidthUsage.OVERUSING and self.loss < 0.1:
            got = min(rate, target) if target is not None else rate
            self.delay.raise_to(got * 0.95)
            self.loss_control.raise_to(got * 0.95)
            self.estimate = int(min(self.delay.estimate, self.loss_control.estimate))
        return rate

    def _unwrap(self, seq: int) -> int:
        if self._highest is None:
            return seq
        diff = (seq - self._highest) & 0xFFFF
        if diff >= 0x8000:
            diff -= 0x10000
        return self._highest + diff

    def _ack(self, arrival: float, size: int) -> None:
        acked = self._acked
        acked.append((arrival, size))
        self._acked_bytes += size
        while acked and arrival - acked[0][0] > ACKED_WINDOW:
            self._acked_bytes -= acked.popleft()[1]
        span = arrival - acked[0][0]
        if span >= ACKED_WINDOW / 2:
            self.acked_bitrate = self._acked_bytes * 8 / max(span, 1e-3)

    def _packet(self, send: float, arrival: float) -> None:
        group = self._group
        if group is None:
            self._group = (send, send, arrival)
            return
        first_send, last_send, last_arrival = group
        if send - first_send <= BURST and send >= first_send:
            self._group = (first_send, max(last_send, send), max(last_arrival, arrival))
            return
        if send < first_send:
            return  # reordered across groups: ignored, as libwebrtc does
        prev = self._prev_group
        if prev is not None:
            send_delta = last_send - prev[0]
            recv_delta = last_arrival - prev[1]
            if send_delta > 0:
                self.usage = self.trendline.update(recv_delta, send_delta, last_arrival)
        self._prev_group = (last_send, last_arrival)
        self._group = (send, send, arrival)


class UplinkEstimator:
    """What a publisher's uplink carries, for the REMB the SFU sends it (receive side).

    Loss-based, from the receiver reports the SFU makes anyway: more than 10 % lost in a
    report interval lowers the estimate to what arrived, less half the loss; under 2 % lets
    it grow by 8 % a second up to ``maximum``. Chrome caps its send-side estimate at the
    REMB, so its encoder (and which simulcast layers it can afford) follows.
    """

    def __init__(
        self, initial: int = 2_500_000, *, minimum: int = 150_000, maximum: int = 2_500_000
    ) -> None:
        self.minimum = minimum
        self.maximum = maximum
        self.estimate = float(initial)
        self._last: float | None = None

    def update(self, fraction_lost: float, received: int, now: float) -> int:
        """One report interval: the worst loss fraction of the publisher's video streams
        and the bitrate received from it (bps)."""
        dt = 0.0 if self._last is None else min(now - self._last, 2.0)
        self._last = now
        if fraction_lost > 0.10:
            reduced = received * (1 - 0.5 * fraction_lost) if received else self.estimate * 0.8
            self.estimate = min(self.estimate, reduced)
        elif fraction_lost < 0.02:
            self.estimate *= 1.08**dt
        self.estimate = min(max(self.estimate, self.minimum), self.maximum)
        return int(self.estimate)
