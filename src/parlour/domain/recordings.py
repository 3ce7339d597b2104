"""Track recordings: the record, its status machine, and container/codec metadata.

Twilio records every selected published track on its own, audio to Matroska audio (`.mka`,
Opus) and video to Matroska video (`.mkv`, VP8 or H.264), straight from the forwarded RTP
(never transcoded). Each start of a track recording gets a new `RT…` SID.

::

    processing ──► completed ──► deleted
         │                          ▲
         └──────► failed ───────────┘

`processing` while media is being written; `completed` once the file is finalized (duration
and size known); `failed` with a reason when it could not be started, finished or stored
(a server killed mid-recording is recovered at the next start: completed if its file is
playable, else failed, never left `processing`); `deleted` once DELETE removed the media
(the metadata stays, as on Twilio).

`offset` is in milliseconds since the Unix epoch: the wall-clock time of the recording's
first frame (time 0 of its file). Twilio defines it as the time since "an arbitrary point
common to all group rooms"; the Unix epoch is such a point, so `offset` differences line
recordings of one room up for compositions. It is the recording's creation time until the
recording completes, then the first frame's arrival time (which may be later, e.g. a video
recording starts at its first keyframe).
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, replace

from parlour.domain.media_settings import Envelope
from parlour.domain.sids import AccountSid, ParticipantSid, RecordingSid, RoomSid, TrackSid

__all__ = [
    "ContainerFormat",
    "FailedOperation",
    "InvalidTransition",
    "Recording",
    "RecordingCodec",
    "RecordingResult",
    "RecordingStatus",
    "RecordingType",
    "codec_from_name",
    "duration_seconds",
    "unix_ms",
]


class RecordingStatus(enum.StrEnum):
    PROCESSING = "processing"
    COMPLETED = "completed"
    DELETED = "deleted"
    FAILED = "failed"


class RecordingType(enum.StrEnum):
    AUDIO = "audio"
    VIDEO = "video"
    DATA = "data"


class ContainerFormat(enum.StrEnum):
    MKA = "mka"
    MKV = "mkv"

    @property
    def content_type(self) -> str:
        """The `Content-Type` Twilio serves the media with."""
        return "audio/x-matroska" if self is ContainerFormat.MKA else "video/x-matroska"


class RecordingCodec(enum.StrEnum):
    """Twilio's enum values (upper case; the spec's examples say "opus", the enum `OPUS`)."""

    VP8 = "VP8"
    H264 = "H264"
    OPUS = "OPUS"
    PCMU = "PCMU"


class FailedOperation(enum.StrEnum):
    """`FailedOperation` of a `recording-failed` callback (rest-api.md §8.2)."""

    START = "RecordingStart"
    COMPLETE = "RecordingComplete"
    UPLOAD = "RecordingUpload"


_RECORDABLE = {
    "opus": RecordingCodec.OPUS,
    "vp8": RecordingCodec.VP8,
    "h264": RecordingCodec.H264,
}


def codec_from_name(name: str) -> RecordingCodec | None:
    """The recording codec for an RTP codec name (`opus`, `VP8`, `H264`), if we record it.

    PCMU is in Twilio's enum but Parlour's SFU never negotiates it, so it is not recorded.
    """
    return _RECORDABLE.get(name.strip().lower())


def duration_seconds(duration_ms: int) -> int:
    """Twilio's rounding: to the nearest second, and a sub-second recording lasts 1 s."""
    if duration_ms <= 0:
        return 0
    return max(1, (duration_ms + 500) // 1000)


def unix_ms(when: dt.datetime) -> int:
    """Milliseconds since the Unix epoch (the epoch of `offset`)."""
    return (when - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(milliseconds=1)


class InvalidTransition(ValueError):
    """A status change the recording state machine does not allow."""


_NEXT: dict[RecordingStatus, frozenset[RecordingStatus]] = {
    RecordingStatus.PROCESSING: frozenset({RecordingStatus.COMPLETED, RecordingStatus.FAILED}),
    RecordingStatus.COMPLETED: frozenset({RecordingStatus.DELETED}),
    RecordingStatus.FAILED: frozenset({RecordingStatus.DELETED}),
    RecordingStatus.DELETED: frozenset(),
}


@dataclass(frozen=True)
class RecordingResult:
    """What a finished (or recovered) recording file turned out to be.

    Args:
        duration_ms: media duration in the file (first frame at 0).
        size: bytes stored; 0 when no frame was ever written (then there is no file).
        frames: frames written.
        first_arrival: monotonic time the first written frame arrived (None if none).
        dropped: packets dropped because the writer fell behind.
        error: why the file could not be finished or stored (then the recording fails).
        failed_operation: which step failed, with `error`.
    """

    duration_ms: int = 0
    size: int = 0
    frames: int = 0
    first_arrival: float | None = None
    dropped: int = 0
    error: str | None = None
    failed_operation: FailedOperation | None = None


@dataclass(frozen=True)
class Recording:
    """A track recording as stored and served (`video.v1.recording` / `room_recording`)."""

    sid: RecordingSid
    account_sid: AccountSid
    room_sid: RoomSid
    participant_sid: ParticipantSid
    source_sid: TrackSid
    track_name: str
    type: RecordingType
    container_format: ContainerFormat
    codec: RecordingCodec
    status: RecordingStatus
    date_created: dt.datetime
    date_updated: dt.datetime
    offset: int
    duration: int = 0
    size: int = 0
    media_external_location: str | None = None
    status_callback: str | None = None
    status_callback_method: str = "POST"
    failure_reason: str | None = None
    #: The AWS credential (`CR…`) of the bucket holding the media; None: local storage.
    media_credentials_sid: str | None = None
    #: How the stored file is encrypted (EncryptionEnabled); None: plain.
    encryption: Envelope | None = None
    #: The public key (`CR…`) the media is encrypted for (set when the recording starts).
    encryption_key_sid: str | None = None

    @classmethod
    def for_track(
        cls,
        *,
        sid: RecordingSid,
        account_sid: AccountSid,
        room_sid: RoomSid,
        participant_sid: ParticipantSid,
        source_sid: TrackSid,
        track_name: str,
        codec: RecordingCodec,
        now: dt.datetime,
        status_callback: str | None = None,
        status_callback_method: str = "POST",
    ) -> Recording:
        """A new `processing` recording of a track; type and container follow the codec."""
        audio = codec in (RecordingCodec.OPUS, RecordingCodec.PCMU)
        return cls(
            sid=sid,
            account_sid=account_sid,
            room_sid=room_sid,
            participant_sid=participant_sid,
            source_sid=source_sid,
            track_name=track_name or source_sid,
            type=RecordingType.AUDIO if audio else RecordingType.VIDEO,
            container_format=ContainerFormat.MKA if audio else ContainerFormat.MKV,
            codec=codec,
            status=RecordingStatus.PROCESSING,
            date_created=now,
            date_updated=now,
            offset=unix_ms(now),
            status_callback=status_callback,
            status_callback_method=status_callback_method,
        )

    @property
    def file_name(self) -> str:
        """`RT….mka` / `RT….mkv`: files are named by the recording SID."""
        return f"{self.sid}.{self.container_format.value}"

    @property
    def media_key(self) -> str:
        """Where the media lives in the `MediaStorage`."""
        return f"recordings/{self.file_name}"

    @property
    def grouping_sids(self) -> dict[str, str]:
        return {"room_sid": self.room_sid, "participant_sid": self.participant_sid}

    @property
    def encrypted(self) -> bool:
        """Stored encrypted for the account's public key (EncryptionEnabled): Parlour cannot
        read it back, so it cannot be composed (as on Twilio)."""
        return self.encryption is not None or self.encryption_key_sid is not None

    @property
    def has_media(self) -> bool:
        """Whether `/Media` can serve it (completed, with at least one frame)."""
        return self.status is RecordingStatus.COMPLETED and self.size > 0

    def _to(self, status: RecordingStatus, now: dt.datetime) -> Recording:
        if status not in _NEXT[self.status]:
            raise InvalidTransition(f"recording {self.sid}: {self.status} → {status}")
        return replace(self, status=status, date_updated=now)

    def completed(
        self, now: dt.datetime, *, duration_ms: int, size: int, offset: int | None = None
    ) -> Recording:
        """The file is final: duration (Twilio-rounded seconds), size, exact offset."""
        done = self._to(RecordingStatus.COMPLETED, now)
        return replace(
            done,
            duration=duration_seconds(duration_ms),
            size=size,
            offset=self.offset if offset is None else offset,
        )

    def failed(
        self, now: dt.datetime, reason: str, *, duration_ms: int = 0, size: int = 0
    ) -> Recording:
        return replace(
            self._to(RecordingStatus.FAILED, now),
            failure_reason=reason[:512],
            duration=duration_seconds(duration_ms),
            size=size,
        )

    def deleted(self, now: dt.datetime) -> Recording:
        """The media is gone; the metadata (size and duration included) stays."""
        return self._to(RecordingStatus.DELETED, now)
