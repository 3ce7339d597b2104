"""Wire contract of the `twilio-video` JavaScript SDK's signaling protocol.

Two layers travel as JSON text frames over one WebSocket:

- **TCMP** (``lib/twilioconnection.js``): the framing: ``hello``/``welcome``, ``msg``,
  ``heartbeat``, ``bye``, plus the server-only ``busy`` and ``bad``.
- **RSP v2**, the Room Signaling Protocol (``lib/signaling/v2/*``), carried in
  ``hello.body`` and ``msg.body``. Client messages: ``ice``, ``connect``, ``update``,
  ``sync``, ``disconnect``. Server messages: ``iced``, ``connected``, ``update``, ``synced``,
  ``disconnected``, ``error``, ``warning``.

Every frame and message body is a frozen dataclass with a symmetric ``parse(obj)`` /
``to_json()`` pair; `parse_message` and `encode_message` handle whole text frames. Parsing
validates untrusted input and raises only `SignalingProtocolError` (a `ValueError`). Members
this module does not model are kept, untouched, in each object's ``extra`` dict, because real
clients send more than we read; ``to_json()`` writes them back.

``update`` has a different shape in each direction, so the parsers take a ``sender``
(``"client"`` or ``"server"``): the server parses what clients send, the Python SDK what the
server sends.

This module is pure: stdlib only, no I/O. Field names follow the wire (snake_case already,
except TCMP's ``negotiatedTimeout``/``retryAfter``/``keepAlive`` and the W3C ICE candidate
members). Reference: ``shared/reference/signaling-protocol.md`` §2–3 and §5, and the real
SDK transcript in ``shared/reference/transcripts/``; where they differ, the transcript wins.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import (
    Any,
    ClassVar,
    Final,
    Generic,
    Literal,
    Self,
    TypeAlias,
    TypeVar,
    cast,
    overload,
)

from parlour.protocol import wire
from parlour.protocol.wire import JsonObject, Reader, Wire, emit, extra_field

__all__ = [
    "ICE_VERSION",
    "RSP_VERSION",
    "TCMP_VERSION",
    "Bad",
    "Busy",
    "Bye",
    "ClientFrame",
    "ClientRspMessage",
    "ClientUpdate",
    "Connect",
    "Connected",
    "ConnectedOptions",
    "Disconnect",
    "Disconnected",
    "ErrorInfo",
    "ErrorMessage",
    "Heartbeat",
    "Hello",
    "Ice",
    "IceCandidate",
    "IceServer",
    "IceState",
    "Iced",
    "JsonObject",
    "LocalParticipantState",
    "LocalTrackState",
    "MediaSignalingChannel",
    "MediaSignalingRequest",
    "MediaSignalingTransport",
    "MediaStates",
    "Msg",
    "MspChannel",
    "ParticipantInfo",
    "ParticipantState",
    "PeerConnectionState",
    "Published",
    "PublishedTrack",
    "PublishedTrackState",
    "Publisher",
    "Recording",
    "RemoteParticipantState",
    "RemoteTrackState",
    "RspMessage",
    "SdpType",
    "Sender",
    "ServerFrame",
    "ServerRspMessage",
    "ServerUpdate",
    "SessionDescription",
    "SignalingProtocolError",
    "SubscribeRule",
    "Subscribed",
    "SubscribedTrack",
    "Subscriptions",
    "Sync",
    "Synced",
    "TcmpFrame",
    "TrackKind",
    "TrackPriority",
    "UnknownMessageTypeError",
    "WarningMessage",
    "Welcome",
    "encode_message",
    "parse_frame",
    "parse_message",
    "parse_rsp",
]

TCMP_VERSION: Final = 2
"""``hello.version``: TCMP has been version 2 throughout twilio-video 2.x."""
RSP_VERSION: Final = 2
"""``version`` of every RSP message except ``ice``/``iced``."""
ICE_VERSION: Final = 1
"""``version`` of ``ice``/``iced``. Preflight's ``ice`` leaves it out (an SDK bug)."""

_T = TypeVar("_T")

Sender: TypeAlias = Literal["client", "server"]
"""Which side sent a frame; picks the ``update`` shape and the allowed types."""


# --------------------------------------------------------------------------------------------
# Errors


class SignalingProtocolError(ValueError):
    """A frame or message that does not follow the protocol.

    The only exception the parsers raise for bad input. The message names the offending
    member by path, e.g. ``connect.participant.tracks[1].kind: expected one of …``.
    """


class UnknownMessageTypeError(SignalingProtocolError):
    """A well-formed frame or message whose ``type`` this side does not handle.

    The SDK silently ignores unknown RSP types from the server (``default: // Do nothing``
    in ``twilioconnectiontransport.js``), so a client may choose to skip these rather than
    fail. ``message_type`` is the ``type`` member as received (a string).
    """

    def __init__(self, message: str, message_type: str) -> None:
        super().__init__(message)
        self.message_type = message_type


# --------------------------------------------------------------------------------------------
# Enumerations


class TrackKind(StrEnum):
    """``tracks[].kind``."""

    AUDIO = "audio"
    VIDEO = "video"
    DATA = "data"


class TrackPriority(StrEnum):
    """``tracks[].priority``: the publisher's priority for a track."""

    LOW = "low"
    STANDARD = "standard"
    HIGH = "high"


class ParticipantState(StrEnum):
    """``participants[].state`` of a remote participant."""

    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    DISCONNECTED = "disconnected"


class SdpType(StrEnum):
    """``peer_connections[].description.type``.

    Clients send ``offer``, ``answer`` or ``close``; the server may also send ``pranswer``
    and ``create-offer`` (ask the client to offer at ``revision + 1``).
    """

    OFFER = "offer"
    ANSWER = "answer"
    PRANSWER = "pranswer"
    CREATE_OFFER = "create-offer"
    CLOSE = "close"


class PublishedTrackState(StrEnum):
    """``published.tracks[].state``: ``ready`` resolves ``publishTrack()``, ``failed`` rejects
    it; anything else (``created``) means still pending."""

    CREATED = "created"
    READY = "ready"
    FAILED = "failed"


class MspChannel(StrEnum):
    """Known ``media_signaling`` keys (Media Signaling Protocol data channels, all optional).

    Keys are kept as plain strings on the wire objects, so unknown channels survive parsing.
    """

    ACTIVE_SPEAKER = "active_speaker"
    NETWORK_QUALITY = "network_quality"
    TRACK_PRIORITY = "track_priority"
    TRACK_SWITCH_OFF = "track_switch_off"
    RENDER_HINTS = "render_hints"
    PUBLISHER_HINTS = "publisher_hints"
    EXTENSION_TRANSCRIPTIONS = "extension_transcriptions"


# --------------------------------------------------------------------------------------------
# Reading untrusted JSON (the machinery is `parlour.protocol.wire`'s)


class _Fields(Reader):
    """`Reader` of RSP and TCMP: raises `SignalingProtocolError`, knows who sent the frame."""

    __slots__ = ("sender",)

    error: ClassVar[type[ValueError]] = SignalingProtocolError

    def __init__(self, value: object, where: str, sender: Sender = "client") -> None:
        super().__init__(value, where)
        self.sender: Sender = sender
        """Who sent the frame; only ``msg`` reads it, to pick the body's shape."""

    def version(self) -> int | None:
        """The optional ``version`` member."""
        return self.opt_int("version")


def _check(ok: bool, where: str, message: str) -> None:
    if not ok:
        raise SignalingProtocolError(f"{where}: {message}")


def _check_revision(revision: int, where: str) -> None:
    _check(revision >= 0, f"{where}.revision", f"must not be negative, got {revision}")


def _json_of(value: Any) -> Any:
    """The JSON form of a wire object, or of a tuple or mapping of wire objects or strings.

    Deliberately shallow below that: pass-through JSON (``extra``, ``bandwidth_profile``)
    is copied, not walked, so that deeply nested input cannot exhaust the stack here.
    """
    if isinstance(value, Wire):
        return value.to_json()
    if isinstance(value, tuple):
        return [_json_of(item) for item in value]
    if isinstance(value, Mapping):
        return {k: v.to_json() if isinstance(v, Wire) else v for k, v in value.items()}
    return value


# --------------------------------------------------------------------------------------------
# Base


class _Wire(Wire[_Fields]):
    """Base of every wire object here; `parse` raises only `SignalingProtocolError`."""

    __slots__ = ()

    _READER: ClassVar[type[Reader]] = _Fields


class _Message(_Wire):
    """A TCMP frame or RSP message: a wire object with a ``type`` member (``TYPE``)."""

    __slots__ = ()


# --------------------------------------------------------------------------------------------
# Shared parts


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorInfo(_Wire):
    """``{code, message}`` in ``published.tracks[].error`` and ``subscribed.tracks[].error``."""

    code: int
    message: str
    extra: Mapping[str, Any] = extra_field()

    _WHERE: ClassVar[str] = "error"

    @classmethod
    def _parse(cls, f: _Fields) -> Self:
        code = f.req_int("code")
        return cls(code=code, message=_message_for(code, f.opt_str("message")), extra=f.extra())

    def _members(self) -> JsonObject:
        return {"code": self.code, "message": self.message}


def _message_for(code: int, message: str | None) -> str:
    """The message as sent; the SDK shows its own text for codes it knows anyway."""
    return message if message is not None else ""


@dataclass(frozen=True, slots=True, kw_only=True)
class LocalTrackState(_Wire):
    """A track the client publishes, as it describes it (``participant.tracks[]``).

    ``id`` is the track's identity on the wire: the appdata of the ``a=msid`` line of its
    m-section, or the label of its data channel. ``name`` usually differs from ``id``.
    """

    id: str
    kind: TrackKind
    name: str
    enabled: bool
    priority: TrackPriority
    audio_processor: str | None = None
    """``"krisp"``/``"rnnoise"`` when client-side noise cancellation is on."""
    extra: Mapping[str, Any] = extra_field()

    _WHERE: ClassVar[str] = "track"

    def __post_init__(self) -> None:
        _check(bool(self.id), f"{self._WHERE}.id", "must not be empty")

    @classmethod
    def _parse(cls, f: _Fields) -> Self:
        return cls(
            id=f.req_str("id", nonempty=True),
            kind=f.req_enum("kind", TrackKind),
            name=f.req_str("name"),
            enabled=f.req_bool("enabled"),
            priority=f.req_enum("priority", TrackPriority),
            audio_processor=f.opt_str("audio_processor"),
            extra=f.extra(),
        )

    def _members(self) -> JsonObject:
        out: JsonObject = {
            "enabled": self.enabled,
            "id": self.id,
            "kind": self.kind.value,
            "name": self.name,
            "priority": self.priority.value,
        }
        emit(out, "audio_processor", self.audio_processor)
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class LocalParticipantState(_Wire):
    """The client's own state, sent in every ``connect``/``update``/``sync``.

    ``revision`` starts at 1 and grows on every track add/remove/enable/priority change.
    """

    revision: int
    tracks: tuple[LocalTrackState, ...] = ()
    media_warnings: tuple[str, ...] | None = None
    """``["recordings"]`` when the app asked for ``recording-media-lost`` warnings."""
    extra: Mapping[str, Any] = extra_field()

    _WHERE: ClassVar[str] = "participant"

    def __post_init__(self) -> None:
        _check_revision(self.revision, self._WHERE)

    @classmethod
    def _parse(cls, f: _Fields) -> Self:
        return cls(
            revision=f.req_int("revision"),
            tracks=f.req_objs("tracks", LocalTrackState._parse),
            media_warnings=f.opt_strs("media_warnings"),
            extra=f.extra(),
        )

    def _members(self) -> JsonObject:
        out: JsonObject = {"revision": self.revision, "tracks": _json_of(self.tracks)}
        emit(out, "media_warnings", _json_of(self.media_warnings))
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoteTrackState(_Wire):
    """A track of another participant, as the server announces it (``participants[].tracks[]``)."""

    sid: str
    kind: TrackKind
    name: str
    enabled: bool = True
    priority: TrackPriority = TrackPriority.STANDARD
    extra: Mapping[str, Any] = extra_field()

    _WHERE: ClassVar[str] = "track"

    def __post_init__(self) -> None:
        _check(bool(self.sid), f"{self._WHERE}.sid", "must not be empty")

    @classmethod
    def _parse(cls, f: _Fields) -> Self:
        return cls(
            sid=f.req_str("sid", nonempty=True),
            kind=f.req_enum("kind", TrackKind),
            name=f.req_str("name"),
            enabled=f.req_bool("enabled"),
            priority=f.req_enum("priority", TrackPriority),
            extra=f.extra(),
        )

    def _members(self) -> JsonObject:
        return {
            "enabled": self.enabled,
            "kind": self.kind.value,
            "name": self.name,
            "priority": self.priority.value,
            "sid": self.sid,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoteParticipantState(_Wire):
    """One entry of ``participants``: another participant's full state.

    The client applies an entry only if ``revision`` is above the last one it applied for
    that SID, so bump it on every change. Leaving is ``state="disconnected"`` with a higher
    revision; omitting the entry from an ``update`` does not remove the participant.
    ``tracks`` is the full list: tracks missing from it are unpublished.
    """

    sid: str
    identity: str
    state: ParticipantState
    revision: int
    tracks: tuple[RemoteTrackState, ...] = ()
    extra: Mapping[str, Any] = extra_field()

    _WHERE: ClassVar[str] = "participants[]"

    def __post_init__(self) -> None:
        _check(bool(self.sid), f"{self._WHERE}.sid", "must not be empty")
        _check_revision(self.revision, self._WHERE)

    @classmethod
    def _parse(cls, f: _Fields) -> Self:
        return cls(
            sid=f.req_str("sid", nonempty=True),
            identity=f.req_str("identity"),
            state=f.req_enum("state", ParticipantState),
            revision=f.req_int("revision"),
            tracks=f.req_objs("tracks", RemoteTrackState._parse),
            extra=f.extra(),
        )

    def _members(self) -> JsonObject:
        return {
            "identity": self.identity,
            "revision": self.revision,
            "sid": self.sid,
            "state": self.state.value,
            "tracks": _json_of(self.tracks),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ParticipantInfo(_Wire):
    """``connected.participant``: how the client learns its own SID and identity.

    Mandatory in ``connected``: without it ``connect()`` rejects with 53003.
    """

    sid: str
    identity: str
    extra: Mapping[str, Any] = extra_field()

    _WHERE: ClassVar[str] = "participant"

    def __post_init__(self) -> None:
        _check(bool(self.sid), f"{self._WHERE}.sid", "must not be empty")

    @classmethod
    def _parse(cls, f: _Fields) -> Self:
        return cls(
            sid=f.req_str("sid", nonempty=True), identity=f.req_str("identity"), extra=f.extra()
        )

    def _members(self) -> JsonObject:
        return {"identity": self.identity, "sid": self.sid}


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionDescription(_Wire):
    """``peer_connections[].description``: an SDP with an explicit negotiation revision.

    An answer echoes the revision of the offer it answers; the next offer from either side
    uses the last revision + 1. ``offer``/``answer``/``pranswer`` carry ``sdp``;
    ``create-offer`` and ``close`` do not.
    """

    type: SdpType
    revision: int
    sdp: str | None = None
    extra: Mapping[str, Any] = extra_field()

    _WHERE: ClassVar[str] = "description"

    def __post_init__(self) -> None:
        _check_revision(self.revision, self._WHERE)
        needs_sdp = self.type in (SdpType.OFFER, SdpType.ANSWER, SdpType.PRANSWER)
        _check(
            self.sdp is not None or not needs_sdp,
            f"{self._WHERE}.sdp",
            f"required for type {self.type.value!r}",
        )

    @classmethod
    def _parse(cls, f: _Fields) -> Self:
        return cls(
            type=f.req_enum("type", SdpType),
            revision=f.req_int("revision"),
            sdp=f.opt_str("sdp"),
            extra=f.extra(),
        )

    def _members(self) -> JsonObject:
        out: JsonObject = {"type": self.type.value, "revision": self.revision}
        emit(out, "sdp", self.sdp)
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class IceCandidate(_Wire):
    """One trickled ICE candidate, as W3C ``RTCIceCandidate.toJSON()`` writes it.

    The members keep their W3C camelCase names on the wire (``sdpMid``, ``sdpMLineIndex``,
    ``usernameFragment``); all four are always written, null when unknown.
    """

    candidate: str
    sdp_mid: str | None = None
    sdp_m_line_index: int | None = None
    username_fragment: str | None = None
    extra: Mapping[str, Any] = extra_field()

    _WHERE: ClassVar[str] = "candidate"

    @classmethod
    def _parse(cls, f: _Fields) -> Self:
        return cls(
            candidate=f.req_str("candidate"),
            sdp_mid=f.opt_str("sdpMid"),
            sdp_m_line_index=f.opt_int("sdpMLineIndex"),
            username_fragment=f.opt_str("usernameFragment"),
            extra=f.extra(),
        )

    def _members(self) -> JsonObject:
        return {
            "candidate": self.candidate,
            "sdpMid": self.sdp_mid,
            "sdpMLineIndex": self.sdp_m_line_index,
            "usernameFragment": self.username_fragment,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class IceState(_Wire):
    """``peer_connections[].ice``: trickled candidates, in both directions.

    ``candidates`` is cumulative per ``ufrag`` (a receiver applies only the entries beyond
    those it has seen) and ``revision`` grows with each message. ``complete`` marks the end
    of gathering; it is written only when true. A server ufrag must match
    ``[A-Za-z0-9+/]+``, the pattern the SDK reads from the SDP.
    """

    revision: int
    candidates: tuple[IceCandidate, ...] = ()
    ufrag: str | None = None
    complete: bool = False
    extra: Mapping[str, Any] = extra_field()

    _WHERE: ClassVar[str] = "ice"

    def __post_init__(self) -> None:
        _check_revision(self.revision, self._WHERE)

    @classmethod
    def _parse(cls, f: _Fields) -> Self:
        # The SDK itself tolerates a missing `candidates` ("The Server sometimes does not set
        # the candidates property", icebox.js), so we do too.
        candidates = f.opt_objs("candidates", IceCandidate._parse)
        return cls(
            revision=f.req_int("revision"),
            candidates=candidates or (),
            ufrag=f.opt_str("ufrag"),
            complete=bool(f.opt_bool("complete")),
            extra=f.extra(),
        )

    def _members(self) -> JsonObject:
        out: JsonObject = {"candidates": _json_of(self.candidates), "revision": self.revision}
        emit(out, "ufrag", self.ufrag)
        if self.complete:
            out["complete"] = True
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerConnectionState(_Wire):
    """One entry of ``peer_connections``: a description, trickled ICE, or both, for one PC.

    ``id`` is chosen by the client for its first PC (a UUID); an id the client does not
    know makes it open a new PC.
    """

    id: str
    description: SessionDescription | None = None
    ice: IceState | None = None
    extra: Mapping[str, Any] = extra_field()

    _WHERE: ClassVar[str] = "peer_connections[]"

    def __post_init__(self) -> None:
        _check(bool(self.id), f"{self._WHERE}.id", "must not be empty")

    @classmethod
    def _parse(cls, f: _Fields) -> Self:
        description = f.opt_obj("description")
        ice = f.opt_obj("ice")
        return cls(
            id=f.req_str("id", nonempty=True),
            description=None if description is None else SessionDescription._parse(description),
            ice=None if ice is None else IceState._parse(ice),
            extra=f.extra(),
        )

    def _members(self) -> JsonObject:
        out: JsonObject = {"id": self.id}
        emit(out, "description", _json_of(self.description))
        emit(out, "ice", _json_of(self.ice))
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishedTrack(_Wire):
    """``published.tracks[]``: the server's answer to one of the client's tracks, by ``id``."""

    id: str
    state: PublishedTrackState
    sid: str | None = None
    error: ErrorInfo | None = None
    extra: Mapping[str, Any] = extra_field()

    _WHERE: ClassVar[str] = "published.tracks[]"

    def __post_init__(self) -> None:
        _check(bool(self.id), f"{self._WHERE}.id", "must not be empty")
        _check(
            self.state is not PublishedTrackState.READY or bool(self.sid),
            f"{self._WHERE}.sid",
            "required when state is 'ready'",
        )
        _check(
            self.state is not PublishedTrackState.FAILED or self.error is not None,
            f"{self._WHERE}.error",
            "required when state is 'failed'",
        )

    @classmethod
    def _parse(cls, f: _Fields) -> Self:
        error = f.opt_obj("error")
        return cls(
            id=f.req_str("id", nonempty=True),
            state=f.req_enum("state", PublishedTrackState),
            sid=f.opt_str("sid"),
            error=None if error is None else ErrorInfo._parse(error),
            extra=f.extra(),
        )

    def _members(self) -> JsonObject:
        out: JsonObject = {"id": self.id, "state": self.state.value}
        emit(out, "sid", self.sid)
        emit(out, "error", _json_of(self.error))
        return out


_E = TypeVar("_E", bound=_Wire)


@dataclass(frozen=True, slots=True, kw_only=True)
class _TrackList(_Wire, Generic[_E]):
    """``published``/``subscribed``: a list of track entries whose ``revision`` must grow."""

    revision: int
    tracks: tuple[_E, ...] = ()
    extra: Mapping[str, Any] = extra_field()

    def __post_init__(self) -> None:
        _check_revision(self.revision, self._WHERE)

    @classmethod
    def _track(cls, f: _Fields) -> _E:
        """Parse one entry of ``tracks``."""
        raise NotImplementedError

    @classmethod
    def _parse(cls, f: _Fields) -> Self:
        return cls(
            revision=f.req_int("revision"),
            tracks=f.req_objs("tracks", cls._track),
            extra=f.extra(),
        )

    def _members(self) -> JsonObject:
        return {"revision": self.revision, "tracks": _json_of(self.tracks)}


@dataclass(frozen=True, slots=True, kw_only=True)
class Published(_TrackList[PublishedTrack]):
    """``published``: publish acknowledgements. ``revision`` must grow with each change."""

    _WHERE: ClassVar[str] = "published"

    @classmethod
    def _track(cls, f: _Fields) -> PublishedTrack:
        return PublishedTrack._parse(f)


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscribedTrack(_Wire):
    """``subscribed.tracks[]``: maps a remote Track SID to its on-the-wire ``id``.

    ``id`` is the msid appdata of the m-section (or the data channel label) the server sends
    the track on. An entry with ``error`` and no ``id`` reports a failed subscription.
    """

    sid: str
    id: str | None = None
    error: ErrorInfo | None = None
    extra: Mapping[str, Any] = extra_field()

    _WHERE: ClassVar[str] = "subscribed.tracks[]"

    def __post_init__(self) -> None:
        _check(bool(self.sid), f"{self._WHERE}.sid", "must not be empty")

    @classmethod
    def _parse(cls, f: _Fields) -> Self:
        error = f.opt_obj("error")
        return cls(
            sid=f.req_str("sid", nonempty=True),
            id=f.opt_str("id"),
            error=None if error is None else ErrorInfo._parse(error),
            extra=f.extra(),
        )

    def _members(self) -> JsonObject:
        out: JsonObject = {"sid": self.sid}
        emit(out, "id", self.id)
        emit(out, "error", _json_of(self.error))
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Subscribed(_TrackList[SubscribedTrack]):
    """``subscribed``: the authoritative list of the client's subscriptions.

    SIDs missing from a newer list become unsubscribed; ``revision`` must grow.
    """

    _WHERE: ClassVar[str] = "subscribed"

    @classmethod
    def _track(cls, f: _Fields) -> SubscribedTrack:
        return SubscribedTrack._parse(f)


@dataclass(frozen=True, slots=True, kw_only=True)
class Recording(_Wire):
    """``recording``: drives ``room.isRecording``. Ignored if ``revision`` went down."""

    is_recording: bool
    revision: int
    extra: Mapping[str, Any] = extra_field()

    _WHERE: ClassVar[str] = "recording"

    def __post_init__(self) -> None:
        _check_revision(self.revision, self._WHERE)

    @classmethod
    def _parse(cls, f: _Fields) -> Self:
        return cls(
            is_recording=f.req_bool("is_recording"),
            revision=f.req_int("revision"),
            extra=f.extra(),
        )

    def _members(self) -> JsonObject:
        return {"is_recording": self.is_recording, "revision": self.revision}


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaSignalingTransport(_Wire):
    """How an MSP channel travels: ``{"type": "data-channel", "label": …}``.

    The client's request has no label; the server's grant names the data channel it opens.
    """

    type: str = "data-channel"
    label: str | None = None
    extra: Mapping[str, Any] = extra_field()

    _WHERE: ClassVar[str] = "transport"

    @classmethod
    def _parse(cls, f: _Fields) -> Self:
        return cls(type=f.req_str("type"), label=f.opt_str("label"), extra=f.extra())

    def _members(self) -> JsonObject:
        out: JsonObject = {"type": self.type}
        emit(out, "label", self.label)
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaSignalingRequest(_Wire):
    """Client side of ``connect.media_signaling.<channel>``: ``{"transports": [...]}``."""

    transports: tuple[MediaSignalingTransport, ...] = (MediaSignalingTransport(),)
    extra: Mapping[str, Any] = extra_field()

    _WHERE: ClassVar[str] = "media_signaling"

    @classmethod
    def _parse(cls, f: _Fields) -> Self:
        return cls(
            transports=f.req_objs("transports", MediaSignalingTransport._parse),
            extra=f.extra(),
        )

    def _members(self) -> JsonObject:
        return {"transports": _json_of(self.transports)}


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaSignalingChannel(_Wire):
    """Server side of ``media_signaling.<channel>``: ``{"transport": {type, label}}``.

    The client then waits for an incoming data channel with that label.
    """

    transport: MediaSignalingTransport | None = None
    extra: Mapping[str, Any] = extra_field()

    _WHERE: ClassVar[str] = "media_signaling"

    @classmethod
    def _parse(cls, f: _Fields) -> Self:
        transport = f.opt_obj("transport")
        return cls(
            transport=None if transport is None else MediaSignalingTransport._parse(transport),
            extra=f.extra(),
        )

    def _members(self) -> JsonObject:
        out: JsonObject = {}
        emit(out, "transport", _json_of(self.transport))
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscribeRule(_Wire):
    """One ``subscribe.rules[]`` entry. The SDK only sends ``{type, all: true}``."""

    type: Literal["include", "exclude"]
    all: bool | None = None
    extra: Mapping[str, Any] = extra_field()

    _WHERE: ClassVar[str] = "subscribe.rules[]"

    def __post_init__(self) -> None:
        _check(
            self.type in ("include", "exclude"),
            f"{self._WHERE}.type",
            f"expected 'include' or 'exclude', got {self.type!r}",
        )

    @classmethod
    def _parse(cls, f: _Fields) -> Self:
        rule_type = f.req_str("type")
        if rule_type not in ("include", "exclude"):
            raise SignalingProtocolError(
                f"{f.where}.type: expected 'include' or 'exclude', got {rule_type!r}"
            )
        return cls(
            type=cast(Literal["include", "exclude"], rule_type),
            all=f.opt_bool("all"),
            extra=f.extra(),
        )

    def _members(self) -> JsonObject:
        out: JsonObject = {"type": self.type}
        emit(out, "all", self.all)
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Subscriptions(_Wire):
    """``connect.subscribe``: the client's initial subscribe rules.

    Always ``include all`` or (``automaticSubscription: false``) ``exclude all``.
    """

    rules: tuple[SubscribeRule, ...]
    revision: int = 1
    extra: Mapping[str, Any] = extra_field()

    _WHERE: ClassVar[str] = "subscribe"

    def __post_init__(self) -> None:
        _check_revision(self.revision, self._WHERE)

    @classmethod
    def _parse(cls, f: _Fields) -> Self:
        return cls(
            rules=f.req_objs("rules", SubscribeRule._parse),
            revision=f.req_int("revision"),
            extra=f.extra(),
        )

    def _members(self) -> JsonObject:
        return {"rules": _json_of(self.rules), "revision": self.revision}


@dataclass(frozen=True, slots=True, kw_only=True)
class Publisher(_Wire):
    """``connect.publisher``: the SDK's name, version and user agent (informational)."""

    name: str | None = None
    sdk_version: str | None = None
    user_agent: str | None = None
    extra: Mapping[str, Any] = extra_field()

    _WHERE: ClassVar[str] = "publisher"

    @classmethod
    def _parse(cls, f: _Fields) -> Self:
        return cls(
            name=f.opt_str("name"),
            sdk_version=f.opt_str("sdk_version"),
            user_agent=f.opt_str("user_agent"),
            extra=f.extra(),
        )

    def _members(self) -> JsonObject:
        out: JsonObject = {}
        emit(out, "name", self.name)
        emit(out, "sdk_version", self.sdk_version)
        emit(out, "user_agent", self.user_agent)
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class IceServer(_Wire):
    """A W3C ``RTCIceServer`` dict, as ``iced.ice_servers[]`` carries it."""

    urls: str | tuple[str, ...]
    username: str | None = None
    credential: str | None = None
    extra: Mapping[str, Any] = extra_field()

    _WHERE: ClassVar[str] = "ice_servers[]"

    def __post_init__(self) -> None:
        _check(bool(self.urls), f"{self._WHERE}.urls", "must not be empty")

    @classmethod
    def _parse(cls, f: _Fields) -> Self:
        urls: str | tuple[str, ...]
        if isinstance(f._obj.get("urls"), str):
            urls = f.req_str("urls")
        else:
            urls = f.req_strs("urls")
        return cls(
            urls=urls,
            username=f.opt_str("username"),
            credential=f.opt_str("credential"),
            extra=f.extra(),
        )

    def _members(self) -> JsonObject:
        out: JsonObject = {"urls": self.urls if isinstance(self.urls, str) else list(self.urls)}
        emit(out, "username", self.username)
        emit(out, "credential", self.credential)
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectedOptions(_Wire):
    """``connected.options``. Mandatory: the SDK reads ``options.session_timeout`` unguarded.

    ``session_timeout`` (seconds) bounds signaling resumption, ICE restarts and the Room's
    ``reconnecting`` state. Real Twilio also sent ``signaling_edge`` (kept in ``extra``).
    """

    session_timeout: float
    media_region: str | None = None
    signaling_region: str | None = None
    audio_processors: tuple[str, ...] | None = None
    """Allowed client-side noise cancellation vendors; send ``("krisp",)`` to keep it on."""
    extra: Mapping[str, Any] = extra_field()

    _WHERE: ClassVar[str] = "options"

    def __post_init__(self) -> None:
        _check(
            wire.is_finite_number(self.session_timeout) and self.session_timeout >= 0,
            f"{self._WHERE}.session_timeout",
            f"must be a finite number >= 0, got {self.session_timeout!r}",
        )

    @classmethod
    def _parse(cls, f: _Fields) -> Self:
        return cls(
            session_timeout=f.req_number("session_timeout"),
            media_region=f.opt_str("media_region"),
            signaling_region=f.opt_str("signaling_region"),
            audio_processors=f.opt_strs("audio_processors"),
            extra=f.extra(),
        )

    def _members(self) -> JsonObject:
        out: JsonObject = {"session_timeout": self.session_timeout}
        emit(out, "media_region", self.media_region)
        emit(out, "signaling_region", self.signaling_region)
        emit(out, "audio_processors", _json_of(self.audio_processors))
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaStates(_Wire):
    """``warning.states``: per-track media warnings, e.g. ``{"MT…": {"recordings": "NO_MEDIA"}}``.

    ``"NO_MEDIA"`` makes the publication emit ``recording-media-lost``; ``"OK"`` clears it.
    """

    revision: int
    tracks: Mapping[str, Mapping[str, str]] = field(default_factory=dict, hash=False)
    extra: Mapping[str, Any] = extra_field()

    _WHERE: ClassVar[str] = "states"

    def __post_init__(self) -> None:
        _check_revision(self.revision, self._WHERE)

    @classmethod
    def _parse(cls, f: _Fields) -> Self:
        revision = f.req_int("revision")
        tracks_fields = f.req_obj("tracks")
        tracks: dict[str, dict[str, str]] = {}
        for sid, states in tracks_fields._obj.items():
            where = f"{tracks_fields.where}.{sid}"
            entry = _Fields(states, where)
            tracks[sid] = {name: entry.req_str(name) for name in list(entry._obj)}
        return cls(revision=revision, tracks=tracks, extra=f.extra())

    def _members(self) -> JsonObject:
        return {
            "revision": self.revision,
            "tracks": {sid: dict(states) for sid, states in self.tracks.items()},
        }


# --------------------------------------------------------------------------------------------
# RSP messages: client -> server


@dataclass(frozen=True, slots=True, kw_only=True)
class Ice(_Message):
    """``ice``: ask for ICE servers; the usual ``hello.body`` on first connect.

    Answer with `Iced`, or with an `ErrorMessage` (20101…) if the token is bad. Preflight
    sends ``preflight: true`` and no ``version``.
    """

    token: str
    edge: str | None = "roaming"
    """``"roaming"``: the same edge as signaling."""
    preflight: bool | None = None
    version: int | None = ICE_VERSION
    extra: Mapping[str, Any] = extra_field()

    TYPE: ClassVar[str] = "ice"

    @classmethod
    def _parse(cls, f: _Fields) -> Self:
        return cls(
            token=f.req_str("token"),
            edge=f.opt_str("edge"),
            preflight=f.opt_bool("preflight"),
            version=f.version(),
            extra=f.extra(),
        )

    def _members(self) -> JsonObject:
        out: JsonObject = {"token": self.token}
        emit(out, "edge", self.edge)
        emit(out, "preflight", self.preflight)
        emit(out, "version", self.version)
        return out


def _peer_connections(f: _Fields) -> tuple[PeerConnectionState, ...]:
    return f.opt_objs("peer_connections", PeerConnectionState._parse) or ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Connect(_Message):
    """``connect``: join a Room, with the client's tracks and first SDP offer.

    ``name`` is null when the app gave none (take the room from the token's grant); it is
    always written, like the SDK does. ``bandwidth_profile`` is passed through unmodelled.
    """

    token: str
    name: str | None
    participant: LocalParticipantState
    peer_connections: tuple[PeerConnectionState, ...] = ()
    ice_servers: str | None = None
    """``"acquire"`` or ``"overrode"`` (informational)."""
    publisher: Publisher | None = None
    media_signaling: Mapping[str, MediaSignalingRequest] | None = field(default=None, hash=False)
    subscribe: Subscriptions | None = None
    format: str | None = None
    """``"unified"`` (always, since 2.35.0)."""
    bandwidth_profile: Mapping[str, Any] | None = field(default=None, hash=False)
    version: int | None = RSP_VERSION
    extra: Mapping[str, Any] = extra_field()

    TYPE: ClassVar[str] = "connect"

    @classmethod
    def _parse(cls, f: _Fields) -> Self:
        publisher = f.opt_obj("publisher")
        subscribe = f.opt_obj("subscribe")
        return cls(
            token=f.req_str("token"),
            name=f.opt_str("name"),
            participant=LocalParticipantState._parse(f.req_obj("participant")),
            peer_connections=_peer_connections(f),
            ice_servers=f.opt_str("ice_servers"),
            publisher=None if publisher is None else Publisher._parse(publisher),
            media_signaling=f.opt_obj_map("media_signaling", MediaSignalingRequest._parse),
            subscribe=None if subscribe is None else Subscriptions._parse(subscribe),
            format=f.opt_str("format"),
            bandwidth_profile=f.opt_raw_obj("bandwidth_profile"),
            version=f.version(),
            extra=f.extra(),
        )

    def _members(self) -> JsonObject:
        out: JsonObject = {
            "token": self.token,
            "name": self.name,
            "participant": self.participant.to_json(),
            "peer_connections": _json_of(self.peer_connections),
        }
        emit(out, "ice_servers", self.ice_servers)
        emit(out, "publisher", _json_of(self.publisher))
        emit(out, "media_signaling", _json_of(self.media_signaling))
        emit(out, "subscribe", _json_of(self.subscribe))
        emit(out, "format", self.format)
        emit(out, "bandwidth_profile", _json_of(self.bandwidth_profile))
        emit(out, "version", self.version)
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientUpdate(_Message):
    """``update`` from the client: its full participant state and/or new PC states.

    ``peer_connections`` is None when absent (nothing new), as opposed to empty.
    """

    session: str
    participant: LocalParticipantState | None = None
    peer_connections: tuple[PeerConnectionState, ...] | None = None
    bandwidth_profile: Mapping[str, Any] | None = field(default=None, hash=False)
    version: int | None = RSP_VERSION
    extra: Mapping[str, Any] = extra_field()

    TYPE: ClassVar[str] = "update"

    @classmethod
    def _parse(cls, f: _Fields) -> Self:
        participant = f.opt_obj("participant")
        return cls(
            session=f.req_str("session"),
            participant=None if participant is None else LocalParticipantState._parse(participant),
            peer_connections=f.opt_objs("peer_connections", PeerConnectionState._parse),
            bandwidth_profile=f.opt_raw_obj("bandwidth_profile"),
            version=f.version(),
            extra=f.extra(),
        )

    def _members(self) -> JsonObject:
        out: JsonObject = {"session": self.session}
        emit(out, "participant", _json_of(self.participant))
        emit(out, "peer_connections", _json_of(self.peer_connections))
        emit(out, "bandwidth_profile", _json_of(self.bandwidth_profile))
        emit(out, "version", self.version)
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Sync(_Message):
    """``sync``: resume a session on a new WebSocket (the ``hello.body`` after a drop).

    Carries the latest local description per PC; answer with `Synced`, or an
    `ErrorMessage`/`Disconnected` if the session is unknown or expired.
    """

    session: str
    token: str
    participant: LocalParticipantState
    name: str | None = None
    peer_connections: tuple[PeerConnectionState, ...] = ()
    version: int | None = RSP_VERSION
    extra: Mapping[str, Any] = extra_field()

    TYPE: ClassVar[str] = "sync"

    @classmethod
    def _parse(cls, f: _Fields) -> Self:
        return cls(
            session=f.req_str("session"),
            token=f.req_str("token"),
            participant=LocalParticipantState._parse(f.req_obj("participant")),
            name=f.opt_str("name"),
            peer_connections=_peer_connections(f),
            version=f.version(),
            extra=f.extra(),
        )

    def _members(self) -> JsonObject:
        out: JsonObject = {
            "session": self.session,
            "token": self.token,
            "name": self.name,
            "participant": self.participant.to_json(),
            "peer_connections": _json_of(self.peer_connections),
        }
        emit(out, "version", self.version)
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Disconnect(_Message):
    """``disconnect``: the client leaves (then sends ``bye`` and closes with 1000).

    ``session`` is null when the client leaves before ``connected`` (seen in the real
    transcript after an ``error``); it is always written.
    """

    session: str | None = None
    version: int | None = RSP_VERSION
    extra: Mapping[str, Any] = extra_field()

    TYPE: ClassVar[str] = "disconnect"

    @classmethod
    def _parse(cls, f: _Fields) -> Self:
        return cls(session=f.opt_str("session"), version=f.version(), extra=f.extra())

    def _members(self) -> JsonObject:
        out: JsonObject = {"session": self.session}
        emit(out, "version", self.version)
        return out


# --------------------------------------------------------------------------------------------
# RSP messages: server -> client


@dataclass(frozen=True, slots=True, kw_only=True)
class Iced(_Message):
    """``iced``: the ICE servers for the client's PeerConnection (may be empty)."""

    ice_servers: tuple[IceServer, ...] = ()
    version: int | None = ICE_VERSION
    extra: Mapping[str, Any] = extra_field()

    TYPE: ClassVar[str] = "iced"

    @classmethod
    def _parse(cls, f: _Fields) -> Self:
        return cls(
            ice_servers=f.req_objs("ice_servers", IceServer._parse),
            version=f.version(),
            extra=f.extra(),
        )

    def _members(self) -> JsonObject:
        out: JsonObject = {"ice_servers": _json_of(self.ice_servers)}
        emit(out, "version", self.version)
        return out


def _media_signaling(f: _Fields) -> dict[str, MediaSignalingChannel] | None:
    return f.opt_obj_map("media_signaling", MediaSignalingChannel._parse)


@dataclass(frozen=True, slots=True, kw_only=True)
class Connected(_Message):
    """``connected``: the client is in the Room.

    ``session`` is an opaque resume token that must stay stable. ``participant`` (the
    client itself) and ``options.session_timeout`` are mandatory for the SDK.
    ``participants`` must not include the client itself. The answer in ``peer_connections``
    carries the offer's id and revision.
    """

    session: str
    sid: str
    name: str
    participant: ParticipantInfo
    options: ConnectedOptions
    participants: tuple[RemoteParticipantState, ...] = ()
    peer_connections: tuple[PeerConnectionState, ...] = ()
    published: Published | None = None
    subscribed: Subscribed | None = None
    recording: Recording | None = None
    media_signaling: Mapping[str, MediaSignalingChannel] | None = field(default=None, hash=False)
    version: int | None = RSP_VERSION
    extra: Mapping[str, Any] = extra_field()

    TYPE: ClassVar[str] = "connected"

    @classmethod
    def _parse(cls, f: _Fields) -> Self:
        published = f.opt_obj("published")
        subscribed = f.opt_obj("subscribed")
        recording = f.opt_obj("recording")
        return cls(
            session=f.req_str("session"),
            sid=f.req_str("sid"),
            name=f.req_str("name"),
            participant=ParticipantInfo._parse(f.req_obj("participant")),
            options=ConnectedOptions._parse(f.req_obj("options")),
            participants=f.opt_objs("participants", RemoteParticipantState._parse) or (),
            peer_connections=_peer_connections(f),
            published=None if published is None else Published._parse(published),
            subscribed=None if subscribed is None else Subscribed._parse(subscribed),
            recording=None if recording is None else Recording._parse(recording),
            media_signaling=_media_signaling(f),
            version=f.version(),
            extra=f.extra(),
        )

    def _members(self) -> JsonObject:
        out: JsonObject = {
            "session": self.session,
            "sid": self.sid,
            "name": self.name,
            "participant": self.participant.to_json(),
            "participants": _json_of(self.participants),
            "peer_connections": _json_of(self.peer_connections),
        }
        emit(out, "published", _json_of(self.published))
        emit(out, "subscribed", _json_of(self.subscribed))
        emit(out, "recording", _json_of(self.recording))
        emit(out, "media_signaling", _json_of(self.media_signaling))
        out["options"] = self.options.to_json()
        emit(out, "version", self.version)
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class _RoomState(_Message):
    """The fields shared by server ``update`` and ``synced``; None means "absent"."""

    participant: ParticipantInfo | None = None
    participants: tuple[RemoteParticipantState, ...] | None = None
    peer_connections: tuple[PeerConnectionState, ...] | None = None
    published: Published | None = None
    subscribed: Subscribed | None = None
    recording: Recording | None = None
    media_signaling: Mapping[str, MediaSignalingChannel] | None = field(default=None, hash=False)
    version: int | None = RSP_VERSION
    extra: Mapping[str, Any] = extra_field()

    @classmethod
    def _parse(cls, f: _Fields) -> Self:
        participant = f.opt_obj("participant")
        published = f.opt_obj("published")
        subscribed = f.opt_obj("subscribed")
        recording = f.opt_obj("recording")
        return cls(
            participant=None if participant is None else ParticipantInfo._parse(participant),
            participants=f.opt_objs("participants", RemoteParticipantState._parse),
            peer_connections=f.opt_objs("peer_connections", PeerConnectionState._parse),
            published=None if published is None else Published._parse(published),
            subscribed=None if subscribed is None else Subscribed._parse(subscribed),
            recording=None if recording is None else Recording._parse(recording),
            media_signaling=_media_signaling(f),
            version=f.version(),
            extra=f.extra(),
        )

    def _members(self) -> JsonObject:
        out: JsonObject = {}
        emit(out, "participant", _json_of(self.participant))
        emit(out, "participants", _json_of(self.participants))
        emit(out, "peer_connections", _json_of(self.peer_connections))
        emit(out, "published", _json_of(self.published))
        emit(out, "subscribed", _json_of(self.subscribed))
        emit(out, "recording", _json_of(self.recording))
        emit(out, "media_signaling", _json_of(self.media_signaling))
        emit(out, "version", self.version)
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerUpdate(_RoomState):
    """``update`` from the server: any subset of the Room state, each part with a revision.

    Omitting a participant does not remove it; send it with ``state="disconnected"``.
    """

    TYPE: ClassVar[str] = "update"


@dataclass(frozen=True, slots=True, kw_only=True)
class Synced(_RoomState):
    """``synced``: the full snapshot that ends a resume (answer to `Sync`).

    Unlike in `ServerUpdate`, absence matters: participants missing from ``participants``
    are disconnected, and PCs missing from a present ``peer_connections`` are closed.
    """

    TYPE: ClassVar[str] = "synced"


@dataclass(frozen=True, slots=True, kw_only=True)
class Disconnected(_Message):
    """``disconnected``: the server ends the session.

    ``status="completed"`` surfaces as ``RoomCompletedError`` (53118); any other or no
    status is a clean disconnect without error (a kick).
    """

    status: str | None = None
    version: int | None = RSP_VERSION
    extra: Mapping[str, Any] = extra_field()

    TYPE: ClassVar[str] = "disconnected"

    @classmethod
    def _parse(cls, f: _Fields) -> Self:
        return cls(status=f.opt_str("status"), version=f.version(), extra=f.extra())

    def _members(self) -> JsonObject:
        out: JsonObject = {}
        emit(out, "status", self.status)
        emit(out, "version", self.version)
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorMessage(_Message):
    """``error``: fails ``connect()``, or disconnects the Room with that Twilio error.

    The SDK replaces ``message`` with its canonical text for known codes (the server's
    table is `parlour.domain.errors.MESSAGES`). A missing ``message`` parses as "".
    """

    code: int
    message: str
    version: int | None = RSP_VERSION
    extra: Mapping[str, Any] = extra_field()

    TYPE: ClassVar[str] = "error"

    @classmethod
    def _parse(cls, f: _Fields) -> Self:
        code = f.req_int("code")
        return cls(
            code=code,
            message=_message_for(code, f.opt_str("message")),
            version=f.version(),
            extra=f.extra(),
        )

    def _members(self) -> JsonObject:
        out: JsonObject = {"code": self.code, "message": self.message}
        emit(out, "version", self.version)
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class WarningMessage(_Message):
    """``warning``: media warnings (recording media lost), only if the client asked for them
    via ``participant.media_warnings``."""

    states: MediaStates | None = None
    version: int | None = RSP_VERSION
    extra: Mapping[str, Any] = extra_field()

    TYPE: ClassVar[str] = "warning"

    @classmethod
    def _parse(cls, f: _Fields) -> Self:
        states = f.opt_obj("states")
        return cls(
            states=None if states is None else MediaStates._parse(states),
            version=f.version(),
            extra=f.extra(),
        )

    def _members(self) -> JsonObject:
        out: JsonObject = {}
        emit(out, "states", _json_of(self.states))
        emit(out, "version", self.version)
        return out


ClientRspMessage: TypeAlias = Ice | Connect | ClientUpdate | Sync | Disconnect
"""An RSP message a client sends."""
ServerRspMessage: TypeAlias = (
    Iced | Connected | ServerUpdate | Synced | Disconnected | ErrorMessage | WarningMessage
)
"""An RSP message the server sends."""
RspMessage: TypeAlias = ClientRspMessage | ServerRspMessage
"""Any RSP message body."""

_CLIENT_RSP: Final[Mapping[str, type[ClientRspMessage]]] = {
    "ice": Ice,
    "connect": Connect,
    "update": ClientUpdate,
    "sync": Sync,
    "disconnect": Disconnect,
}
_SERVER_RSP: Final[Mapping[str, type[ServerRspMessage]]] = {
    "iced": Iced,
    "connected": Connected,
    "update": ServerUpdate,
    "synced": Synced,
    "disconnected": Disconnected,
    "error": ErrorMessage,
    "warning": WarningMessage,
}
_HELLO_BODIES: Final[Mapping[str, type[Ice | Connect | Sync]]] = {
    "ice": Ice,
    "connect": Connect,
    "sync": Sync,
}


def _read_type(f: _Fields, sender: Sender, allowed: Mapping[str, type[_T]], kind: str) -> type[_T]:
    wire_type = f.req_str("type")
    cls = allowed.get(wire_type)
    if cls is None:
        raise UnknownMessageTypeError(
            f"{f.path('type')}: unknown {kind} type {wire_type!r} from a {sender}"
            f" (expected one of {', '.join(map(repr, allowed))})",
            wire_type,
        )
    return cls


def _parse_rsp(f: _Fields, sender: Sender) -> RspMessage:
    table: Mapping[str, type[RspMessage]] = _CLIENT_RSP if sender == "client" else _SERVER_RSP
    return _read_type(f, sender, table, "RSP message")._parse(f)


# --------------------------------------------------------------------------------------------
# TCMP frames


@dataclass(frozen=True, slots=True, kw_only=True)
class Hello(_Message):
    """``hello``: the client's handshake, re-sent on the same socket if no `Welcome` in 5 s.

    ``timeout`` is the requested heartbeat interval in ms. ``body`` is `Ice` on a first
    connect, `Connect` when the app passed ``iceServers``, `Sync` on a resume. ``cookie``
    echoes the one from a previous `Busy`.
    """

    id: str
    timeout: int
    body: Ice | Connect | Sync | None = None
    cookie: str | None = None
    version: int = TCMP_VERSION
    extra: Mapping[str, Any] = extra_field()

    TYPE: ClassVar[str] = "hello"

    def __post_init__(self) -> None:
        _check(self.timeout >= 0, "hello.timeout", f"must not be negative, got {self.timeout}")

    @classmethod
    def _parse(cls, f: _Fields) -> Self:
        fields = f.opt_obj("body")
        body: Ice | Connect | Sync | None = None
        if fields is not None:
            body = _read_type(fields, "client", _HELLO_BODIES, "hello body")._parse(fields)
        return cls(
            id=f.req_str("id"),
            timeout=f.req_int("timeout"),
            body=body,
            cookie=f.opt_str("cookie"),
            version=f.req_int("version"),
            extra=f.extra(),
        )

    def _members(self) -> JsonObject:
        out: JsonObject = {"id": self.id, "timeout": self.timeout, "version": self.version}
        emit(out, "body", _json_of(self.body))
        emit(out, "cookie", self.cookie)
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Welcome(_Message):
    """``welcome``: accept a `Hello`. ``negotiated_timeout`` (ms, wire ``negotiatedTimeout``)
    is required: without it the client's heartbeat timer fires at once.

    Send a ``heartbeat`` (or any ``msg``) at least every ``negotiated_timeout`` ms; the client
    gives up after 3 × that without one.
    """

    negotiated_timeout: int
    extra: Mapping[str, Any] = extra_field()

    TYPE: ClassVar[str] = "welcome"

    def __post_init__(self) -> None:
        _check(
            self.negotiated_timeout > 0,
            "welcome.negotiatedTimeout",
            f"must be positive, got {self.negotiated_timeout}",
        )

    @classmethod
    def _parse(cls, f: _Fields) -> Self:
        return cls(negotiated_timeout=f.req_int("negotiatedTimeout"), extra=f.extra())

    def _members(self) -> JsonObject:
        return {"negotiatedTimeout": self.negotiated_timeout}


@dataclass(frozen=True, slots=True, kw_only=True)
class Msg(_Message):
    """``msg``: carries one RSP message in ``body``. Also counts as a heartbeat."""

    body: RspMessage
    extra: Mapping[str, Any] = extra_field()

    TYPE: ClassVar[str] = "msg"

    @classmethod
    def parse(cls, obj: object, *, sender: Sender = "client") -> Self:
        """Build a ``msg`` frame from decoded JSON, parsing its body as ``sender`` sent it.

        Args:
            obj: The decoded JSON value.
            sender: ``"client"`` (the default, for the server side) or ``"server"``.

        Returns:
            The frame, with ``body`` parsed into its RSP message class.

        Raises:
            SignalingProtocolError: If the frame or its body is invalid.
        """
        f = _Fields(obj, cls.TYPE, sender)
        cls._expect_type(f)
        return cls._parse(f)

    @classmethod
    def _parse(cls, f: _Fields) -> Self:
        return cls(body=_parse_rsp(f.req_obj("body"), f.sender), extra=f.extra())

    def _members(self) -> JsonObject:
        return {"body": self.body.to_json()}


@dataclass(frozen=True, slots=True, kw_only=True)
class Heartbeat(_Message):
    """``heartbeat``: keep-alive, both ways."""

    extra: Mapping[str, Any] = extra_field()

    TYPE: ClassVar[str] = "heartbeat"


@dataclass(frozen=True, slots=True, kw_only=True)
class Bye(_Message):
    """``bye``: the sender is closing the connection (the client ignores one from the server)."""

    extra: Mapping[str, Any] = extra_field()

    TYPE: ClassVar[str] = "bye"


@dataclass(frozen=True, slots=True, kw_only=True)
class Busy(_Message):
    """``busy``: the server cannot take the client now.

    ``retry_after < 0`` is terminal (53006). With ``keep_alive`` the client re-sends
    ``hello`` on the same socket after ``retry_after`` ms; otherwise it reconnects then,
    echoing ``cookie``.
    """

    retry_after: int
    keep_alive: bool = False
    cookie: str | None = None
    extra: Mapping[str, Any] = extra_field()

    TYPE: ClassVar[str] = "busy"

    @classmethod
    def _parse(cls, f: _Fields) -> Self:
        return cls(
            retry_after=f.req_int("retryAfter"),
            keep_alive=bool(f.opt_bool("keepAlive")),
            cookie=f.opt_str("cookie"),
            extra=f.extra(),
        )

    def _members(self) -> JsonObject:
        out: JsonObject = {"retryAfter": self.retry_after, "keepAlive": self.keep_alive}
        emit(out, "cookie", self.cookie)
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Bad(_Message):
    """``bad``: reject a malformed frame. Only safe during the handshake (close 3002);
    once open, the SDK throws on it, so a server should not send it then."""

    reason: str
    extra: Mapping[str, Any] = extra_field()

    TYPE: ClassVar[str] = "bad"

    @classmethod
    def _parse(cls, f: _Fields) -> Self:
        return cls(reason=f.req_str("reason"), extra=f.extra())

    def _members(self) -> JsonObject:
        return {"reason": self.reason}


ClientFrame: TypeAlias = Hello | Msg | Heartbeat | Bye
"""A TCMP frame a client sends."""
ServerFrame: TypeAlias = Welcome | Msg | Heartbeat | Bye | Busy | Bad
"""A TCMP frame the server sends."""
TcmpFrame: TypeAlias = ClientFrame | ServerFrame
"""Any TCMP frame."""

_CLIENT_FRAMES: Final[Mapping[str, type[ClientFrame]]] = {
    "hello": Hello,
    "msg": Msg,
    "heartbeat": Heartbeat,
    "bye": Bye,
}
_SERVER_FRAMES: Final[Mapping[str, type[ServerFrame]]] = {
    "welcome": Welcome,
    "msg": Msg,
    "heartbeat": Heartbeat,
    "bye": Bye,
    "busy": Busy,
    "bad": Bad,
}


# --------------------------------------------------------------------------------------------
# Entry points


@overload
def parse_rsp(obj: object, *, sender: Literal["client"] = ...) -> ClientRspMessage: ...
@overload
def parse_rsp(obj: object, *, sender: Literal["server"]) -> ServerRspMessage: ...
def parse_rsp(obj: object, *, sender: Sender = "client") -> RspMessage:
    """Parse a decoded RSP message body (the ``body`` of ``hello``/``msg``).

    Args:
        obj: The decoded JSON value.
        sender: Who sent it: ``"client"`` (the default) or ``"server"``. Decides the
            ``update`` shape and which types are allowed.

    Returns:
        The message as its dataclass, e.g. `Connect` or `Connected`.

    Raises:
        UnknownMessageTypeError: If ``type`` is not one ``sender`` may send.
        SignalingProtocolError: If the message is otherwise invalid.
    """
    return _parse_rsp(_Fields(obj, "body"), sender)


@overload
def parse_frame(obj: object, *, sender: Literal["client"] = ...) -> ClientFrame: ...
@overload
def parse_frame(obj: object, *, sender: Literal["server"]) -> ServerFrame: ...
def parse_frame(obj: object, *, sender: Sender = "client") -> TcmpFrame:
    """Parse a decoded TCMP frame, including its RSP body.

    Args:
        obj: The decoded JSON value.
        sender: Who sent it: ``"client"`` (the default) or ``"server"``.

    Returns:
        The frame as its dataclass, e.g. `Hello` or `Msg`.

    Raises:
        UnknownMessageTypeError: If ``type`` is not a frame type ``sender`` may send.
        SignalingProtocolError: If the frame is otherwise invalid.
    """
    f = _Fields(obj, "frame", sender)
    table: Mapping[str, type[TcmpFrame]] = _CLIENT_FRAMES if sender == "client" else _SERVER_FRAMES
    cls = _read_type(f, sender, table, "TCMP frame")
    f.where = cls.TYPE
    return cls._parse(f)


@overload
def parse_message(raw: str | bytes, *, sender: Literal["client"] = ...) -> ClientFrame: ...
@overload
def parse_message(raw: str | bytes, *, sender: Literal["server"]) -> ServerFrame: ...
def parse_message(raw: str | bytes, *, sender: Sender = "client") -> TcmpFrame:
    """Parse one WebSocket text frame: JSON, then TCMP, then the RSP body.

    This is the entry point for untrusted input: any failure is a
    `SignalingProtocolError`, never another exception.

    Args:
        raw: The frame payload; bytes must be UTF-8.
        sender: Who sent it: ``"client"`` (the default, for the server) or ``"server"``
            (for the Python SDK).

    Returns:
        The frame as its dataclass.

    Raises:
        UnknownMessageTypeError: If a ``type`` is not one ``sender`` may send.
        SignalingProtocolError: If the frame is not UTF-8 JSON or is invalid.
    """
    obj = wire.loads(raw, SignalingProtocolError, "frame")
    if sender == "client":
        return parse_frame(obj, sender="client")
    return parse_frame(obj, sender="server")


def encode_message(frame: TcmpFrame) -> str:
    """Serialize a frame to the compact JSON text the SDK expects.

    Args:
        frame: Any TCMP frame, e.g. ``Msg(body=Connected(...))``.

    Returns:
        The JSON text for one WebSocket text frame.
    """
    return json.dumps(frame.to_json(), separators=(",", ":"), allow_nan=False)
