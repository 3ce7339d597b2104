"""Domain events: what happened in a room, as typed records, and their delivery records.

Each event class is one of Twilio's `StatusCallbackEvent`s (`name`) and carries the records
it is about, as they were when it happened: `RoomEnded.room` is the completed room with its
duration, `ParticipantDisconnected.participant` the participant that left with its own.
The `EventSink` port fans them out (logs, status callbacks, recordings); each consumer reads
the typed fields it needs, and the status-callback parameters are built from an event once,
in the webhook adapter.

::

    Event
    ├── RoomEvent                   room
    │   ├── RoomCreated             room-created
    │   ├── RoomEnded               room-ended (duration)
    │   └── ParticipantEvent        + participant
    │       ├── ParticipantConnected      participant-connected
    │       ├── ParticipantDisconnected   participant-disconnected (duration)
    │       └── TrackEvent          + track
    │           ├── TrackAdded / TrackRemoved      track-added / track-removed
    │           └── TrackEnabled / TrackDisabled   track-enabled / track-disabled
    │   └── TranscriptionEvent      + transcription
    │       ├── TranscriptionStarted      transcription-started
    │       ├── TranscriptionStopped      transcription-stopped
    │       └── TranscriptionFailed       transcription-failed
    ├── RecordingEvent              recording (room if known, participant identity)
    │   ├── RecordingStarted        recording-started
    │   ├── RecordingCompleted      recording-completed
    │   └── RecordingFailed         recording-failed (failed_operation)
    └── CompositionEvent            composition (hook if a hook created it)
        ├── CompositionEnqueued     composition-enqueued (hook-created only)
        ├── CompositionStarted      composition-started
        ├── CompositionProgress     composition-progress (percentage, seconds remaining)
        ├── CompositionAvailable    composition-available
        ├── CompositionFailed       composition-failed (error)
        └── CompositionHookFailed   composition-hook-failed (hook, room, error; no composition)

Composition events go to the composition's `StatusCallback` (a hook's compositions have the
hook's), never to the room's.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import ClassVar

from parlour.domain.compositions import Composition, CompositionHook
from parlour.domain.participants import Participant
from parlour.domain.recordings import FailedOperation, Recording
from parlour.domain.rooms import Room
from parlour.domain.sids import AccountSid, ParticipantSid, RoomSid
from parlour.domain.tracks import PublishedTrack
from parlour.domain.transcriptions import Transcription

__all__ = [
    "CallbackDelivery",
    "CompositionAvailable",
    "CompositionEnqueued",
    "CompositionEvent",
    "CompositionFailed",
    "CompositionHookFailed",
    "CompositionProgress",
    "CompositionStarted",
    "DeliveryStatus",
    "Event",
    "ParticipantConnected",
    "ParticipantDisconnected",
    "ParticipantEvent",
    "RecordingCompleted",
    "RecordingEvent",
    "RecordingFailed",
    "RecordingStarted",
    "RoomCreated",
    "RoomEnded",
    "RoomEvent",
    "TrackAdded",
    "TrackDisabled",
    "TrackEnabled",
    "TrackEvent",
    "TrackRemoved",
    "TranscriptionEvent",
    "TranscriptionFailed",
    "TranscriptionStarted",
    "TranscriptionStopped",
]


@dataclass(frozen=True, kw_only=True)
class Event:
    """One thing that happened, at `timestamp`; `name` is Twilio's `StatusCallbackEvent`."""

    name: ClassVar[str]
    timestamp: dt.datetime

    def __init_subclass__(cls, *, name: str = "", **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if name:
            cls.name = name

    @property
    def account_sid(self) -> AccountSid:
        raise NotImplementedError

    @property
    def room_sid(self) -> RoomSid:
        raise NotImplementedError

    @property
    def participant_sid(self) -> ParticipantSid | None:
        return None

    @property
    def track_sid(self) -> str | None:
        """The published track's (MT…) SID, or the recorded track's for recordings."""
        return None


@dataclass(frozen=True, kw_only=True)
class RoomEvent(Event):
    """An event of a room; `room` as it was when it happened."""

    room: Room

    @property
    def account_sid(self) -> AccountSid:
        return self.room.account_sid

    @property
    def room_sid(self) -> RoomSid:
        return self.room.sid


class RoomCreated(RoomEvent, name="room-created"):
    """`room-created`."""


class RoomEnded(RoomEvent, name="room-ended"):
    """The room completed; `room` carries its end time and duration."""

    @property
    def duration(self) -> int:
        return self.room.duration or 0


@dataclass(frozen=True, kw_only=True)
class ParticipantEvent(RoomEvent):
    participant: Participant

    @property
    def participant_sid(self) -> ParticipantSid:
        return self.participant.sid


class ParticipantConnected(ParticipantEvent, name="participant-connected"):
    """`participant-connected`."""


class ParticipantDisconnected(ParticipantEvent, name="participant-disconnected"):
    """The participant left; `participant` is disconnected, with its duration."""

    @property
    def duration(self) -> int:
        return self.participant.duration or 0


@dataclass(frozen=True, kw_only=True)
class TrackEvent(ParticipantEvent):
    track: PublishedTrack

    @property
    def track_sid(self) -> str:
        return self.track.sid


class TrackAdded(TrackEvent, name="track-added"):
    """`track-added`."""


class TrackRemoved(TrackEvent, name="track-removed"):
    """`track-removed`."""


class TrackEnabled(TrackEvent, name="track-enabled"):
    """`track-enabled`."""


class TrackDisabled(TrackEvent, name="track-disabled"):
    """`track-disabled`."""


@dataclass(frozen=True, kw_only=True)
class TranscriptionEvent(RoomEvent):
    """The room's transcriptions resource started, stopped or failed (no transcript text:
    that goes to the clients only)."""

    transcription: Transcription


class TranscriptionStarted(TranscriptionEvent, name="transcription-started"):
    """`transcription-started`."""


class TranscriptionStopped(TranscriptionEvent, name="transcription-stopped"):
    """`transcription-stopped` (by REST or with the room's end)."""


class TranscriptionFailed(TranscriptionEvent, name="transcription-failed"):
    """`transcription-failed`: the speech engine could not run."""


@dataclass(frozen=True, kw_only=True)
class RecordingEvent(Event):
    """An event of a track recording; `room` when it is still known (not after a crash of a
    room since deleted), `participant_identity` of the recorded participant if known."""

    recording: Recording
    room: Room | None = None
    participant_identity: str | None = None

    @property
    def account_sid(self) -> AccountSid:
        return self.recording.account_sid

    @property
    def room_sid(self) -> RoomSid:
        return self.recording.room_sid

    @property
    def participant_sid(self) -> ParticipantSid | None:
        return self.recording.participant_sid

    @property
    def track_sid(self) -> str:
        return self.recording.source_sid


class RecordingStarted(RecordingEvent, name="recording-started"):
    """`recording-started`."""


class RecordingCompleted(RecordingEvent, name="recording-completed"):
    """`recording-completed`."""


@dataclass(frozen=True, kw_only=True)
class RecordingFailed(RecordingEvent, name="recording-failed"):
    """`failed_operation` says which step failed (Twilio's `FailedOperation`)."""

    failed_operation: FailedOperation = FailedOperation.COMPLETE


@dataclass(frozen=True, kw_only=True)
class CompositionEvent(Event):
    """An event of a composition; `hook` when a hook created it."""

    composition: Composition
    hook: CompositionHook | None = None

    @property
    def account_sid(self) -> AccountSid:
        return self.composition.account_sid

    @property
    def room_sid(self) -> RoomSid:
        return self.composition.room_sid


class CompositionEnqueued(CompositionEvent, name="composition-enqueued"):
    """A hook created the composition (sent for hook-created compositions only)."""


class CompositionStarted(CompositionEvent, name="composition-started"):
    """Media processing started."""


@dataclass(frozen=True, kw_only=True)
class CompositionProgress(CompositionEvent, name="composition-progress"):
    """About every 10 % of the work."""

    percentage: int
    seconds_remaining: int


class CompositionAvailable(CompositionEvent, name="composition-available"):
    """The media can be downloaded."""


@dataclass(frozen=True, kw_only=True)
class CompositionFailed(CompositionEvent, name="composition-failed"):
    error: str


@dataclass(frozen=True, kw_only=True)
class CompositionHookFailed(Event, name="composition-hook-failed"):
    """A hook could not create a composition of a room that ended (Twilio warning 53631)."""

    hook: CompositionHook
    room: Room
    error: str

    @property
    def account_sid(self) -> AccountSid:
        return self.hook.account_sid

    @property
    def room_sid(self) -> RoomSid:
        return self.room.sid


class DeliveryStatus(enum.StrEnum):
    """Where one status callback stands: `pending` until delivered or given up on."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True)
class CallbackDelivery:
    """One status callback request, kept until it is delivered or given up on.

    Callbacks of one resource (a room) are delivered strictly in `sequence_number` order,
    which the store assigns (0, 1, 2 … per resource) and which is sent as `SequenceNumber`.
    `params` holds every other parameter; `attempts`, `last_status` (HTTP status of the last
    response), `last_error` and `next_attempt_at` record the delivery so far.
    """

    account_sid: str
    resource_sid: str
    event: str
    url: str
    method: str
    params: dict[str, str]
    date_created: dt.datetime
    next_attempt_at: dt.datetime
    id: int | None = None
    sequence_number: int | None = None
    status: DeliveryStatus = DeliveryStatus.PENDING
    attempts: int = 0
    last_status: int | None = None
    last_error: str | None = None
    date_updated: dt.datetime | None = None
    #: The server node delivering it (several nodes: a gone node's are taken over).
    node_id: str | None = None
