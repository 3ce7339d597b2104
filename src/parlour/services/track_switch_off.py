"""Track priority and switch-off for one subscriber (twilio-video's Network Bandwidth Profile).

What a subscriber wants is its `bandwidth_profile` (in `connect` and `update`), its render
hints (`render_hints` channel: a track hidden or switched off by the app is `enabled:
false`; render dimensions), and its priority overrides (`track_priority` channel). With the
publishers' priorities, the room's dominant speaker and the tracks' measured bitrates, the
pure allocation (`domain.bandwidth.allocate`) says which subscribed video tracks are on.
The SFU stops forwarding the others (no bandwidth or CPU spent on them) and the subscriber
hears the change on `track_switch_off` (`switchedOff` / `switchedOn`); a track switched on
again starts at a keyframe.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from parlour.domain.bandwidth import (
    DEFAULT_RENDER_AREA,
    Allocation,
    Candidate,
    Mode,
    Priority,
    Profile,
    SimulcastLayer,
    SwitchOffMode,
    TrackSource,
    allocate,
    choose_layer,
    switch_changes,
)
from parlour.protocol import msp_tracks as msp
from parlour.protocol.signaling import SignalingProtocolError

__all__ = ["SwitchOff", "VideoTrack", "profile_of"]


@dataclass(frozen=True)
class VideoTrack:
    """A subscribed video track, as the allocation sees it."""

    sid: str
    publisher_sid: str
    name: str
    priority: str  # the publisher's: low | standard | high
    bitrate: int  # bps, as measured on the way in (every layer)
    layers: tuple[SimulcastLayer, ...] = ()  # simulcast layers, lowest first

    @property
    def best_bitrate(self) -> int:
        """The bitrate at its best quality: the top arriving layer's, with simulcast."""
        rates = [layer.bitrate for layer in self.layers if layer.active]
        return rates[-1] if rates else self.bitrate

    @property
    def lowest_bitrate(self) -> int | None:
        """The bitrate at its lowest quality (None: the same as `best_bitrate`)."""
        rates = [layer.bitrate for layer in self.layers if layer.active]
        return rates[0] if rates else None


def profile_of(raw: Mapping[str, Any] | None) -> Profile:
    """The domain profile of a `bandwidth_profile` (defaults for a missing or bad one)."""
    if not raw:
        return Profile()
    try:
        video = msp.BandwidthProfile.parse(raw).video
    except SignalingProtocolError:
        return Profile()
    if video is None:
        return Profile()
    cap = video.max_subscription_bandwidth
    tracks = video.max_tracks
    return Profile(
        mode=Mode(video.mode.value) if video.mode is not None else Mode.GRID,
        max_subscription_bitrate=int(cap) if cap else None,
        max_tracks=int(tracks) if tracks else None,
        dominant_speaker_priority=(
            Priority.of(video.active_speaker_priority.value)
            if video.active_speaker_priority is not None
            else Priority.STANDARD
        ),
        switch_off_mode=(
            SwitchOffMode(video.track_switch_off.value)
            if video.track_switch_off is not None
            else SwitchOffMode.PREDICTED
        ),
        render_areas={
            Priority.of(priority.value): max(0, dims.width) * max(0, dims.height)
            for priority, dims in (video.render_dimensions or {}).items()
        },
    )


class SwitchOff:
    """One subscriber's wishes and its current allocation."""

    def __init__(self, bandwidth_profile: Mapping[str, Any] | None = None) -> None:
        self.profile = profile_of(bandwidth_profile)
        self._enabled: dict[str, bool] = {}
        self._areas: dict[str, int] = {}
        self._overrides: dict[str, Priority] = {}
        self.allocation: Allocation | None = None
        self._reported: Allocation | None = None
        #: Simulcast layers chosen for the tracks on: SID → (spatial, temporal).
        self.layers: dict[str, tuple[int, int]] = {}

    def set_profile(self, bandwidth_profile: Mapping[str, Any] | None) -> None:
        self.profile = profile_of(bandwidth_profile)

    def message(self, channel: str, body: Mapping[str, Any]) -> dict[str, Any] | None:
        """A client message on `render_hints` or `track_priority`; returns the reply to
        send on the same channel, if any (every render-hints request is answered)."""
        try:
            message = msp.parse_msp(channel, "client", body)
        except SignalingProtocolError:
            return None
        if isinstance(message, msp.RenderHintsRequest):
            for hint in message.hints:
                if hint.enabled is not None:
                    self._enabled[hint.track] = hint.enabled
                if hint.render_dimensions is not None:
                    dims = hint.render_dimensions
                    self._areas[hint.track] = dims.width * dims.height
            results = tuple(msp.RenderHintResult(track=h.track) for h in message.hints)
            return msp.RenderHintsReply(id=message.id, hints=results).to_json()
        if isinstance(message, msp.TrackPriorityUpdate):
            if message.subscribe is None:
                self._overrides.pop(message.track, None)
            else:
                self._overrides[message.track] = Priority.of(message.subscribe.value)
        return None

    def allocate(
        self,
        tracks: Iterable[VideoTrack],
        dominant_speaker: str | None,
        *,
        available_bitrate: int | None = None,
        congested: bool = False,
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Decide again (with the downlink estimate, if any); returns the `(off, on)`
        changes not reported yet."""
        candidates = [
            Candidate(
                track_sid=t.sid,
                publisher_sid=t.publisher_sid,
                publish_priority=Priority.of(t.priority),
                subscribe_priority=self._overrides.get(t.sid),
                source=TrackSource.guess(t.name),
                enabled=self._enabled.get(t.sid),
                render_area=self._areas.get(t.sid),
                bitrate=t.best_bitrate,
                min_bitrate=t.lowest_bitrate,
            )
            for t in tracks
        ]
        allocation = allocate(
            self.profile,
            candidates,
            dominant_speaker=dominant_speaker,
            available_bitrate=available_bitrate,
            congested=congested,
        )
        self.allocation = allocation
        self.layers = {}
        for t in tracks:
            decision = allocation.decision(t.sid)
            if not t.layers or decision is None or not decision.on:
                continue
            area = self._areas.get(t.sid)
            if area is None:
                area = self.profile.render_areas.get(
                    decision.priority, DEFAULT_RENDER_AREA[decision.priority]
                )
            limit = decision.bitrate if allocation.budget is not None else None
            self.layers[t.sid] = choose_layer(t.layers, render_area=area, bitrate=limit)
        return switch_changes(self._reported, allocation)

    def reported(self) -> None:
        """The last changes reached the client."""
        self._reported = self.allocation

    @property
    def off(self) -> frozenset[str]:
        return frozenset(self.allocation.off) if self.allocation is not None else frozenset()
