"""Domain events, named as Twilio's status callbacks name them, and their delivery records.

They are plain data; the `EventSink` port fans them out (logs, webhooks, recordings).
`Event.data` carries Twilio's callback parameters that describe the event's subject
(`RoomName`, `ParticipantIdentity`, `TrackKind`, `RoomDuration` …); `room_event` and
`participant_event` fill them from the records, so every emitter says the same things.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field

from parlour.domain.participants import Participant
from parlour.domain.recordings import FailedOperation, Recording, RecordingStatus
from parlour.domain.rooms import Room
from parlour.domain.tracks import PublishedTrack

__all__ = [
    "CallbackDelivery",
    "DeliveryStatus",
    "Event",
    "participant_event",
    "recording_event",
    "room_event",
]


@dataclass(frozen=True)
class Event:
    """One thing that happened in a room.

    `name` is Twilio's `StatusCallbackEvent` (`room-created`, `room-ended`,
    `participant-connected`, `participant-disconnected`, `track-added`, …).
    """

    name: str
    account_sid: str
    room_sid: str
    timestamp: dt.datetime
    participant_sid: str | None = None
    track_sid: str | None = None
    data: dict[str, str] = field(default_factory=dict)


def _room_data(room: Room) -> dict[str, str]:
    return {
        "RoomName": room.unique_name,
        "RoomType": room.type.value,
        "RoomStatus": room.status.value,
    }


def room_event(name: str, room: Room, now: dt.datetime, **data: str) -> Event:
    """A room-level event (`room-created`, `room-ended`) with the room's name, type, status."""
    return Event(
        name=name,
        account_sid=room.account_sid,
        room_sid=room.sid,
        timestamp=now,
        data=_room_data(room) | data,
    )


def participant_event(
    name: str,
    participant: Participant,
    now: dt.datetime,
    *,
    room: Room | None = None,
    track: PublishedTrack | None = None,
    **data: str,
) -> Event:
    """A participant or track event, with identity, status and the track's kind and name.

    Args:
        room: when the emitter has it, its name/type/status as of this event; otherwise a
            consumer that needs them reads the stored room.
    """
    values = {
        "ParticipantIdentity": participant.identity,
        "ParticipantStatus": participant.status.value,
    }
    if room is not None:
        values |= _room_data(room)
    if track is not None:
        values |= {"TrackKind": track.kind.value, "TrackName": track.name}
    return Event(
        name=name,
        account_sid=participant.account_sid,
        room_sid=participant.room_sid,
        participant_sid=participant.sid,
        track_sid=track.sid if track is not None else None,
        timestamp=now,
        data=values | data,
    )


def recording_event(
    name: str,
    recording: Recording,
    now: dt.datetime,
    *,
    room: Room | None = None,
    participant_identity: str | None = None,
    failed_operation: FailedOperation | None = None,
) -> Event:
    """A `recording-started`, `recording-completed` or `recording-failed` event.

    `data` holds the callback parameters of rest-api.md §8.2 (relative `RecordingUri` and
    `MediaUri`; `Duration`, `Size` and `MediaUri` on `recording-completed` only;
    `FailedOperation` on `recording-failed` only).
    """
    uri = f"/v1/Recordings/{recording.sid}"
    values = {
        "RecordingSid": recording.sid,
        "SourceSid": recording.source_sid,
        "TrackName": recording.track_name,
        "RecordingUri": uri,
        "Container": recording.container_format.value,
        "Codec": recording.codec.value,
        "Type": recording.type.value,
        "OffsetFromTwilioVideoEpoch": str(recording.offset),
    }
    if room is not None:
        values |= _room_data(room)
    if participant_identity is not None:
        values["ParticipantIdentity"] = participant_identity
    if name == "recording-completed" and recording.status is RecordingStatus.COMPLETED:
        values |= {
            "MediaUri": f"{uri}/Media",
            "Duration": str(recording.duration),
            "Size": str(recording.size),
        }
        if recording.media_external_location:
            values["MediaExternalLocation"] = recording.media_external_location
    if name == "recording-failed":
        values["FailedOperation"] = (failed_operation or FailedOperation.COMPLETE).value
    return Event(
        name=name,
        account_sid=recording.account_sid,
        room_sid=recording.room_sid,
        participant_sid=recording.participant_sid,
        track_sid=recording.source_sid,
        timestamp=now,
        data=values,
    )


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
