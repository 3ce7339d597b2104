"""Typed events become Twilio's status callback parameters (rest-api.md §8.1, §8.2), once:
every name, value and their order, as twilio's RequestValidator and users' handlers read them."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from parlour.domain import events
from parlour.domain.events import CallbackDelivery
from parlour.domain.participants import Participant, ParticipantStatus
from parlour.domain.recordings import FailedOperation, Recording, RecordingCodec
from parlour.domain.rooms import RoomSpec, validate_room_spec
from parlour.domain.sids import AccountSid, ParticipantSid, RecordingSid, RoomSid, TrackSid
from parlour.domain.tracks import PublishedTrack, TrackKind
from parlour.protocol import webhooks as wire
from parlour.webhooks.sender import _request_params, status_callback

NOW = dt.datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(seconds=75.4)
AC, RM, PA = "AC" + "1" * 32, "RM" + "2" * 32, "PA" + "3" * 32
MT, RT = "MT" + "4" * 32, "RT" + "5" * 32
ROOM = validate_room_spec(
    RoomSpec(unique_name="Daily standup", status_callback="https://example.com/cb"),
    sid=RoomSid(RM),
    account_sid=AccountSid(AC),
    now=NOW,
)
ALICE = Participant(
    sid=ParticipantSid(PA),
    room_sid=ROOM.sid,
    account_sid=ROOM.account_sid,
    identity="alice smith",
    status=ParticipantStatus.CONNECTED,
    date_created=NOW,
    date_updated=NOW,
)
CAM = PublishedTrack(
    sid=TrackSid(MT),
    room_sid=ROOM.sid,
    participant_sid=ALICE.sid,
    name="cam",
    kind=TrackKind.VIDEO,
    enabled=True,
    date_created=NOW,
    date_updated=NOW,
)
REC = Recording.for_track(
    sid=RecordingSid(RT),
    account_sid=ROOM.account_sid,
    room_sid=ROOM.sid,
    participant_sid=ALICE.sid,
    source_sid=CAM.sid,
    track_name="cam",
    codec=RecordingCodec.VP8,
    now=NOW,
)
ROOM_PARAMS = [
    ("RoomStatus", "in-progress"),
    ("RoomType", "group"),
    ("RoomSid", RM),
    ("RoomName", "Daily standup"),
]


def params(event: events.RoomEvent | events.RecordingEvent, seq: int = 0) -> list[tuple[str, str]]:
    room = event.room if event.room is not None else ROOM
    return status_callback(event, room, sequence_number=seq).to_params()


def tail(name: str, seq: int = 0, when: str = "2024-01-02T03:04:05.678Z") -> list[tuple[str, str]]:
    return [("SequenceNumber", str(seq)), ("StatusCallbackEvent", name), ("Timestamp", when)]


def test_room_created() -> None:
    callback = status_callback(events.RoomCreated(timestamp=NOW, room=ROOM), ROOM)
    assert isinstance(callback, wire.RoomStatusCallback)
    assert callback.to_params() == ROOM_PARAMS + tail("room-created") + [("AccountSid", AC)]


def test_room_ended_carries_the_rooms_duration_and_status() -> None:
    ended = ROOM.completed(LATER)
    assert params(events.RoomEnded(timestamp=LATER, room=ended), 7) == [
        ("RoomStatus", "completed"),
        *ROOM_PARAMS[1:],
        ("RoomDuration", "75"),
        *tail("room-ended", 7, "2024-01-02T03:05:21.078Z"),
        ("AccountSid", AC),
    ]


def test_participant_events() -> None:
    participant = [("ParticipantStatus", "connected"), ("ParticipantIdentity", "alice smith")]
    connected = events.ParticipantConnected(timestamp=NOW, room=ROOM, participant=ALICE)
    assert params(connected, 1) == [
        *ROOM_PARAMS,
        *participant,
        *tail("participant-connected", 1),
        ("ParticipantSid", PA),
        ("AccountSid", AC),
    ]
    left = ALICE.disconnected(LATER)
    disconnected = events.ParticipantDisconnected(timestamp=NOW, room=ROOM, participant=left)
    assert params(disconnected, 2) == [
        *ROOM_PARAMS,
        ("ParticipantStatus", "disconnected"),
        ("ParticipantIdentity", "alice smith"),
        ("ParticipantDuration", "75"),
        *tail("participant-disconnected", 2),
        ("ParticipantSid", PA),
        ("AccountSid", AC),
    ]


@pytest.mark.parametrize(
    "kind",
    [events.TrackAdded, events.TrackRemoved, events.TrackEnabled, events.TrackDisabled],
)
def test_track_events(kind: type[events.TrackEvent]) -> None:
    event = kind(timestamp=NOW, room=ROOM, participant=ALICE, track=CAM)
    assert params(event, 3) == [
        *ROOM_PARAMS,
        ("ParticipantStatus", "connected"),
        ("ParticipantIdentity", "alice smith"),
        ("TrackSid", MT),
        ("TrackKind", "video"),
        ("TrackName", "cam"),
        *tail(kind.name, 3),
        ("ParticipantSid", PA),
        ("AccountSid", AC),
    ]


def recording_params(*extra: tuple[str, str], identity: str = "alice") -> list[tuple[str, str]]:
    return [
        *ROOM_PARAMS,
        ("RecordingSid", RT),
        ("RecordingUri", f"/v1/Recordings/{RT}"),
        ("SourceSid", MT),
        ("TrackName", "cam"),
        ("ParticipantSid", PA),
        ("ParticipantIdentity", identity),
        ("Container", "mkv"),
        ("Codec", "VP8"),
        ("Type", "video"),
        ("OffsetFromTwilioVideoEpoch", "1704164645678"),
        *extra,
    ]


def test_recording_started() -> None:
    event = events.RecordingStarted(timestamp=NOW, recording=REC, participant_identity="alice")
    callback = status_callback(event, ROOM, sequence_number=4)
    assert isinstance(callback, wire.RecordingStatusCallback)
    assert callback.to_params() == recording_params(
        *tail("recording-started", 4), ("AccountSid", AC)
    )


def test_recording_completed_adds_media_duration_and_size() -> None:
    done = REC.completed(LATER, duration_ms=61_400, size=123)
    event = events.RecordingCompleted(
        timestamp=NOW, recording=done, room=ROOM, participant_identity="alice"
    )
    media = [("MediaUri", f"/v1/Recordings/{RT}/Media"), ("Duration", "61"), ("Size", "123")]
    assert params(event, 5) == recording_params(
        *media, *tail("recording-completed", 5), ("AccountSid", AC)
    )
    external = events.RecordingCompleted(
        timestamp=NOW,
        recording=replace(done, media_external_location="https://bucket.example/x.mkv"),
        room=ROOM,
        participant_identity="alice",
    )
    assert ("MediaExternalLocation", "https://bucket.example/x.mkv") in params(external)


@pytest.mark.parametrize("operation", list(FailedOperation))
def test_recording_failed_says_which_operation(operation: FailedOperation) -> None:
    failed = REC.failed(LATER, "disk full")
    event = events.RecordingFailed(timestamp=NOW, recording=failed, failed_operation=operation)
    assert params(event) == recording_params(
        ("FailedOperation", operation.value),
        *tail("recording-failed"),
        ("AccountSid", AC),
        identity="",  # unknown after a crash
    )
    default = events.RecordingFailed(timestamp=NOW, recording=failed)
    assert dict(params(default))["FailedOperation"] == "RecordingComplete"


def test_the_room_of_a_recording_event_describes_it() -> None:
    ended = ROOM.completed(LATER)
    event = events.RecordingStarted(timestamp=NOW, recording=REC, room=ended)
    assert dict(status_callback(event, ended).to_params())["RoomStatus"] == "completed"


def test_stored_parameters_are_sent_with_their_sequence_number_in_twilios_order() -> None:
    done = REC.completed(LATER, duration_ms=61_400, size=123)
    event = events.RecordingCompleted(timestamp=NOW, recording=done, participant_identity="alice")
    stored = {k: v for k, v in params(event) if k != "SequenceNumber"}
    delivery = CallbackDelivery(
        account_sid=REC.account_sid,
        resource_sid=REC.room_sid,
        event="recording-completed",
        url="https://example.com/cb",
        method="POST",
        params=dict(reversed(stored.items())),  # a store need not keep the order
        date_created=NOW,
        next_attempt_at=NOW,
        sequence_number=4,
    )
    assert _request_params(delivery) == params(event, 4)
