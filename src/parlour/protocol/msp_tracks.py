"""Media Signaling Protocol (MSP) messages for track priority, switch-off and hints.

The `twilio-video` SDK asks for these channels in ``connect.media_signaling`` and, once the
server answers ``connected.media_signaling.<channel>.transport = {type: "data-channel",
label}``, speaks JSON over the SCTP data channel of that label (one channel per key):

========================  =====================  ==========================================
channel                   client → server        server → client
========================  =====================  ==========================================
``track_priority``        `TrackPriorityUpdate`  (nothing; the SDK reads nothing)
``track_switch_off``      (nothing)              `TrackSwitchOff`
``render_hints``          `RenderHintsRequest`   `RenderHintsReply`
``publisher_hints``       `PublisherHintsReply`, `PublisherHints`
                          `ClientReset`
every channel             `Ready` (first)
========================  =====================  ==========================================

Sources (twilio-video 2.36.0, ``lib/``): ``signaling/v2/trackprioritysignaling.js``,
``trackswitchoffsignaling.js``, ``renderhintssignaling.js``, ``publisherhintsignaling.js``,
``room.js`` (``_initTrackSwitchOffSignaling``, ``_initPublisherHintSignaling``),
``data/transport.js`` (``ready``), and ``util/index.js`` (``createBandwidthProfilePayload``)
for `BandwidthProfile`, the ``bandwidth_profile`` member of RSP ``connect`` and client
``update``. ``docs/media-signaling-tracks.md`` describes each message.

Every message is a frozen dataclass with ``parse(obj)`` (untrusted decoded JSON in, only
`MspProtocolError` out) and ``to_json()``. Members not modelled are kept in ``extra`` and
written back. `parse_msp` picks the class from the channel, the sender and ``type``.
Pure: stdlib and ``parlour.protocol`` only, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Final, Self, TypeAlias, cast

from parlour.protocol.signaling import (
    MspChannel,
    Sender,
    SignalingProtocolError,
    TrackPriority,
    UnknownMessageTypeError,
)
from parlour.protocol.wire import JsonObject, Reader, Wire, emit, extra_field

__all__ = [
    "BandwidthProfile",
    "BandwidthProfileMode",
    "ClientMspMessage",
    "ClientReset",
    "HintResult",
    "LayerEncoding",
    "MspMessage",
    "MspProtocolError",
    "PublisherHint",
    "PublisherHintResult",
    "PublisherHints",
    "PublisherHintsReply",
    "Ready",
    "RenderDimensions",
    "RenderHint",
    "RenderHintResult",
    "RenderHintsReply",
    "RenderHintsRequest",
    "ServerMspMessage",
    "TrackPriorityUpdate",
    "TrackSwitchOff",
    "TrackSwitchOffMode",
    "UnknownMspMessageTypeError",
    "VideoBandwidthProfile",
    "parse_msp",
]


class MspProtocolError(SignalingProtocolError):
    """A media-signaling message that does not follow the protocol.

    The only exception the parsers raise for bad input (a `SignalingProtocolError`, so a
    `ValueError`). The message names the member by path, e.g.
    ``render_hints.subscriber.hints[0].enabled: expected a boolean, got a string``.
    """


class UnknownMspMessageTypeError(MspProtocolError, UnknownMessageTypeError):
    """A well-formed message whose ``type`` the receiving side does not handle on that channel.

    The SDK logs and ignores these (``default:`` branches), so a receiver may skip them.
    ``message_type`` is the ``type`` as received.
    """


class BandwidthProfileMode(StrEnum):
    """``bandwidth_profile.video.mode`` (``bandwidthProfile.video.mode``; SDK default grid)."""

    GRID = "grid"
    COLLABORATION = "collaboration"
    PRESENTATION = "presentation"


class TrackSwitchOffMode(StrEnum):
    """``bandwidth_profile.video.track_switch_off`` (``trackSwitchOffMode``; default predicted)."""

    PREDICTED = "predicted"
    DETECTED = "detected"
    DISABLED = "disabled"


class HintResult(StrEnum):
    """Known ``result`` strings of hint replies; other strings are accepted too.

    The SDK's publisher answers one of ``OK``, ``INVALID_HINT``, ``COULD_NOT_APPLY_HINT``,
    ``UNKNOWN_TRACK``, ``REQUEST_SKIPPED`` (``localparticipant.js``, ``peerconnection.js``);
    for render hints it only compares with ``OK`` and logs anything else.
    """

    OK = "OK"
    INVALID_HINT = "INVALID_HINT"
    COULD_NOT_APPLY_HINT = "COULD_NOT_APPLY_HINT"
    UNKNOWN_TRACK = "UNKNOWN_TRACK"
    REQUEST_SKIPPED = "REQUEST_SKIPPED"


# --------------------------------------------------------------------------------------------
# Reading untrusted JSON (the machinery is `parlour.protocol.wire`'s)


class _Obj(Reader):
    """`Reader` of these channels' messages: raises `MspProtocolError`."""

    __slots__ = ()

    error: ClassVar[type[ValueError]] = MspProtocolError


class _Part(Wire[_Obj]):
    """A nested wire object; `parse` raises only `MspProtocolError`."""

    __slots__ = ()

    _READER: ClassVar[type[Reader]] = _Obj


class _Msg(_Part):
    """A message: a wire object with a ``type`` member (``TYPE``)."""

    __slots__ = ()


# --------------------------------------------------------------------------------------------
# Every channel


@dataclass(frozen=True, slots=True, kw_only=True)
class Ready(_Msg):
    """``{"type": "ready"}``: the first message the SDK sends on every MSP data channel."""

    extra: Mapping[str, Any] = extra_field()

    TYPE: ClassVar[str] = "ready"


# --------------------------------------------------------------------------------------------
# track_priority


@dataclass(frozen=True, slots=True, kw_only=True)
class TrackPriorityUpdate(_Msg):
    """Client → server on ``track_priority``: ``{type, track, subscribe}``.

    Sent by ``RemoteVideoTrack.setPriority(p)``; ``subscribe: null`` (``setPriority(null)``)
    clears the subscriber's priority, so the publisher's applies again. An absent
    ``subscribe`` reads as null. The SDK sends only subscribe priorities (it throws for
    ``publish``); the publish priority travels in RSP ``participant.tracks[].priority``.
    The SDK re-sends every update when the channel is (re)opened.
    """

    track: str
    subscribe: TrackPriority | None
    extra: Mapping[str, Any] = extra_field()

    TYPE: ClassVar[str] = "track_priority"

    @classmethod
    def _parse(cls, f: _Obj) -> Self:
        return cls(
            track=f.req_str("track", nonempty=True),
            subscribe=f.opt_enum("subscribe", TrackPriority),
            extra=f.extra(),
        )

    def _members(self) -> JsonObject:
        return {
            "track": self.track,
            "subscribe": None if self.subscribe is None else self.subscribe.value,
        }


# --------------------------------------------------------------------------------------------
# track_switch_off


def _sids(f: _Obj, key: str) -> tuple[str, ...]:
    """An optional array of non-empty strings; absent or null is empty."""
    return f.opt_strs(key, nonempty=True) or ()


@dataclass(frozen=True, slots=True, kw_only=True)
class TrackSwitchOff(_Msg):
    """Server → client on ``track_switch_off``: ``{type, off: [sid…], on: [sid…]}``.

    Either list may be absent (read as empty). The SDK switches the named remote tracks
    off/on (``trackSwitchedOff``/``trackSwitchedOn``) and remembers states of tracks it does
    not know yet for when they are subscribed. A SID in both lists is refused here (the SDK
    warns about it as bug VIDEO-3762 and lets ``off`` win).
    """

    off: tuple[str, ...] = ()
    on: tuple[str, ...] = ()
    extra: Mapping[str, Any] = extra_field()

    TYPE: ClassVar[str] = "track_switch_off"

    def __post_init__(self) -> None:
        both = set(self.off) & set(self.on)
        if both:
            raise MspProtocolError(f"track_switch_off: {sorted(both)} both switched off and on")

    @classmethod
    def _parse(cls, f: _Obj) -> Self:
        return cls(off=_sids(f, "off"), on=_sids(f, "on"), extra=f.extra())

    def _members(self) -> JsonObject:
        return {"off": list(self.off), "on": list(self.on)}


# --------------------------------------------------------------------------------------------
# render_hints


def _dimension(f: _Obj, key: str) -> int:
    return round(f.req_number(key, finite=True))


@dataclass(frozen=True, slots=True, kw_only=True)
class RenderDimensions(_Part):
    """``{height, width}`` in pixels (a ``VideoTrack.Dimensions``).

    Any finite number is accepted and rounded to an integer: the SDK measures element sizes
    (``clientWidth``), but ``setContentPreferences`` passes whatever the application gives,
    and the deprecated ``bandwidthProfile.video.renderDimensions`` allows 0 or negative
    values ("lowest possible resolution").
    """

    width: int
    height: int
    extra: Mapping[str, Any] = extra_field()

    _WHERE: ClassVar[str] = "render_dimensions"

    @classmethod
    def _parse(cls, f: _Obj) -> Self:
        return cls(width=_dimension(f, "width"), height=_dimension(f, "height"), extra=f.extra())

    def _members(self) -> JsonObject:
        return {"height": self.height, "width": self.width}


@dataclass(frozen=True, slots=True, kw_only=True)
class RenderHint(_Part):
    """One ``subscriber.hints[]`` item: ``{track, enabled?, render_dimensions?}``.

    Only what changed is sent: ``enabled`` (false when the track's elements are all
    invisible in ``clientTrackSwitchOffControl: "auto"``, or after ``switchOff()`` /
    ``switchOn()`` in ``"manual"``) and/or ``render_dimensions`` (largest visible element
    in ``contentPreferencesMode: "auto"``, or ``setContentPreferences`` in ``"manual"``).
    """

    track: str
    enabled: bool | None = None
    render_dimensions: RenderDimensions | None = None
    extra: Mapping[str, Any] = extra_field()

    _WHERE: ClassVar[str] = "hint"

    @classmethod
    def _parse(cls, f: _Obj) -> Self:
        dims = f.opt_obj("render_dimensions")
        return cls(
            track=f.req_str("track", nonempty=True),
            enabled=f.opt_bool("enabled", null=False),
            render_dimensions=None if dims is None else RenderDimensions._parse(dims),
            extra=f.extra(),
        )

    def _members(self) -> JsonObject:
        out: JsonObject = {"track": self.track}
        emit(out, "enabled", self.enabled)
        if self.render_dimensions is not None:
            out["render_dimensions"] = self.render_dimensions.to_json()
        return out


def _subscriber(f: _Obj) -> tuple[_Obj, int]:
    sub = f.req_obj("subscriber")
    return sub, sub.req_int("id", minimum=0)


@dataclass(frozen=True, slots=True, kw_only=True)
class RenderHintsRequest(_Msg):
    """Client → server on ``render_hints``: ``{type, subscriber: {id, hints: [RenderHint]}}``.

    ``id`` counts up from 1 per page load. The SDK sends nothing more until it gets a
    `RenderHintsReply` (any ``id``), and re-sends all its hints if none comes within 2 s
    (then 4 s, 8 s …), and whenever the channel is (re)opened. Members of ``subscriber``
    other than ``id`` and ``hints`` are not kept.
    """

    id: int
    hints: tuple[RenderHint, ...]
    extra: Mapping[str, Any] = extra_field()

    TYPE: ClassVar[str] = "render_hints"

    @classmethod
    def _parse(cls, f: _Obj) -> Self:
        sub, msg_id = _subscriber(f)
        hints = sub.req_objs("hints", RenderHint._parse)
        return cls(id=msg_id, hints=hints, extra=f.extra())

    def _members(self) -> JsonObject:
        return {"subscriber": {"id": self.id, "hints": [h.to_json() for h in self.hints]}}


@dataclass(frozen=True, slots=True, kw_only=True)
class RenderHintResult(_Part):
    """One ``{track, result}`` of a hint reply; ``result`` is ``"OK"`` or an error string."""

    track: str
    result: str = HintResult.OK.value
    extra: Mapping[str, Any] = extra_field()

    _WHERE: ClassVar[str] = "hint"

    @classmethod
    def _parse(cls, f: _Obj) -> Self:
        return cls(
            track=f.req_str("track", nonempty=True),
            result=f.req_str("result", nonempty=True),
            extra=f.extra(),
        )

    def _members(self) -> JsonObject:
        return {"track": self.track, "result": str(self.result)}


@dataclass(frozen=True, slots=True, kw_only=True)
class RenderHintsReply(_Msg):
    """Server → client on ``render_hints``: ``{type, subscriber: {id, hints: [{track, result}]}}``.

    Answers a `RenderHintsRequest` (same ``id``). The SDK reads only
    ``subscriber.hints[].result`` (anything but ``"OK"`` is logged) and then sends its
    pending hints; absent ``hints`` read as empty.
    """

    id: int
    hints: tuple[RenderHintResult, ...] = ()
    extra: Mapping[str, Any] = extra_field()

    TYPE: ClassVar[str] = "render_hints"

    @classmethod
    def _parse(cls, f: _Obj) -> Self:
        sub, msg_id = _subscriber(f)
        hints = sub.opt_objs("hints", RenderHintResult._parse) or ()
        return cls(id=msg_id, hints=hints, extra=f.extra())

    def _members(self) -> JsonObject:
        return {"subscriber": {"id": self.id, "hints": [h.to_json() for h in self.hints]}}


# --------------------------------------------------------------------------------------------
# publisher_hints


@dataclass(frozen=True, slots=True, kw_only=True)
class LayerEncoding(_Part):
    """``{enabled, layer_index}``: turn one simulcast encoding of a sender on or off.

    The SDK sets ``RTCRtpEncodingParameters.active`` of ``encodings[layer_index]`` and
    ignores (logs) an index the sender does not have.
    """

    layer_index: int
    enabled: bool
    extra: Mapping[str, Any] = extra_field()

    _WHERE: ClassVar[str] = "encoding"

    @classmethod
    def _parse(cls, f: _Obj) -> Self:
        enabled = f.req_bool("enabled")
        return cls(
            layer_index=f.req_int("layer_index", minimum=0), enabled=enabled, extra=f.extra()
        )

    def _members(self) -> JsonObject:
        return {"enabled": self.enabled, "layer_index": self.layer_index}


@dataclass(frozen=True, slots=True, kw_only=True)
class PublisherHint(_Part):
    """``{track, encodings}``: ``encodings: null`` resets the sender to its default layers."""

    track: str
    encodings: tuple[LayerEncoding, ...] | None
    extra: Mapping[str, Any] = extra_field()

    _WHERE: ClassVar[str] = "hint"

    @classmethod
    def _parse(cls, f: _Obj) -> Self:
        return cls(
            track=f.req_str("track", nonempty=True),
            encodings=f.opt_objs("encodings", LayerEncoding._parse),
            extra=f.extra(),
        )

    def _members(self) -> JsonObject:
        encodings = None if self.encodings is None else [e.to_json() for e in self.encodings]
        return {"track": self.track, "encodings": encodings}

    @classmethod
    def all_layers(cls, track: str, *, enabled: bool, layers: int = 3) -> Self:
        """A hint turning layers ``0 … layers-1`` of ``track`` on or off alike."""
        return cls(
            track=track,
            encodings=tuple(LayerEncoding(layer_index=i, enabled=enabled) for i in range(layers)),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PublisherHints(_Msg):
    """Server → publisher on ``publisher_hints``: ``{type, publisher: {id, hints: [hint…]}}``.

    ``id`` must be at least 1: the SDK ignores a message whose ``publisher.id`` is falsy.
    The SDK applies each hint to its local track of that SID and answers with a
    `PublisherHintsReply` of the same ``id``. Only offered when the client asked for the
    channel (VP8 simulcast with ``adaptiveSimulcast``, i.e. ``preferredVideoCodecs: "auto"``).
    """

    id: int
    hints: tuple[PublisherHint, ...]
    extra: Mapping[str, Any] = extra_field()

    TYPE: ClassVar[str] = "publisher_hints"

    def __post_init__(self) -> None:
        if self.id < 1:
            raise MspProtocolError(f"publisher_hints.publisher.id: must be >= 1, got {self.id}")

    @classmethod
    def _parse(cls, f: _Obj) -> Self:
        pub = f.req_obj("publisher")
        msg_id = pub.req_int("id", minimum=1)
        hints = pub.req_objs("hints", PublisherHint._parse)
        return cls(id=msg_id, hints=hints, extra=f.extra())

    def _members(self) -> JsonObject:
        return {"publisher": {"id": self.id, "hints": [h.to_json() for h in self.hints]}}


@dataclass(frozen=True, slots=True, kw_only=True)
class PublisherHintResult(_Part):
    """``{track, result}`` in a `PublisherHintsReply`; see `HintResult`."""

    track: str
    result: str
    extra: Mapping[str, Any] = extra_field()

    _WHERE: ClassVar[str] = "hint"

    @classmethod
    def _parse(cls, f: _Obj) -> Self:
        return cls(
            track=f.req_str("track", nonempty=True),
            result=f.req_str("result", nonempty=True),
            extra=f.extra(),
        )

    def _members(self) -> JsonObject:
        return {"track": self.track, "result": str(self.result)}


@dataclass(frozen=True, slots=True, kw_only=True)
class PublisherHintsReply(_Msg):
    """Publisher → server on ``publisher_hints``: ``{type, id, hints: [{track, result}]}``.

    Note the flat shape (no ``publisher`` wrapper), unlike `PublisherHints`.
    """

    id: int
    hints: tuple[PublisherHintResult, ...]
    extra: Mapping[str, Any] = extra_field()

    TYPE: ClassVar[str] = "publisher_hints"

    @classmethod
    def _parse(cls, f: _Obj) -> Self:
        msg_id = f.req_int("id", minimum=0)
        hints = f.req_objs("hints", PublisherHintResult._parse)
        return cls(id=msg_id, hints=hints, extra=f.extra())

    def _members(self) -> JsonObject:
        return {"id": self.id, "hints": [h.to_json() for h in self.hints]}


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientReset(_Msg):
    """Publisher → server on ``publisher_hints``: ``{type: "client_reset", track, id}``.

    Sent when a local video track's ``MediaStreamTrack`` was replaced: the SDK has reset
    the sender to its default encodings, so the server should send its hints again.
    ``id`` counts up from 1, separately from reply ids.
    """

    track: str
    id: int
    extra: Mapping[str, Any] = extra_field()

    TYPE: ClassVar[str] = "client_reset"

    @classmethod
    def _parse(cls, f: _Obj) -> Self:
        return cls(
            track=f.req_str("track", nonempty=True), id=f.req_int("id", minimum=0), extra=f.extra()
        )

    def _members(self) -> JsonObject:
        return {"track": self.track, "id": self.id}


# --------------------------------------------------------------------------------------------
# Dispatch

ClientMspMessage: TypeAlias = (
    Ready | TrackPriorityUpdate | RenderHintsRequest | PublisherHintsReply | ClientReset
)
"""What a client sends on these channels."""
ServerMspMessage: TypeAlias = TrackSwitchOff | RenderHintsReply | PublisherHints
"""What the server sends on these channels."""
MspMessage: TypeAlias = ClientMspMessage | ServerMspMessage

_MessageClass: TypeAlias = type[_Msg]

_BY_CHANNEL: Final[Mapping[tuple[str, str], Mapping[str, _MessageClass]]] = {
    (MspChannel.TRACK_PRIORITY, "client"): {"track_priority": TrackPriorityUpdate},
    (MspChannel.TRACK_PRIORITY, "server"): {},
    (MspChannel.TRACK_SWITCH_OFF, "client"): {},
    (MspChannel.TRACK_SWITCH_OFF, "server"): {"track_switch_off": TrackSwitchOff},
    (MspChannel.RENDER_HINTS, "client"): {"render_hints": RenderHintsRequest},
    (MspChannel.RENDER_HINTS, "server"): {"render_hints": RenderHintsReply},
    (MspChannel.PUBLISHER_HINTS, "client"): {
        "publisher_hints": PublisherHintsReply,
        "client_reset": ClientReset,
    },
    (MspChannel.PUBLISHER_HINTS, "server"): {"publisher_hints": PublisherHints},
}


def parse_msp(channel: str, sender: Sender, obj: object) -> MspMessage:
    """Parse one decoded JSON message received on an MSP data channel.

    Args:
        channel: The ``media_signaling`` key of the channel (``"track_priority"``,
            ``"track_switch_off"``, ``"render_hints"`` or ``"publisher_hints"``).
        sender: Who sent it: ``"client"`` (the server parses) or ``"server"``.
        obj: The decoded JSON value.

    Returns:
        The message.

    Raises:
        UnknownMspMessageTypeError: For a well-formed object whose ``type`` is not one this
            sender sends on this channel, or a channel this module does not model.
        MspProtocolError: For anything else malformed.
    """
    message_type = _Obj(obj, channel).req_str("type")
    if sender == "client" and message_type == Ready.TYPE:
        return Ready.parse(obj)
    table = _BY_CHANNEL.get((channel, sender))
    cls = None if table is None else table.get(message_type)
    if cls is None:
        raise UnknownMspMessageTypeError(
            f"{channel}: no {message_type!r} message from the {sender} on this channel",
            message_type,
        )
    return cast(MspMessage, cls.parse(obj))


# --------------------------------------------------------------------------------------------
# bandwidth_profile


@dataclass(frozen=True, slots=True, kw_only=True)
class VideoBandwidthProfile(_Part):
    """``bandwidth_profile.video``, built from ``bandwidthProfile.video`` by the SDK.

    Wire names differ from the SDK options: ``dominantSpeakerPriority`` →
    ``active_speaker_priority``, ``maxSubscriptionBitrate`` → ``max_subscription_bandwidth``
    (bits per second), ``maxTracks`` → ``max_tracks`` (deprecated), ``renderDimensions`` →
    ``render_dimensions`` (deprecated; per priority), ``trackSwitchOffMode`` →
    ``track_switch_off``. ``clientTrackSwitchOffControl`` and ``contentPreferencesMode`` are
    not sent: they only decide what render hints the SDK itself sends. Every member is
    optional; absent means the server default (mode grid, no bitrate cap, dominant speaker
    standard, switch-off predicted).
    """

    mode: BandwidthProfileMode | None = None
    max_subscription_bandwidth: int | float | None = None
    max_tracks: int | float | None = None
    active_speaker_priority: TrackPriority | None = None
    track_switch_off: TrackSwitchOffMode | None = None
    render_dimensions: Mapping[TrackPriority, RenderDimensions] | None = field(
        default=None, hash=False
    )
    extra: Mapping[str, Any] = extra_field()

    _WHERE: ClassVar[str] = "bandwidth_profile.video"

    @classmethod
    def _parse(cls, f: _Obj) -> Self:
        dims_obj = f.opt_obj("render_dimensions")
        dims: dict[TrackPriority, RenderDimensions] | None = None
        if dims_obj is not None:
            dims = {}
            for priority in TrackPriority:
                sub = dims_obj.opt_obj(priority.value)
                if sub is not None:
                    dims[priority] = RenderDimensions._parse(sub)
        return cls(
            mode=f.opt_enum("mode", BandwidthProfileMode),
            max_subscription_bandwidth=f.opt_number("max_subscription_bandwidth"),
            max_tracks=f.opt_number("max_tracks"),
            active_speaker_priority=f.opt_enum("active_speaker_priority", TrackPriority),
            track_switch_off=f.opt_enum("track_switch_off", TrackSwitchOffMode),
            render_dimensions=dims,
            extra=f.extra(),
        )

    def _members(self) -> JsonObject:
        out: JsonObject = {}
        emit(out, "mode", None if self.mode is None else self.mode.value)
        emit(out, "max_subscription_bandwidth", self.max_subscription_bandwidth)
        emit(out, "max_tracks", self.max_tracks)
        emit(out, "active_speaker_priority", _value(self.active_speaker_priority))
        emit(out, "track_switch_off", _value(self.track_switch_off))
        if self.render_dimensions is not None:
            out["render_dimensions"] = {
                p.value: d.to_json() for p, d in self.render_dimensions.items()
            }
        return out


def _value(member: StrEnum | None) -> str | None:
    return None if member is None else member.value


@dataclass(frozen=True, slots=True, kw_only=True)
class BandwidthProfile(_Part):
    """``bandwidth_profile`` of RSP ``connect`` and of a client ``update``.

    ``connect`` carries it when ``ConnectOptions.bandwidthProfile`` was given; ``update``
    when the application changed it (``LocalParticipant`` bandwidth profile revision).
    Pass `parlour.protocol.signaling.Connect.bandwidth_profile` to `parse`.
    """

    video: VideoBandwidthProfile | None = None
    extra: Mapping[str, Any] = extra_field()

    _WHERE: ClassVar[str] = "bandwidth_profile"

    @classmethod
    def _parse(cls, f: _Obj) -> Self:
        video = f.opt_obj("video")
        return cls(
            video=None if video is None else VideoBandwidthProfile._parse(video), extra=f.extra()
        )

    def _members(self) -> JsonObject:
        out: JsonObject = {}
        if self.video is not None:
            out["video"] = self.video.to_json()
        return out
