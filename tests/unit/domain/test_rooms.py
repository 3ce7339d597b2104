"""Room creation rules and the status machine (pure)."""

from __future__ import annotations

import datetime as dt

import pytest

from parlour.domain import errors
from parlour.domain.participants import Participant, ParticipantStatus
from parlour.domain.rooms import Room, RoomSpec, RoomStatus, RoomType, validate_room_spec
from parlour.domain.rules import Rule
from parlour.domain.sids import AccountSid, ParticipantSid, RoomSid, is_sid, new_sid

NOW = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
SID = RoomSid("RM" + "a" * 32)
ACCOUNT = AccountSid("AC" + "b" * 32)


def build(**kw: object) -> Room:
    return validate_room_spec(RoomSpec(**kw), sid=SID, account_sid=ACCOUNT, now=NOW)  # type: ignore[arg-type]


def test_defaults() -> None:
    room = build()
    assert room.unique_name == SID and room.type is RoomType.GROUP
    assert room.status is RoomStatus.IN_PROGRESS and room.max_participants == 50
    assert room.video_codecs == ("VP8",) and room.recording_rules == ()
    assert room.empty_since == NOW and not room.ever_joined


@pytest.mark.parametrize(
    ("room_type", "maximum"), [("group", 50), ("group-small", 4), ("peer-to-peer", 10), ("go", 2)]
)
def test_max_participants_per_type(room_type: str, maximum: int) -> None:
    assert build(type=room_type).max_participants == maximum
    assert build(type=room_type, max_participants=maximum).max_participants == maximum
    with pytest.raises(errors.RoomError) as err:
        build(type=room_type, max_participants=maximum + 1)
    assert err.value.code == 53107


def test_audio_only_has_no_video_codecs() -> None:
    assert build(audio_only=True, video_codecs=["VP8"]).video_codecs == ()


def test_codecs_are_normalised() -> None:
    assert build(video_codecs=["h264", "VP8", "H264"]).video_codecs == ("H264", "VP8")


def test_record_on_connect_sets_include_all() -> None:
    room = build(record_participants_on_connect=True)
    assert room.recording_rules == (Rule(type="include", all=True),)
    assert room.record_participants_on_connect


def test_explicit_recording_rules_win() -> None:
    room = build(
        record_participants_on_connect=True, recording_rules='[{"type":"include","kind":"audio"}]'
    )
    assert room.recording_rules == (Rule(type="include", kind="audio"),)


@pytest.mark.parametrize(
    ("kw", "code"),
    [
        ({"unique_name": "   "}, 53100),
        ({"unique_name": "RM" + "0" * 32}, 53100),
        ({"unique_name": "a" * 129}, 53101),
        ({"unique_name": "tab\there"}, 53102),
        ({"type": "mega"}, 53108),
        ({"empty_room_timeout": 61}, 53109),
        ({"unused_room_timeout": 0}, 53109),
        ({"max_participant_duration": 599}, 53109),
        ({"status_callback_method": "PATCH"}, 53110),
        ({"status_callback": "http://"}, 53111),
        ({"status_callback": "http://host:notaport/"}, 53111),
        ({"video_codecs": []}, 53103),
        ({"media_region": "mars1"}, 53115),
        ({"type": "group-small", "large_room": True}, 53114),
        ({"type": "peer-to-peer", "record_participants_on_connect": True}, 53114),
        ({"type": "go", "recording_rules": '[{"type":"include","all":true}]'}, 53114),
        ({"type": "go", "transcribe_participants_on_connect": True}, 53114),
        ({"transcriptions_configuration": '{"languageCode": "e n"}'}, 20001),
        ({"transcriptions_configuration": '{"partialResults": 1}'}, 20001),
        ({"transcriptions_configuration": "[" * 5000 + "]" * 5000}, 20001),
    ],
)
def test_invalid_specs(kw: dict[str, object], code: int) -> None:
    with pytest.raises(errors.TwilioError) as err:
        build(**kw)
    assert err.value.code == code and err.value.status == 400


def test_an_empty_unique_name_is_no_name() -> None:
    room = build(unique_name="")
    assert room.unique_name == room.sid


def test_media_regions_are_twilios() -> None:
    assert build(media_region="de1").media_region == "de1"
    assert build().media_region == "us1"


def test_name_limits_accept_unicode() -> None:
    assert build(unique_name="Café ☕ room").unique_name == "Café ☕ room"
    assert len(build(unique_name="x" * 128).unique_name) == 128


def test_transcriptions_configuration_must_be_an_object() -> None:
    assert build(
        transcriptions_configuration='{"languageCode": "en-US"}'
    ).transcriptions_configuration == {"languageCode": "en-US"}
    with pytest.raises(errors.InvalidParameterError):
        build(transcriptions_configuration="nope")


def test_completion_and_idle_deadlines() -> None:
    room = build(empty_room_timeout=2, unused_room_timeout=3)
    assert room.idle_deadline(60) == NOW + dt.timedelta(minutes=3)
    joined = Room(**{**vars(room), "ever_joined": True, "empty_since": NOW})
    assert joined.idle_deadline(60) == NOW + dt.timedelta(minutes=2)
    occupied = Room(**{**vars(room), "empty_since": None})
    assert occupied.idle_deadline(60) is None
    ended = room.completed(NOW + dt.timedelta(seconds=90))
    assert ended.status is RoomStatus.COMPLETED and ended.duration == 90
    assert ended.end_time == NOW + dt.timedelta(seconds=90)
    assert ended.idle_deadline(60) is None


def test_participant_disconnect_is_idempotent() -> None:
    p = Participant(
        sid=ParticipantSid("PA" + "c" * 32),
        room_sid=SID,
        account_sid=ACCOUNT,
        identity="a",
        status=ParticipantStatus.CONNECTED,
        date_created=NOW,
        date_updated=NOW,
        start_time=NOW,
    )
    left = p.disconnected(NOW + dt.timedelta(seconds=5))
    assert left.duration == 5 and not left.active
    assert left.disconnected(NOW + dt.timedelta(seconds=50)) is left


def test_sids() -> None:
    sid = new_sid("RM")
    assert is_sid(sid, "RM") and not is_sid(sid, "PA") and not is_sid("RMxyz")
    with pytest.raises(ValueError):
        new_sid("rm")
