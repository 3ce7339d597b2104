"""Rooms: the record, its status machine, and the rules for creating one.

A room is `in-progress` from creation until it is ended (REST `Status=completed`, or the
empty/unused-room timeout), then `completed`. `failed` exists in Twilio's enum for rooms that
could not start; Parlour never produces it but accepts it in filters.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from parlour.domain import errors
from parlour.domain.rules import Rule, parse_rules
from parlour.domain.sids import AccountSid, RoomSid, is_sid
from parlour.domain.transcriptions import normalize_configuration

__all__ = [
    "ROOM_TYPE_LIMITS",
    "Room",
    "RoomSpec",
    "RoomStatus",
    "RoomType",
    "validate_room_spec",
    "validate_status_callback",
]


class RoomStatus(enum.StrEnum):
    IN_PROGRESS = "in-progress"
    COMPLETED = "completed"
    FAILED = "failed"


class RoomType(enum.StrEnum):
    GROUP = "group"
    GO = "go"
    PEER_TO_PEER = "peer-to-peer"
    GROUP_SMALL = "group-small"


@dataclass(frozen=True)
class _TypeLimits:
    max_participants: int
    max_concurrent_published_tracks: int


#: Per room type: the largest (and default) MaxParticipants and the published-track cap,
#: as Twilio documents them ("The maximum allowed value is 50" for group rooms).
ROOM_TYPE_LIMITS: dict[RoomType, _TypeLimits] = {
    RoomType.GROUP: _TypeLimits(50, 170),
    RoomType.GROUP_SMALL: _TypeLimits(4, 16),
    RoomType.PEER_TO_PEER: _TypeLimits(10, 10),
    RoomType.GO: _TypeLimits(2, 6),
}

VIDEO_CODECS = ("VP8", "H264")
MAX_NAME_LENGTH = 128
MAX_CALLBACK_LENGTH = 1024
TIMEOUT_MINUTES = range(1, 61)
PARTICIPANT_DURATION_SECONDS = range(600, 86401)
DEFAULT_TIMEOUT_MINUTES = 5
DEFAULT_PARTICIPANT_DURATION = 14400
DEFAULT_MEDIA_REGION = "us1"
#: Twilio's media regions (Video Insights' enum); Parlour runs its media where it runs,
#: and keeps the region a room was created with for the API and the SDK's `connected`.
MEDIA_REGIONS = ("us1", "us2", "au1", "br1", "ie1", "jp1", "sg1", "in1", "de1", "gll")
#: Room types whose media Twilio can record (no recording for peer-to-peer and go rooms).
RECORDABLE_TYPES = (RoomType.GROUP, RoomType.GROUP_SMALL)


@dataclass(frozen=True)
class RoomSpec:
    """What a client asked for when creating a room (already type-parsed, not yet checked)."""

    unique_name: str | None = None
    type: str | None = None
    status_callback: str | None = None
    status_callback_method: str | None = None
    max_participants: int | None = None
    record_participants_on_connect: bool | None = None
    transcribe_participants_on_connect: bool | None = None
    video_codecs: Sequence[str] | None = None
    media_region: str | None = None
    recording_rules: str | None = None
    transcriptions_configuration: str | None = None
    audio_only: bool | None = None
    max_participant_duration: int | None = None
    empty_room_timeout: int | None = None
    unused_room_timeout: int | None = None
    large_room: bool | None = None


@dataclass(frozen=True)
class Room:
    """A room as stored and served (`video.v1.room`)."""

    sid: RoomSid
    account_sid: AccountSid
    unique_name: str
    status: RoomStatus
    type: RoomType
    date_created: dt.datetime
    date_updated: dt.datetime
    status_callback: str | None = None
    status_callback_method: str = "POST"
    end_time: dt.datetime | None = None
    duration: int | None = None
    max_participants: int = 50
    max_participant_duration: int = DEFAULT_PARTICIPANT_DURATION
    max_concurrent_published_tracks: int = 170
    record_participants_on_connect: bool = False
    transcribe_participants_on_connect: bool = False
    transcriptions_configuration: dict[str, Any] | None = None
    video_codecs: tuple[str, ...] = ("VP8",)
    media_region: str = DEFAULT_MEDIA_REGION
    audio_only: bool = False
    empty_room_timeout: int = DEFAULT_TIMEOUT_MINUTES
    unused_room_timeout: int = DEFAULT_TIMEOUT_MINUTES
    large_room: bool = False
    recording_rules: tuple[Rule, ...] = ()
    recording_rules_updated: dt.datetime | None = None
    # When the room last became empty (its creation time until someone joins), and whether
    # anyone ever joined: these drive the empty/unused-room timeouts.
    empty_since: dt.datetime | None = None
    ever_joined: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def in_progress(self) -> bool:
        return self.status is RoomStatus.IN_PROGRESS

    def completed(self, now: dt.datetime) -> Room:
        """This room ended at `now` (duration in whole seconds since creation)."""
        duration = max(0, int((now - self.date_created).total_seconds()))
        return replace(
            self,
            status=RoomStatus.COMPLETED,
            end_time=now,
            duration=duration,
            date_updated=now,
        )

    def idle_deadline(self, minute: float) -> dt.datetime | None:
        """When this room ends if nobody is in it, or None if it is not idle-tracked.

        Args:
            minute: seconds per timeout minute (60 in production; tests shrink it).
        """
        if not self.in_progress or self.empty_since is None:
            return None
        minutes = self.empty_room_timeout if self.ever_joined else self.unused_room_timeout
        return self.empty_since + dt.timedelta(seconds=minutes * minute)


def _check_name(name: str) -> None:
    if name.strip() == "":
        raise errors.RoomError(code=errors.Code.ROOM_NAME_INVALID)
    if len(name) > MAX_NAME_LENGTH:
        raise errors.RoomError(code=errors.Code.ROOM_NAME_TOO_LONG)
    if any(unicodedata.category(ch).startswith("C") for ch in name):
        raise errors.RoomError(code=errors.Code.ROOM_NAME_CHARS_INVALID)
    if is_sid(name):
        # A name shaped like a SID would make /v1/Rooms/{Sid} ambiguous.
        raise errors.RoomError(code=errors.Code.ROOM_NAME_INVALID)


def validate_status_callback(url: str) -> None:
    """StatusCallback must be an absolute http(s) URL shorter than 1024 characters (53111)."""
    bad = errors.RoomError(code=errors.Code.ROOM_STATUS_CALLBACK_INVALID)
    if len(url) >= MAX_CALLBACK_LENGTH or any(ch.isspace() for ch in url):
        raise bad
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError:
        raise bad from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise bad


def _check_range(value: int, allowed: range, code: errors.Code, message: str | None = None) -> None:
    if value not in allowed:
        raise errors.RoomError(message, code=code)


def validate_room_spec(
    spec: RoomSpec,
    *,
    sid: RoomSid,
    account_sid: AccountSid,
    now: dt.datetime,
) -> Room:
    """Check a create request with Twilio's error codes and build the new room.

    Raises:
        RoomError: with the Twilio code for the first invalid parameter (53100–53111).
        RecordingRulesError: invalid `RecordingRules` (53120).
    """
    unique_name = spec.unique_name or None  # `UniqueName=` is no name, as on Twilio
    if unique_name is not None:
        _check_name(unique_name)
    try:
        room_type = RoomType(spec.type) if spec.type is not None else RoomType.GROUP
    except ValueError:
        raise errors.RoomError(code=errors.Code.ROOM_TYPE_INVALID) from None
    limits = ROOM_TYPE_LIMITS[room_type]

    if spec.status_callback is not None:
        validate_status_callback(spec.status_callback)
    method = (spec.status_callback_method or "POST").upper()
    if method not in ("GET", "POST"):
        raise errors.RoomError(code=errors.Code.ROOM_STATUS_CALLBACK_METHOD_INVALID)

    max_participants = limits.max_participants
    if spec.max_participants is not None:
        _check_range(
            spec.max_participants,
            range(1, limits.max_participants + 1),
            errors.Code.ROOM_MAX_PARTICIPANTS_OUT_OF_RANGE,
        )
        max_participants = spec.max_participants

    for value in (spec.empty_room_timeout, spec.unused_room_timeout):
        if value is not None:
            _check_range(value, TIMEOUT_MINUTES, errors.Code.ROOM_TIMEOUT_OUT_OF_RANGE)
    if spec.max_participant_duration is not None:
        _check_range(
            spec.max_participant_duration,
            PARTICIPANT_DURATION_SECONDS,
            errors.Code.ROOM_TIMEOUT_OUT_OF_RANGE,
            "MaxParticipantDuration is out of range",
        )

    audio_only = bool(spec.audio_only)
    codecs: tuple[str, ...] = ("VP8",)
    if spec.video_codecs is not None:
        upper = tuple(dict.fromkeys(c.upper() for c in spec.video_codecs))
        bad = [c for c in upper if c not in VIDEO_CODECS]
        if bad or not upper:
            raise errors.RoomError(f"VideoCodecs is invalid: {', '.join(bad) or 'empty'}")
        codecs = upper
    if audio_only:
        codecs = ()

    incompatible = errors.Code.ROOM_INVALID_PARAMETERS
    if room_type not in RECORDABLE_TYPES and (
        spec.record_participants_on_connect or spec.recording_rules is not None
    ):
        raise errors.RoomError(
            f"Recording is not available for {room_type.value} rooms", code=incompatible
        )
    if room_type not in RECORDABLE_TYPES and spec.transcribe_participants_on_connect:
        raise errors.RoomError(
            f"Transcriptions are not available for {room_type.value} rooms", code=incompatible
        )
    if spec.large_room and room_type is not RoomType.GROUP:
        raise errors.RoomError("LargeRoom is only for group rooms", code=incompatible)
    if spec.media_region is not None and spec.media_region not in MEDIA_REGIONS:
        raise errors.RoomError(code=errors.Code.ROOM_MEDIA_REGION_INVALID)
    if spec.recording_rules is not None:
        rules = parse_rules(spec.recording_rules, kind="recording")
    elif spec.record_participants_on_connect:
        rules = (Rule(type="include", all=True),)
    else:
        rules = ()

    transcriptions: dict[str, Any] | None = None
    if spec.transcriptions_configuration is not None:
        try:
            loaded = json.loads(spec.transcriptions_configuration)
        except (ValueError, RecursionError):
            loaded = None
        if not isinstance(loaded, dict):
            raise errors.InvalidParameterError("TranscriptionsConfiguration must be a JSON object")
        transcriptions = normalize_configuration(loaded, name="TranscriptionsConfiguration")

    record_on_connect = bool(spec.record_participants_on_connect)
    return Room(
        sid=sid,
        account_sid=account_sid,
        unique_name=unique_name if unique_name is not None else sid,
        status=RoomStatus.IN_PROGRESS,
        type=room_type,
        date_created=now,
        date_updated=now,
        status_callback=spec.status_callback,
        status_callback_method=method,
        max_participants=max_participants,
        max_participant_duration=spec.max_participant_duration or DEFAULT_PARTICIPANT_DURATION,
        max_concurrent_published_tracks=limits.max_concurrent_published_tracks,
        record_participants_on_connect=record_on_connect,
        transcribe_participants_on_connect=bool(spec.transcribe_participants_on_connect),
        transcriptions_configuration=transcriptions,
        video_codecs=codecs,
        media_region=spec.media_region or DEFAULT_MEDIA_REGION,
        audio_only=audio_only,
        empty_room_timeout=spec.empty_room_timeout or DEFAULT_TIMEOUT_MINUTES,
        unused_room_timeout=spec.unused_room_timeout or DEFAULT_TIMEOUT_MINUTES,
        large_room=bool(spec.large_room),
        recording_rules=rules,
        recording_rules_updated=now,
        empty_since=now,
    )
