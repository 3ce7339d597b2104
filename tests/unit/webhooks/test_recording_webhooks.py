"""Recording events become §8.2 status callback parameters (room ones from the stored room)."""

from __future__ import annotations

import datetime as dt

from parlour.domain.events import CallbackDelivery, recording_event
from parlour.domain.recordings import FailedOperation, Recording, RecordingCodec
from parlour.domain.rooms import RoomSpec, validate_room_spec
from parlour.domain.sids import AccountSid, ParticipantSid, RecordingSid, RoomSid, TrackSid, new_sid
from parlour.webhooks.sender import _request_params, callback_params

NOW = dt.datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC)
ROOM = validate_room_spec(
    RoomSpec(unique_name="standup"),
    sid=RoomSid(new_sid("RM")),
    account_sid=AccountSid(new_sid("AC")),
    now=NOW,
)
REC = Recording.for_track(
    sid=RecordingSid(new_sid("RT")),
    account_sid=ROOM.account_sid,
    room_sid=ROOM.sid,
    participant_sid=ParticipantSid(new_sid("PA")),
    source_sid=TrackSid(new_sid("MT")),
    track_name="cam",
    codec=RecordingCodec.VP8,
    now=NOW,
)


def test_completed_parameters() -> None:
    done = REC.completed(NOW, duration_ms=61_400, size=123)
    params = callback_params(
        recording_event("recording-completed", done, NOW, participant_identity="alice"), ROOM
    )
    assert params["StatusCallbackEvent"] == "recording-completed"
    assert (params["RoomName"], params["RoomType"], params["RoomStatus"]) == (
        "standup",
        "group",
        "in-progress",
    )
    assert params["RecordingSid"] == REC.sid and params["SourceSid"] == REC.source_sid
    assert (params["Container"], params["Codec"], params["Type"]) == ("mkv", "VP8", "video")
    assert (params["Duration"], params["Size"]) == ("61", "123")
    assert params["MediaUri"] == f"/v1/Recordings/{REC.sid}/Media"
    assert params["Timestamp"] == "2024-01-02T03:04:05.678Z"
    assert (
        params["ParticipantSid"] == REC.participant_sid and params["ParticipantIdentity"] == "alice"
    )
    assert "SequenceNumber" not in params

    delivery = CallbackDelivery(
        account_sid=REC.account_sid,
        resource_sid=REC.room_sid,
        event="recording-completed",
        url="https://example.com/cb",
        method="POST",
        params=params,
        date_created=NOW,
        next_attempt_at=NOW,
        sequence_number=4,
    )
    sent = dict(_request_params(delivery))
    assert sent == params | {"SequenceNumber": "4"}


def test_failed_parameters() -> None:
    failed = REC.failed(NOW, "disk full")
    event = recording_event("recording-failed", failed, NOW, failed_operation=FailedOperation.START)
    params = callback_params(event, ROOM)
    assert params["FailedOperation"] == "RecordingStart"
    assert "MediaUri" not in params and "Duration" not in params
