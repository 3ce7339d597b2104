"""Network Quality Levels (0–5) of one participant, from what the SFU measures. Pure.

Twilio's scale (docs/media-signaling.md, "network_quality"): 5 excellent, 4 good, 3 average,
2 below average, 1 bad, 0 network broken (reconnecting); unknown is None (the SDK's null).
The level is relative to the demand: a participant that sends and receives nothing is at 5.

For each kind of media (audio, video) and direction (send: what the participant publishes;
recv: what it subscribes to) the caller feeds `LinkSample`s, partial or whole, from any
source: the SFU's receive statistics and RTCP receiver reports, and the client's own
``network_quality`` reports. Each metric gets a level of its own (`loss_level`,
`rtt_level`, `jitter_level`, `bandwidth_level`), smoothed with hysteresis (`Smoothing`):
a level drops only when the worse value has held for ``degrade_after`` seconds and rises only
when the better one has held for ``recover_after``. Then, as in the SDK's sub-levels:

- latency = min(rtt, jitter); a direction's level = min(bandwidth, fractionLost, latency);
- the participant's level = min over audio/video × send/recv.

A direction with no sample for ``stale_after`` seconds is forgotten and counts as 5 (no
demand); with every direction forgotten the level is unknown (None). Time is passed in
(seconds on a monotonic clock), so the result depends only on the inputs.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

__all__ = [
    "BROKEN",
    "DEFAULT_SMOOTHING",
    "DEFAULT_THRESHOLDS",
    "MAX_LEVEL",
    "Direction",
    "DirectionQuality",
    "LinkSample",
    "MediaKind",
    "MediaQuality",
    "NetworkQualityEstimator",
    "ParticipantQuality",
    "Smoothing",
    "Thresholds",
    "bandwidth_level",
    "jitter_level",
    "loss_level",
    "rtt_level",
]

MAX_LEVEL: Final = 5
BROKEN: Final = 0
"""The level of a participant whose connection is lost (Twilio: "network broken")."""


class MediaKind(StrEnum):
    AUDIO = "audio"
    VIDEO = "video"


class Direction(StrEnum):
    """``send``: media the participant publishes (client → SFU); ``recv``: media it
    subscribes to (SFU → client)."""

    SEND = "send"
    RECV = "recv"


# --------------------------------------------------------------------------------------------
# Per-metric levels


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Bounds of levels 5, 4, 3, 2 for each metric; a value beyond the last one is level 1.

    Loss, RTT and jitter are upper bounds (a value at most the bound gets that level);
    the bandwidth ratio (achieved / expected bitrate) is a lower bound.
    """

    fraction_lost: tuple[float, float, float, float] = (0.01, 0.03, 0.06, 0.10)
    rtt: tuple[float, float, float, float] = (0.150, 0.300, 0.500, 0.800)
    jitter: tuple[float, float, float, float] = (0.020, 0.030, 0.050, 0.100)
    bandwidth_ratio: tuple[float, float, float, float] = (0.90, 0.75, 0.50, 0.30)


DEFAULT_THRESHOLDS: Final = Thresholds()


def _finite(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return value


def _level_at_most(value: float | None, bounds: tuple[float, ...]) -> int | None:
    value = _finite(value)
    if value is None:
        return None
    for level, bound in zip(range(MAX_LEVEL, 1, -1), bounds, strict=True):
        if value <= bound:
            return level
    return 1


def loss_level(fraction_lost: float | None, t: Thresholds = DEFAULT_THRESHOLDS) -> int | None:
    """Level of a packet-loss fraction (0–1); None if unknown."""
    return _level_at_most(fraction_lost, t.fraction_lost)


def rtt_level(rtt: float | None, t: Thresholds = DEFAULT_THRESHOLDS) -> int | None:
    """Level of a round-trip time in seconds; None if unknown."""
    return _level_at_most(rtt, t.rtt)


def jitter_level(jitter: float | None, t: Thresholds = DEFAULT_THRESHOLDS) -> int | None:
    """Level of an interarrival jitter in seconds; None if unknown."""
    return _level_at_most(jitter, t.jitter)


def bandwidth_level(
    bitrate: float | None, expected: float | None, t: Thresholds = DEFAULT_THRESHOLDS
) -> int | None:
    """Level of the achieved bitrate against the expected one (bit/s).

    No demand (``expected`` ≤ 0) is 5; unknown (either None) is None.
    """
    bitrate, expected = _finite(bitrate), _finite(expected)
    if expected is None:
        return None
    if expected <= 0:
        return MAX_LEVEL
    if bitrate is None:
        return None
    ratio = max(bitrate, 0.0) / expected
    for level, bound in zip(range(MAX_LEVEL, 1, -1), t.bandwidth_ratio, strict=True):
        if ratio >= bound:
            return level
    return 1


# --------------------------------------------------------------------------------------------
# Inputs and outputs


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkSample:
    """What is known now about one kind of media in one direction; None is unknown.

    Args:
        fraction_lost: Packets lost / expected since the previous report, 0–1 (an RTCP
            report block's ``fraction_lost / 256``, or the client's ``fractionLost``).
        jitter: Interarrival jitter in seconds (RTCP jitter / clock rate, or the client's).
        rtt: Round-trip time in seconds (RTCP LSR/DLSR, or the client's ``ice.rtt``).
        bitrate: Achieved bitrate, bit/s.
        expected_bitrate: The bitrate the media should have, bit/s (what the SFU forwards
            for recv, what the publisher's encoder aims at for send); 0 means no demand.
        available_bitrate: Estimated available bitrate, bit/s (REMB, the client's
            ``availableSend``); only reported, not scored.
    """

    fraction_lost: float | None = None
    jitter: float | None = None
    rtt: float | None = None
    bitrate: float | None = None
    expected_bitrate: float | None = None
    available_bitrate: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DirectionQuality:
    """One direction of one kind of media: its level, the sub-levels it is the minimum of,
    and the (recent average) values they come from. A None sub-level is unknown."""

    level: int
    bandwidth_level: int | None = None
    fraction_lost_level: int | None = None
    latency_level: int | None = None
    bitrate: float | None = None
    available_bitrate: float | None = None
    fraction_lost: float | None = None
    jitter: float | None = None
    rtt: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaQuality:
    send: DirectionQuality
    recv: DirectionQuality


@dataclass(frozen=True, slots=True, kw_only=True)
class ParticipantQuality:
    """A participant's Network Quality Level and what it is the minimum of."""

    level: int
    audio: MediaQuality
    video: MediaQuality


# --------------------------------------------------------------------------------------------
# Smoothing


@dataclass(frozen=True, slots=True)
class Smoothing:
    """Hysteresis of every metric's level, in seconds.

    Attributes:
        degrade_after: A lower level is taken once it (or worse) has held this long: with
            reports a second apart, three in a row; one bad report changes nothing.
        recover_after: A higher level is taken once it (or better) has held this long.
        stale_after: A metric with no sample for this long is forgotten.
    """

    degrade_after: float = 2.0
    recover_after: float = 10.0
    stale_after: float = 10.0


DEFAULT_SMOOTHING: Final = Smoothing()


@dataclass(slots=True)
class _Sample:
    at: float
    level: int
    values: tuple[float | None, ...]


@dataclass(slots=True)
class _Metric:
    """One metric's recent samples and its smoothed level (None until the first sample)."""

    samples: deque[_Sample] = field(default_factory=deque)
    level: int | None = None

    def add(self, now: float, level: int, values: tuple[float | None, ...], s: Smoothing) -> None:
        samples = self.samples
        if samples and now < samples[-1].at:
            now = samples[-1].at  # time never runs backwards here
        if samples and now - samples[-1].at > s.stale_after:
            samples.clear()
            self.level = None
        samples.append(_Sample(now, level, values))
        while len(samples) >= 2 and now - samples[1].at >= s.recover_after:
            samples.popleft()
        if self.level is None:
            self.level = level
            return
        worse = self._held(now, s.degrade_after, max)
        if worse is not None and worse < self.level:
            self.level = worse
            return
        better = self._held(now, s.recover_after, min)
        if better is not None and better > self.level:
            self.level = better

    def _held(self, now: float, duration: float, pick: Callable[[int, int], int]) -> int | None:
        """The level held for ``duration``: ``pick`` (max: the best of the recent worse ones;
        min: the worst of the recent better ones) over the samples from the newest back to
        the first one at least ``duration`` old; None if history is shorter than that."""
        held: int | None = None
        for sample in reversed(self.samples):
            held = sample.level if held is None else pick(held, sample.level)
            if now - sample.at >= duration:
                return held
        return None

    def expire(self, now: float, s: Smoothing) -> None:
        if self.samples and now - self.samples[-1].at > s.stale_after:
            self.samples.clear()
            self.level = None

    def means(self, now: float, s: Smoothing) -> tuple[float | None, ...]:
        """Each value averaged over the samples of the last ``degrade_after`` seconds."""
        recent = [x for x in self.samples if now - x.at <= s.degrade_after] or list(self.samples)[
            -1:
        ]
        if not recent:
            return ()
        out: list[float | None] = []
        for i in range(len(recent[0].values)):
            known = [v for x in recent if (v := x.values[i]) is not None]
            out.append(sum(known) / len(known) if known else None)
        return tuple(out)


@dataclass(slots=True)
class _Stream:
    loss: _Metric = field(default_factory=_Metric)
    rtt: _Metric = field(default_factory=_Metric)
    jitter: _Metric = field(default_factory=_Metric)
    bandwidth: _Metric = field(default_factory=_Metric)

    def metrics(self) -> tuple[_Metric, _Metric, _Metric, _Metric]:
        return (self.loss, self.rtt, self.jitter, self.bandwidth)


def _min_known(levels: Iterable[int | None]) -> int | None:
    known = [level for level in levels if level is not None]
    return min(known) if known else None


class NetworkQualityEstimator:
    """The smoothed Network Quality Levels of one participant.

    Feed `observe` with what is measured, ask `quality` when a level is due (e.g. on each
    client report). Not thread-safe; one per participant.
    """

    __slots__ = ("_broken", "_smoothing", "_streams", "_thresholds")

    def __init__(
        self,
        *,
        thresholds: Thresholds = DEFAULT_THRESHOLDS,
        smoothing: Smoothing = DEFAULT_SMOOTHING,
    ) -> None:
        self._thresholds = thresholds
        self._smoothing = smoothing
        self._broken = False
        self._streams = {(kind, d): _Stream() for kind in MediaKind for d in Direction}

    def observe(
        self, now: float, kind: MediaKind, direction: Direction, sample: LinkSample
    ) -> None:
        """Take in a sample (any subset of the metrics) measured at ``now`` (seconds)."""
        t, s = self._thresholds, self._smoothing
        stream = self._streams[(kind, direction)]
        if (level := loss_level(sample.fraction_lost, t)) is not None:
            fraction = min(max(sample.fraction_lost or 0.0, 0.0), 1.0)
            stream.loss.add(now, level, (fraction,), s)
        if (level := rtt_level(sample.rtt, t)) is not None:
            stream.rtt.add(now, level, (sample.rtt,), s)
        if (level := jitter_level(sample.jitter, t)) is not None:
            stream.jitter.add(now, level, (sample.jitter,), s)
        level = bandwidth_level(sample.bitrate, sample.expected_bitrate, t)
        if level is not None:
            values = (_finite(sample.bitrate), _finite(sample.available_bitrate))
            stream.bandwidth.add(now, level, values, s)

    def set_connected(self, connected: bool) -> None:
        """Mark the participant's media connection lost (every level 0) or back (starting
        afresh from the next samples)."""
        if connected and self._broken:
            self._streams = {key: _Stream() for key in self._streams}
        self._broken = not connected

    def quality(self, now: float) -> ParticipantQuality | None:
        """The levels at ``now``, or None while nothing is known (the SDK's null)."""
        s = self._smoothing
        if self._broken:
            broken = DirectionQuality(level=BROKEN)
            media = MediaQuality(send=broken, recv=broken)
            return ParticipantQuality(level=BROKEN, audio=media, video=media)
        directions: dict[tuple[MediaKind, Direction], DirectionQuality] = {}
        known = False
        for key, stream in self._streams.items():
            for metric in stream.metrics():
                metric.expire(now, s)
            latency = _min_known((stream.rtt.level, stream.jitter.level))
            components = (stream.bandwidth.level, stream.loss.level, latency)
            level = _min_known(components)
            known = known or any(m.level is not None for m in stream.metrics())
            (fraction,) = stream.loss.means(now, s) or (None,)
            (rtt,) = stream.rtt.means(now, s) or (None,)
            (jitter,) = stream.jitter.means(now, s) or (None,)
            bitrate, available = stream.bandwidth.means(now, s) or (None, None)
            directions[key] = DirectionQuality(
                level=MAX_LEVEL if level is None else level,
                bandwidth_level=stream.bandwidth.level,
                fraction_lost_level=stream.loss.level,
                latency_level=latency,
                bitrate=bitrate,
                available_bitrate=available,
                fraction_lost=fraction,
                jitter=jitter,
                rtt=rtt,
            )
        if not known:
            return None
        audio = MediaQuality(
            send=directions[(MediaKind.AUDIO, Direction.SEND)],
            recv=directions[(MediaKind.AUDIO, Direction.RECV)],
        )
        video = MediaQuality(
            send=directions[(MediaKind.VIDEO, Direction.SEND)],
            recv=directions[(MediaKind.VIDEO, Direction.RECV)],
        )
        level = min(audio.send.level, audio.recv.level, video.send.level, video.recv.level)
        return ParticipantQuality(level=level, audio=audio, video=video)
