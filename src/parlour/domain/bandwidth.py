"""Which subscribed video tracks a subscriber gets: the Network Bandwidth Profile rules.

`allocate` decides, for one subscriber, which of its subscribed video tracks are switched
on and which off, why, and how many bits per second each one on gets; `publisher_needs`
folds every subscriber's allocation into what each publisher must still encode. Both are
pure and deterministic (same input, same output; ties fall back to the candidates' order).

The rules follow Twilio's "Using the Network Bandwidth Profile API"
(https://www.twilio.com/docs/video/tutorials/using-bandwidth-profile-api) and the SDK's
own documentation of ``VideoBandwidthProfileOptions`` / ``BandwidthProfileMode`` /
``TrackSwitchOffMode`` (``twilio-video`` 2.36.0 ``lib/connect.js``);
``docs/media-signaling-tracks.md`` lists them with the choices Parlour made where Twilio
says nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum

__all__ = [
    "DEFAULT_RENDER_AREA",
    "Allocation",
    "Candidate",
    "Decision",
    "Mode",
    "OffReason",
    "Priority",
    "Profile",
    "PublisherNeed",
    "SimulcastLayer",
    "SwitchOffMode",
    "TrackSource",
    "allocate",
    "choose_layer",
    "publisher_needs",
    "switch_changes",
]


class Priority(IntEnum):
    """Track priority, ordered: ``HIGH > STANDARD > LOW``."""

    LOW = 1
    STANDARD = 2
    HIGH = 3

    @classmethod
    def of(cls, wire: str) -> Priority:
        """The priority for a wire string (``"low"``, ``"standard"``, ``"high"``)."""
        return cls[wire.upper()]

    @property
    def wire(self) -> str:
        """The wire string."""
        return self.name.lower()


class Mode(StrEnum):
    """``bandwidthProfile.video.mode``."""

    GRID = "grid"
    COLLABORATION = "collaboration"
    PRESENTATION = "presentation"


class SwitchOffMode(StrEnum):
    """``bandwidthProfile.video.trackSwitchOffMode``."""

    PREDICTED = "predicted"
    DETECTED = "detected"
    DISABLED = "disabled"


class TrackSource(StrEnum):
    """What a video track shows, as far as the server can guess (from its name)."""

    CAMERA = "camera"
    SCREEN = "screen"

    @classmethod
    def guess(cls, track_name: str) -> TrackSource:
        """``SCREEN`` when the track name mentions a screen share, else ``CAMERA``."""
        name = track_name.lower()
        return (
            cls.SCREEN
            if any(word in name for word in ("screen", "share", "presentation"))
            else cls.CAMERA
        )


class OffReason(StrEnum):
    """Why a track is switched off."""

    DISABLED_BY_SUBSCRIBER = "disabled-by-subscriber"
    """A render hint ``enabled: false``: no visible element (``clientTrackSwitchOffControl:
    "auto"``) or ``RemoteVideoTrack.switchOff()`` (``"manual"``)."""
    MAX_TRACKS = "max-tracks"
    """Beyond the deprecated ``maxTracks``."""
    BANDWIDTH = "bandwidth"
    """Its lowest bitrate does not fit what higher-ranked tracks left of the budget."""


DEFAULT_RENDER_AREA: Mapping[Priority, int] = {
    Priority.HIGH: 1280 * 720,
    Priority.STANDARD: 640 * 480,
    Priority.LOW: 176 * 144,
}
"""Render area assumed for a track without a render-dimensions hint, by effective priority
(the SDK's documented defaults of the deprecated ``renderDimensions``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Profile:
    """A subscriber's video bandwidth profile (``bandwidth_profile.video``).

    ``max_subscription_bitrate`` (bps) and ``max_tracks`` of None, 0 or less mean no limit.
    ``dominant_speaker_priority`` is the *minimum* priority of the dominant speaker's tracks.
    ``render_areas`` overrides `DEFAULT_RENDER_AREA` per priority (deprecated
    ``renderDimensions``). A participant connecting without a bandwidth profile gets the
    defaults.
    """

    mode: Mode = Mode.GRID
    max_subscription_bitrate: int | None = None
    max_tracks: int | None = None
    dominant_speaker_priority: Priority = Priority.STANDARD
    switch_off_mode: SwitchOffMode = SwitchOffMode.PREDICTED
    render_areas: Mapping[Priority, int] = field(default_factory=dict, hash=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Candidate:
    """One video track the subscriber is subscribed to.

    ``bitrate`` is the track's bitrate at its best quality and ``min_bitrate`` at its lowest
    (the smallest simulcast layer; None means the same as ``bitrate``), both in bps.
    ``enabled`` is the last render-hint ``enabled`` (None: no hint yet, which counts as on).
    ``render_area`` is width × height of the last render-dimensions hint (None: none yet).
    ``subscribe_priority`` is the subscriber's ``track_priority`` override (None: cleared).
    """

    track_sid: str
    publisher_sid: str
    publish_priority: Priority = Priority.STANDARD
    subscribe_priority: Priority | None = None
    source: TrackSource = TrackSource.CAMERA
    enabled: bool | None = None
    render_area: int | None = None
    bitrate: int = 0
    min_bitrate: int | None = None

    @property
    def lowest_bitrate(self) -> int:
        """The bitrate of the track's lowest quality."""
        low = self.bitrate if self.min_bitrate is None else min(self.min_bitrate, self.bitrate)
        return max(0, low)


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """What happens to one candidate: on with ``bitrate`` bps, or off for ``reason``.

    ``rank`` is its place in the priority order (0 is the most important).
    """

    track_sid: str
    publisher_sid: str
    on: bool
    reason: OffReason | None
    priority: Priority
    rank: int
    bitrate: int


@dataclass(frozen=True, slots=True)
class Allocation:
    """`allocate`'s answer: one `Decision` per candidate, in rank order."""

    decisions: tuple[Decision, ...]
    budget: int | None
    """The bitrate the tracks had to fit in (None: unlimited)."""
    # Indexes of `decisions`, made once: the allocation runs for every subscriber every
    # second, and looking decisions up by scanning made it quadratic in the room's size.
    _by_sid: dict[str, Decision] = field(init=False, repr=False, compare=False)
    _on: frozenset[str] = field(init=False, repr=False, compare=False)
    _off: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_sid: dict[str, Decision] = {}
        for d in self.decisions:
            by_sid.setdefault(d.track_sid, d)
        object.__setattr__(self, "_by_sid", by_sid)
        object.__setattr__(self, "_on", frozenset(d.track_sid for d in self.decisions if d.on))
        object.__setattr__(self, "_off", frozenset(d.track_sid for d in self.decisions if not d.on))

    @property
    def on(self) -> frozenset[str]:
        """SIDs of the tracks switched on."""
        return self._on

    @property
    def off(self) -> frozenset[str]:
        """SIDs of the tracks switched off."""
        return self._off

    def decision(self, track_sid: str) -> Decision | None:
        """The decision about one track, if it was a candidate."""
        return self._by_sid.get(track_sid)


def _effective_priority(c: Candidate, profile: Profile, dominant_speaker: str | None) -> Priority:
    priority = c.subscribe_priority if c.subscribe_priority is not None else c.publish_priority
    if dominant_speaker is not None and c.publisher_sid == dominant_speaker:
        priority = max(priority, profile.dominant_speaker_priority)
    return priority


def _budget(profile: Profile, available_bitrate: int | None, congested: bool) -> int | None:
    limits: list[int] = []
    if profile.max_subscription_bitrate is not None and profile.max_subscription_bitrate > 0:
        limits.append(profile.max_subscription_bitrate)
    estimate_applies = profile.switch_off_mode is SwitchOffMode.PREDICTED or congested
    if available_bitrate is not None and estimate_applies:
        limits.append(max(0, available_bitrate))
    return min(limits) if limits else None


def _share(
    ranked: Sequence[tuple[Candidate, Priority]], budget: int | None, profile: Profile
) -> dict[str, int]:
    """Bitrates of the tracks kept on: each gets its lowest, the rest of the budget goes by mode."""
    grant = {c.track_sid: c.lowest_bitrate for c, _ in ranked}
    if budget is None:
        return {c.track_sid: max(c.bitrate, grant[c.track_sid]) for c, _ in ranked}
    left = budget - sum(grant.values())
    if left <= 0:
        return grant
    if profile.mode is Mode.PRESENTATION:
        # Strict order: each track up to its best before the next one gets anything.
        for c, _ in ranked:
            extra = min(left, max(0, c.bitrate - grant[c.track_sid]))
            grant[c.track_sid] += extra
            left -= extra
        return grant
    # Weighted water-filling: grid shares equally, collaboration by render area.
    weights: dict[str, int] = {}
    for c, priority in ranked:
        if profile.mode is Mode.GRID:
            weights[c.track_sid] = 1
        else:
            area = c.render_area
            if area is None:
                area = profile.render_areas.get(priority, DEFAULT_RENDER_AREA[priority])
            weights[c.track_sid] = max(1, area)
    hungry = [c for c, _ in ranked if c.bitrate > grant[c.track_sid]]
    while hungry and left > 0:
        total = sum(weights[c.track_sid] for c in hungry)
        spent = 0
        still: list[Candidate] = []
        for c in hungry:
            want = c.bitrate - grant[c.track_sid]
            offer = max(1, left * weights[c.track_sid] // total)
            give = min(want, offer, left - spent)
            grant[c.track_sid] += give
            spent += give
            if give < want:
                still.append(c)
        left -= spent
        if spent == 0:
            break
        hungry = still
    return grant


def allocate(
    profile: Profile,
    candidates: Iterable[Candidate],
    *,
    available_bitrate: int | None = None,
    dominant_speaker: str | None = None,
    congested: bool = False,
) -> Allocation:
    """Decide which of one subscriber's video tracks are on, and each one's bitrate.

    Args:
        profile: The subscriber's bandwidth profile.
        candidates: Its subscribed video tracks (SIDs unique; a repeated SID keeps the first).
        available_bitrate: The downlink estimate for this subscriber in bps (None: unknown).
        dominant_speaker: The participant SID of the room's dominant speaker, if the
            subscriber asked for dominant speaker events (else None).
        congested: Whether congestion was detected on the downlink; with
            ``trackSwitchOffMode: "detected"`` the estimate only limits tracks then.

    Returns:
        One `Decision` per candidate, in rank order:

        1. Rank: effective priority (the subscriber's override, else the publisher's; the
           dominant speaker's tracks raised to ``dominant_speaker_priority``), high first.
           Ties: in presentation mode screen shares first; then the dominant speaker's
           tracks; then the candidates' order.
        2. ``enabled: false`` render hints → off (`OffReason.DISABLED_BY_SUBSCRIBER`).
        3. Past ``max_tracks`` enabled tracks → off (`OffReason.MAX_TRACKS`).
        4. Budget = the smaller of ``max_subscription_bitrate`` and the estimate (applied in
           "predicted" mode always, in "detected" mode when ``congested``). In rank order a
           track stays on if its lowest bitrate fits what is left, else it is off
           (`OffReason.BANDWIDTH`); lower tracks may still fit. The first enabled track is
           always kept on, even alone over the budget (a subscriber sees its most important
           video at its lowest quality rather than nothing). With ``trackSwitchOffMode:
           "disabled"`` nothing is switched off for bandwidth: every enabled track gets its
           lowest bitrate, however far over the budget.
        5. What is left of the budget goes, above each track's lowest, equally (grid), in
           proportion to render area (collaboration; default areas by priority), or in rank
           order (presentation), never above a track's ``bitrate``.

        So, except for step 4's two exceptions, the bitrates of the tracks on add up to at
        most the budget.
    """
    seen: set[str] = set()
    unique: list[Candidate] = []
    for c in candidates:
        if c.track_sid not in seen:
            seen.add(c.track_sid)
            unique.append(c)

    def key(item: tuple[int, Candidate]) -> tuple[int, int, int, int]:
        index, c = item
        screen_first = profile.mode is Mode.PRESENTATION and c.source is TrackSource.SCREEN
        speaker = dominant_speaker is not None and c.publisher_sid == dominant_speaker
        return (-_effective_priority(c, profile, dominant_speaker), -screen_first, -speaker, index)

    ordered = [c for _, c in sorted(enumerate(unique), key=key)]
    budget = _budget(profile, available_bitrate, congested)
    limit_tracks = (
        profile.max_tracks if profile.max_tracks is not None and profile.max_tracks > 0 else None
    )

    off: dict[str, OffReason] = {}
    kept: list[tuple[Candidate, Priority]] = []
    used = 0
    for c in ordered:
        priority = _effective_priority(c, profile, dominant_speaker)
        if c.enabled is False:
            off[c.track_sid] = OffReason.DISABLED_BY_SUBSCRIBER
        elif limit_tracks is not None and len(kept) >= limit_tracks:
            off[c.track_sid] = OffReason.MAX_TRACKS
        elif (
            budget is not None
            and profile.switch_off_mode is not SwitchOffMode.DISABLED
            and kept
            and used + c.lowest_bitrate > budget
        ):
            off[c.track_sid] = OffReason.BANDWIDTH
        else:
            kept.append((c, priority))
            used += c.lowest_bitrate

    rates = _share(kept, budget, profile)
    decisions = tuple(
        Decision(
            track_sid=c.track_sid,
            publisher_sid=c.publisher_sid,
            on=c.track_sid not in off,
            reason=off.get(c.track_sid),
            priority=_effective_priority(c, profile, dominant_speaker),
            rank=rank,
            bitrate=rates.get(c.track_sid, 0),
        )
        for rank, c in enumerate(ordered)
    )
    return Allocation(decisions, budget)


@dataclass(frozen=True, slots=True, kw_only=True)
class PublisherNeed:
    """Whether any subscriber has a published video track on, and the most any one takes."""

    track_sid: str
    needed: bool
    max_bitrate: int


def publisher_needs(
    published: Iterable[str], allocations: Iterable[Allocation]
) -> tuple[PublisherNeed, ...]:
    """For each published video track (in the given order), whether it must be encoded.

    A track is needed when at least one subscriber's allocation has it on; a track nobody
    subscribes to, or every subscriber has switched off, is not, so its publisher may pause
    its encodings (``publisher_hints``). ``max_bitrate`` is the largest bitrate any
    subscriber was granted (0 when not needed), for choosing which simulcast layers to keep.
    """
    best: dict[str, int] = {}
    for allocation in allocations:
        for d in allocation.decisions:
            if d.on:
                best[d.track_sid] = max(best.get(d.track_sid, 0), d.bitrate)
    out: list[PublisherNeed] = []
    for sid in dict.fromkeys(published):
        out.append(PublisherNeed(track_sid=sid, needed=sid in best, max_bitrate=best.get(sid, 0)))
    return tuple(out)


def switch_changes(
    previous: Allocation | None, current: Allocation
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(off, on)``: the SIDs whose state changed since ``previous``, for a ``track_switch_off``.

    With no previous allocation every track is reported (the SDK starts tracks switched on,
    so reporting the on ones too is harmless and survives a lost message). Each list is in
    rank order; a SID is never in both.
    """
    ranked = [d.track_sid for d in current.decisions]
    if previous is None:
        return tuple(s for s in ranked if s in current.off), tuple(
            s for s in ranked if s in current.on
        )
    went_off = current.off - previous.off
    went_on = current.on - previous.on
    return tuple(s for s in ranked if s in went_off), tuple(s for s in ranked if s in went_on)


@dataclass(frozen=True, slots=True, kw_only=True)
class SimulcastLayer:
    """One simulcast layer of a published video track, as the SFU measures it.

    ``width``/``height`` are its last keyframe's (0: unknown), ``bitrate`` in bps, and
    ``active`` whether it arrives now (a publisher's encoder may not send every layer: too
    small a source, too little uplink, or paused by a publisher hint).
    """

    width: int = 0
    height: int = 0
    bitrate: int = 0
    active: bool = True

    @property
    def area(self) -> int:
        return self.width * self.height


LAYER_AREA_SLACK = 3 / 4
"""A layer serves render areas up to 1/slack of its own: a 320×240 layer is enough for a
360×270 element (upscaled a little) rather than sending 640×480 for it."""

TEMPORAL_SHARE = (0.4, 0.6, 1.0)
"""Share of a VP8 layer's bitrate carried by temporal layers 0, 0–1 and 0–2 (libwebrtc's
three-layer split is 40/20/40 %)."""


def choose_layer(
    layers: Sequence[SimulcastLayer], *, render_area: int | None, bitrate: int | None
) -> tuple[int, int]:
    """``(spatial, temporal)``: which layer of a simulcast track a subscriber gets.

    1. Size: the smallest arriving layer at least about as large as the render area
       (`LAYER_AREA_SLACK`); the largest arriving one without a render area, when none is
       large enough, or when sizes are unknown.
    2. Bitrate: while the layer's bitrate exceeds ``bitrate`` (what the allocation granted
       the track; None: no limit), the next smaller arriving layer.
    3. Temporal: on the smallest layer and still over ``bitrate``, the most VP8 temporal
       layers that fit (`TEMPORAL_SHARE`; at least the base layer); else all (2).

    With no arriving layer the top layer is asked for (it is what the publisher should send).
    """
    if not layers:
        return 0, 2
    arriving = [i for i, layer in enumerate(layers) if layer.active]
    if not arriving:
        return len(layers) - 1, 2
    pick = arriving[-1]
    if render_area is not None and all(layers[i].area for i in arriving):
        for i in arriving:
            if layers[i].area >= render_area * LAYER_AREA_SLACK:
                pick = i
                break
    if bitrate is not None:
        while pick != arriving[0] and layers[pick].bitrate > bitrate:
            pick = arriving[arriving.index(pick) - 1]
        rate = layers[pick].bitrate
        if rate > bitrate:
            for temporal in (1, 0):
                if rate * TEMPORAL_SHARE[temporal] <= bitrate:
                    return pick, temporal
            return pick, 0
    return pick, 2
