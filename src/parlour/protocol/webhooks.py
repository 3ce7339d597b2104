"""Status callbacks on the wire: Twilio's parameters, the request shape, `X-Twilio-Signature`.

Pure: no sockets, no clock, no domain. The webhook sender (`parlour.webhooks`) builds a
`RoomStatusCallback` or `RecordingStatusCallback` from a typed domain event
(`parlour.webhooks.sender.status_callback`), turns it into a `CallbackRequest` with
`prepare_request`, and sends it.

- Parameters are PascalCase, exactly as Twilio names them (rest-api.md §8.1). POST sends
  them form-encoded in the body; GET appends them to the URL's query string.
- `Timestamp` is UTC ISO 8601 with milliseconds and `Z` (`2025-10-27T18:16:01.876Z`).
- `SequenceNumber` counts the callbacks of one room from 0 (`room-created` is 0).
- `X-Twilio-Signature` is base64(HMAC-SHA1(AuthToken, URL + the sorted POST parameters)),
  the algorithm of twilio-python's `RequestValidator` (rest-api.md §8.4). A GET signs
  the full URL, query string included, with no parameters.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

__all__ = [
    "CONTENT_TYPE",
    "IDEMPOTENCY_HEADER",
    "FAILED_OPERATIONS",
    "PARTICIPANT_EVENTS",
    "RECORDING_EVENTS",
    "ROOM_EVENTS",
    "SIGNATURE_HEADER",
    "TRACK_EVENTS",
    "TRANSCRIPTION_EVENTS",
    "CallbackRequest",
    "RecordingStatusCallback",
    "RoomStatusCallback",
    "compute_signature",
    "format_timestamp",
    "prepare_request",
    "validate_signature",
]

SIGNATURE_HEADER = "X-Twilio-Signature"
#: Twilio marks every webhook with a token that stays the same across retries.
IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"
CONTENT_TYPE = "application/x-www-form-urlencoded"

PARTICIPANT_EVENTS = ("participant-connected", "participant-disconnected")
TRACK_EVENTS = ("track-added", "track-removed", "track-enabled", "track-disabled")
#: The room's real-time transcriptions started, stopped or failed (with `TranscriptionTtid`
#: and `TranscriptionStatus`; docs/compatibility.md, "Transcriptions").
TRANSCRIPTION_EVENTS = ("transcription-started", "transcription-stopped", "transcription-failed")
#: Every room event with the room/participant/track parameter set of §8.1.
ROOM_EVENTS = (
    "room-created",
    "room-ended",
    *PARTICIPANT_EVENTS,
    *TRACK_EVENTS,
    *TRANSCRIPTION_EVENTS,
)
#: Track recording events (rest-api.md §8.2), sent to the Room's StatusCallback too.
RECORDING_EVENTS = ("recording-started", "recording-completed", "recording-failed")
FAILED_OPERATIONS = ("RecordingStart", "RecordingComplete", "RecordingUpload")

Params = Mapping[str, str] | Iterable[tuple[str, str]]


def format_timestamp(value: dt.datetime) -> str:
    """UTC ISO 8601 with milliseconds and `Z`, as in Twilio's callbacks."""
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _pairs(params: Params) -> list[tuple[str, str]]:
    return list(params.items()) if isinstance(params, Mapping) else list(params)


class _Received:
    """The parameters of a received callback, read by name."""

    def __init__(self, params: Params) -> None:
        self.values = dict(_pairs(params))

    def required(self, name: str) -> str:
        try:
            return self.values[name]
        except KeyError:
            raise ValueError(f"missing {name}") from None

    def optional(self, name: str) -> str | None:
        return self.values.get(name)

    def integer(self, name: str) -> int | None:
        return int(self.values[name]) if name in self.values else None


@dataclass(frozen=True)
class RoomStatusCallback:
    """The parameters of one Room status callback (rest-api.md §8.1).

    Participant fields are present on `participant-*` and `track-*` events, track fields
    on `track-*`, `participant_duration` on `participant-disconnected` and
    `room_duration` on `room-ended`. `track_name` is an addition Twilio's recording
    callbacks also carry.
    """

    account_sid: str
    room_sid: str
    room_name: str
    room_status: str
    room_type: str
    event: str
    timestamp: str
    sequence_number: int
    participant_sid: str | None = None
    participant_status: str | None = None
    participant_identity: str | None = None
    participant_duration: int | None = None
    room_duration: int | None = None
    track_sid: str | None = None
    track_kind: str | None = None
    track_name: str | None = None
    transcription_ttid: str | None = None
    transcription_status: str | None = None

    def __post_init__(self) -> None:
        if self.event not in ROOM_EVENTS:
            raise ValueError(f"not a room status callback event: {self.event!r}")
        if self.sequence_number < 0:
            raise ValueError("SequenceNumber must not be negative")
        participant = self.event in PARTICIPANT_EVENTS or self.event in TRACK_EVENTS
        fields = (self.participant_sid, self.participant_status, self.participant_identity)
        present = [f is not None for f in fields]
        if (participant and not all(present)) or (not participant and any(present)):
            raise ValueError(f"{self.event} needs exactly the Participant parameters")
        track = self.event in TRACK_EVENTS
        if track != (self.track_sid is not None and self.track_kind is not None):
            raise ValueError(f"{self.event} needs exactly the Track parameters")
        if not track and self.track_name is not None:
            raise ValueError(f"{self.event} has no TrackName")
        if (self.participant_duration is not None) != (self.event == "participant-disconnected"):
            raise ValueError("ParticipantDuration is only, and always, on participant-disconnected")
        if (self.room_duration is not None) != (self.event == "room-ended"):
            raise ValueError("RoomDuration is only, and always, on room-ended")
        transcription = (self.transcription_ttid, self.transcription_status)
        if (self.event in TRANSCRIPTION_EVENTS) != all(f is not None for f in transcription):
            raise ValueError(f"{self.event} needs exactly the Transcription parameters")

    def to_params(self) -> list[tuple[str, str]]:
        """The parameters in the order Twilio sends them (order does not affect signing)."""
        params = [
            ("RoomStatus", self.room_status),
            ("RoomType", self.room_type),
            ("RoomSid", self.room_sid),
            ("RoomName", self.room_name),
        ]
        optional: list[tuple[str, str | int | None]] = [
            ("ParticipantStatus", self.participant_status),
            ("ParticipantIdentity", self.participant_identity),
            ("ParticipantDuration", self.participant_duration),
            ("RoomDuration", self.room_duration),
            ("TrackSid", self.track_sid),
            ("TrackKind", self.track_kind),
            ("TrackName", self.track_name),
            ("TranscriptionTtid", self.transcription_ttid),
            ("TranscriptionStatus", self.transcription_status),
        ]
        params += [(k, str(v)) for k, v in optional if v is not None]
        params += [
            ("SequenceNumber", str(self.sequence_number)),
            ("StatusCallbackEvent", self.event),
            ("Timestamp", self.timestamp),
        ]
        if self.participant_sid is not None:
            params.append(("ParticipantSid", self.participant_sid))
        params.append(("AccountSid", self.account_sid))
        return params

    @classmethod
    def parse(cls, params: Params) -> RoomStatusCallback:
        """Read a callback's parameters (as a receiver would).

        Raises:
            ValueError: a required parameter is missing or an integer is malformed.
        """
        received = _Received(params)
        return cls(
            account_sid=received.required("AccountSid"),
            room_sid=received.required("RoomSid"),
            room_name=received.required("RoomName"),
            room_status=received.required("RoomStatus"),
            room_type=received.required("RoomType"),
            event=received.required("StatusCallbackEvent"),
            timestamp=received.required("Timestamp"),
            sequence_number=int(received.required("SequenceNumber")),
            participant_sid=received.optional("ParticipantSid"),
            participant_status=received.optional("ParticipantStatus"),
            participant_identity=received.optional("ParticipantIdentity"),
            participant_duration=received.integer("ParticipantDuration"),
            room_duration=received.integer("RoomDuration"),
            track_sid=received.optional("TrackSid"),
            track_kind=received.optional("TrackKind"),
            track_name=received.optional("TrackName"),
            transcription_ttid=received.optional("TranscriptionTtid"),
            transcription_status=received.optional("TranscriptionStatus"),
        )


@dataclass(frozen=True)
class RecordingStatusCallback:
    """The parameters of one recording status callback (rest-api.md §8.2).

    `media_uri`, `duration` and `size` (and `media_external_location` when the media is
    stored externally) are present on `recording-completed` only; `failed_operation` on
    `recording-failed` only. `recording_uri` and `media_uri` are relative
    (`/v1/Recordings/RT…`, `/v1/Recordings/RT…/Media`). `room_status` and
    `sequence_number` are Parlour's additions, as on the room events.
    """

    account_sid: str
    room_sid: str
    room_name: str
    room_type: str
    event: str
    timestamp: str
    sequence_number: int
    recording_sid: str
    participant_sid: str
    participant_identity: str
    source_sid: str
    track_name: str
    recording_uri: str
    container: str
    codec: str
    type: str
    offset: int
    room_status: str | None = None
    media_uri: str | None = None
    duration: int | None = None
    size: int | None = None
    media_external_location: str | None = None
    failed_operation: str | None = None

    def __post_init__(self) -> None:
        if self.event not in RECORDING_EVENTS:
            raise ValueError(f"not a recording status callback event: {self.event!r}")
        if self.sequence_number < 0:
            raise ValueError("SequenceNumber must not be negative")
        completed = self.event == "recording-completed"
        media = (self.media_uri, self.duration, self.size)
        if completed != all(v is not None for v in media) or (
            not completed and any(v is not None for v in media)
        ):
            raise ValueError("MediaUri, Duration and Size are only, and always, on completed")
        if not completed and self.media_external_location is not None:
            raise ValueError("MediaExternalLocation is only on recording-completed")
        failed = self.event == "recording-failed"
        if failed != (self.failed_operation is not None):
            raise ValueError("FailedOperation is only, and always, on recording-failed")
        if self.failed_operation is not None and self.failed_operation not in FAILED_OPERATIONS:
            raise ValueError(f"unknown FailedOperation {self.failed_operation!r}")

    def to_params(self) -> list[tuple[str, str]]:
        """The parameters, room ones first as on the room events."""
        params = [("RoomType", self.room_type), ("RoomSid", self.room_sid)]
        if self.room_status is not None:
            params.insert(0, ("RoomStatus", self.room_status))
        params += [
            ("RoomName", self.room_name),
            ("RecordingSid", self.recording_sid),
            ("RecordingUri", self.recording_uri),
            ("SourceSid", self.source_sid),
            ("TrackName", self.track_name),
            ("ParticipantSid", self.participant_sid),
            ("ParticipantIdentity", self.participant_identity),
            ("Container", self.container),
            ("Codec", self.codec),
            ("Type", self.type),
            ("OffsetFromTwilioVideoEpoch", str(self.offset)),
        ]
        optional: list[tuple[str, str | int | None]] = [
            ("MediaUri", self.media_uri),
            ("Duration", self.duration),
            ("Size", self.size),
            ("MediaExternalLocation", self.media_external_location),
            ("FailedOperation", self.failed_operation),
        ]
        params += [(k, str(v)) for k, v in optional if v is not None]
        params += [
            ("SequenceNumber", str(self.sequence_number)),
            ("StatusCallbackEvent", self.event),
            ("Timestamp", self.timestamp),
            ("AccountSid", self.account_sid),
        ]
        return params

    @classmethod
    def parse(cls, params: Params) -> RecordingStatusCallback:
        """Read a callback's parameters (as a receiver would).

        Raises:
            ValueError: a required parameter is missing or an integer is malformed.
        """
        received = _Received(params)
        return cls(
            account_sid=received.required("AccountSid"),
            room_sid=received.required("RoomSid"),
            room_name=received.required("RoomName"),
            room_type=received.required("RoomType"),
            event=received.required("StatusCallbackEvent"),
            timestamp=received.required("Timestamp"),
            sequence_number=int(received.required("SequenceNumber")),
            recording_sid=received.required("RecordingSid"),
            participant_sid=received.required("ParticipantSid"),
            participant_identity=received.required("ParticipantIdentity"),
            source_sid=received.required("SourceSid"),
            track_name=received.required("TrackName"),
            recording_uri=received.required("RecordingUri"),
            container=received.required("Container"),
            codec=received.required("Codec"),
            type=received.required("Type"),
            offset=int(received.required("OffsetFromTwilioVideoEpoch")),
            room_status=received.optional("RoomStatus"),
            media_uri=received.optional("MediaUri"),
            duration=received.integer("Duration"),
            size=received.integer("Size"),
            media_external_location=received.optional("MediaExternalLocation"),
            failed_operation=received.optional("FailedOperation"),
        )


def _signed_string(url: str, params: Params) -> str:
    """URL, then name+value for each distinct name and distinct value, both sorted."""
    grouped: dict[str, set[str]] = {}
    for name, value in _pairs(params):
        grouped.setdefault(name, set()).add(value)
    parts = [url]
    for name in sorted(grouped):
        parts.extend(name + value for value in sorted(grouped[name]))
    return "".join(parts)


def compute_signature(auth_token: str, url: str, params: Params = ()) -> str:
    """`X-Twilio-Signature` for a request to `url` with these POST parameters.

    Args:
        url: the full URL requested, query string included.
        params: the decoded form parameters of a POST; none for a GET.
    """
    digest = hmac.new(
        auth_token.encode("utf-8"), _signed_string(url, params).encode("utf-8"), hashlib.sha1
    ).digest()
    return base64.b64encode(digest).decode("ascii")


def _port_variants(url: str) -> list[str]:
    """The URL as given, without its default port, and with it (as twilio-python tries)."""
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    variants = [url]
    if default is None or parts.hostname is None:
        return variants
    userinfo, _, hostport = parts.netloc.rpartition("@")
    prefix = userinfo + "@" if userinfo else ""
    host = hostport if parts.port is None else hostport.rsplit(":", 1)[0]
    if parts.port is None:
        variants.append(urlunsplit(parts._replace(netloc=f"{prefix}{host}:{default}")))
    elif parts.port == default:
        variants.append(urlunsplit(parts._replace(netloc=prefix + host)))
    return variants


def validate_signature(auth_token: str, url: str, params: Params, signature: str) -> bool:
    """Whether `signature` signs this request, with or without the URL's default port."""
    expected = signature.encode("utf-8")
    return any(
        hmac.compare_digest(compute_signature(auth_token, u, params).encode("ascii"), expected)
        for u in _port_variants(url)
    )


@dataclass(frozen=True)
class CallbackRequest:
    """One signed status callback request, ready to send."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes


def _encode(params: Sequence[tuple[str, str]]) -> str:
    # Spaces as %20, as in the bodies Twilio sends (rest-api.md §8.1).
    return urlencode(params, quote_via=quote)


def _with_query(url: str, params: Sequence[tuple[str, str]]) -> str:
    parts = urlsplit(url)
    extra = _encode(params)
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit(parts._replace(query=query, fragment=""))


def prepare_request(
    method: str,
    url: str,
    params: Params,
    auth_token: str,
    *,
    idempotency_token: str | None = None,
    user_agent: str = "Parlour",
) -> CallbackRequest:
    """Build the signed request: a form-encoded POST, or a GET with a query string.

    The signature covers the exact URL sent (for a GET, with the parameters appended to
    any query the configured URL already had).
    """
    pairs = _pairs(params)
    method = method.upper()
    headers = {"User-Agent": user_agent}
    if idempotency_token is not None:
        headers[IDEMPOTENCY_HEADER] = idempotency_token
    if method == "GET":
        target = _with_query(url, pairs)
        headers[SIGNATURE_HEADER] = compute_signature(auth_token, target)
        return CallbackRequest("GET", target, headers, b"")
    if method != "POST":
        raise ValueError(f"StatusCallbackMethod must be GET or POST, not {method!r}")
    target = urlunsplit(urlsplit(url)._replace(fragment=""))
    headers["Content-Type"] = CONTENT_TYPE
    headers[SIGNATURE_HEADER] = compute_signature(auth_token, target, pairs)
    return CallbackRequest("POST", target, headers, _encode(pairs).encode("ascii"))
