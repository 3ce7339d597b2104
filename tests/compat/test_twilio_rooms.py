"""The official `twilio` package (9.13.0), unchanged but for its base URL, against Parlour."""

from __future__ import annotations

import datetime as dt
import json

import httpx
import pytest
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from parlour.testing import ServerThread
from tests.compat.twilio_client import client_for
from tests.helpers import Account, new_account

pytestmark = pytest.mark.integration


def test_create_returns_every_field_typed(client: Client, server: ServerThread) -> None:
    room = client.video.v1.rooms.create(
        unique_name="DailyStandup",
        type="group",
        status_callback="http://127.0.0.1:9/cb",
        status_callback_method="GET",
        max_participants=10,
        record_participants_on_connect=True,
        video_codecs=["VP8", "H264"],
        media_region="ie1",
        audio_only=False,
        max_participant_duration=3600,
        empty_room_timeout=7,
        unused_room_timeout=9,
        large_room=False,
    )
    assert room.sid.startswith("RM") and len(room.sid) == 34
    assert room.unique_name == "DailyStandup"
    assert room.status == "in-progress"
    assert room.type == "group"
    assert isinstance(room.date_created, dt.datetime)
    assert isinstance(room.date_updated, dt.datetime)
    assert room.end_time is None and room.duration is None
    assert room.status_callback == "http://127.0.0.1:9/cb"
    assert room.status_callback_method == "GET"
    assert room.max_participants == 10
    assert room.max_participant_duration == 3600
    assert room.record_participants_on_connect is True
    assert room.video_codecs == ["VP8", "H264"]
    assert room.media_region == "ie1"
    assert room.empty_room_timeout == 7 and room.unused_room_timeout == 9
    assert room.enable_turn is True
    assert room.url == f"{server.base_url}/v1/Rooms/{room.sid}"
    assert room.links == {
        "participants": f"{server.base_url}/v1/Rooms/{room.sid}/Participants",
        "recordings": f"{server.base_url}/v1/Rooms/{room.sid}/Recordings",
        "transcriptions": f"{server.base_url}/v1/Rooms/{room.sid}/Transcriptions",
        "recording_rules": f"{server.base_url}/v1/Rooms/{room.sid}/RecordingRules",
    }
    rules = client.video.v1.rooms(room.sid).recording_rules.fetch()
    assert rules.rules == [{"type": "include", "all": True}]


def test_defaults_like_twilio(client: Client) -> None:
    room = client.video.v1.rooms.create()
    assert room.unique_name == room.sid
    assert room.type == "group"
    assert room.status_callback is None and room.status_callback_method == "POST"
    assert room.max_participants == 50
    assert room.max_participant_duration == 14400
    assert room.empty_room_timeout == 5 and room.unused_room_timeout == 5
    assert room.record_participants_on_connect is False
    assert room.video_codecs == ["VP8"]


def test_fetch_by_sid_and_by_unique_name(client: Client) -> None:
    room = client.video.v1.rooms.create(unique_name="fetch-me")
    assert client.video.v1.rooms(room.sid).fetch().sid == room.sid
    assert client.video.v1.rooms("fetch-me").fetch().sid == room.sid


def test_unique_name_is_unique_among_in_progress_rooms(client: Client) -> None:
    first = client.video.v1.rooms.create(unique_name="only-one")
    with pytest.raises(TwilioRestException) as err:
        client.video.v1.rooms.create(unique_name="only-one")
    assert (err.value.status, err.value.code) == (400, 53113)
    client.video.v1.rooms("only-one").update(status="completed")
    second = client.video.v1.rooms.create(unique_name="only-one")
    assert second.sid != first.sid
    assert client.video.v1.rooms("only-one").fetch().sid == second.sid
    # The completed room is still reachable by its SID, not by its name.
    assert client.video.v1.rooms(first.sid).fetch().status == "completed"


def test_update_to_completed_ends_the_room(client: Client) -> None:
    room = client.video.v1.rooms.create(unique_name="ending")
    ended = client.video.v1.rooms("ending").update(status="completed")
    assert ended.sid == room.sid
    assert ended.status == "completed"
    assert isinstance(ended.end_time, dt.datetime)
    assert ended.duration is not None and ended.duration >= 0
    with pytest.raises(TwilioRestException) as err:
        client.video.v1.rooms(room.sid).update(status="completed")
    assert (err.value.status, err.value.code) == (400, 53112)
    with pytest.raises(TwilioRestException) as err:
        client.video.v1.rooms("ending").fetch()
    assert (err.value.status, err.value.code) == (404, 20404)


def test_update_with_other_status_is_53112(client: Client) -> None:
    room = client.video.v1.rooms.create()
    for status in ("in-progress", "failed", "bogus"):
        with pytest.raises(TwilioRestException) as err:
            client.video.v1.rooms(room.sid).update(status=status)
        assert (err.value.status, err.value.code) == (400, 53112)
    assert client.video.v1.rooms(room.sid).fetch().status == "in-progress"


def test_list_filters(client: Client) -> None:
    a = client.video.v1.rooms.create(unique_name="alpha")
    b = client.video.v1.rooms.create(unique_name="beta")
    c = client.video.v1.rooms.create(unique_name="gamma")
    client.video.v1.rooms(c.sid).update(status="completed")

    in_progress = {r.sid for r in client.video.v1.rooms.list(status="in-progress")}
    assert in_progress == {a.sid, b.sid}
    assert {r.sid for r in client.video.v1.rooms.list()} == {a.sid, b.sid}  # default in-progress
    assert [r.sid for r in client.video.v1.rooms.list(status="completed")] == [c.sid]
    assert [r.sid for r in client.video.v1.rooms.list(unique_name="beta")] == [b.sid]
    assert [r.sid for r in client.video.v1.rooms.list(unique_name="gamma", status="completed")] == [
        c.sid
    ]

    created = a.date_created
    later = created + dt.timedelta(days=1)
    earlier = created - dt.timedelta(days=1)
    assert len(client.video.v1.rooms.list(date_created_after=earlier)) == 2
    assert client.video.v1.rooms.list(date_created_after=later) == []
    assert len(client.video.v1.rooms.list(date_created_before=later)) == 2
    assert client.video.v1.rooms.list(date_created_before=earlier) == []


def test_list_is_newest_first(client: Client) -> None:
    sids = [client.video.v1.rooms.create().sid for _ in range(3)]
    assert [r.sid for r in client.video.v1.rooms.list()] == sids[::-1]


def test_paging_across_pages_with_stream(client: Client, server: ServerThread) -> None:
    created = [client.video.v1.rooms.create(unique_name=f"page-{i}").sid for i in range(7)]
    streamed = [r.sid for r in client.video.v1.rooms.stream(page_size=2)]
    assert streamed == created[::-1]
    assert [r.sid for r in client.video.v1.rooms.list(limit=3)] == created[::-1][:3]

    page = client.video.v1.rooms.page(page_size=3)
    assert [r.sid for r in page] == created[::-1][:3]
    assert page.next_page_url is not None
    assert page.next_page_url.startswith(f"{server.base_url}/v1/Rooms?")
    second = page.next_page()
    assert [r.sid for r in second] == created[::-1][3:6]
    back = second.previous_page()
    assert [r.sid for r in back] == created[::-1][:3]
    last = second.next_page()
    assert [r.sid for r in last] == created[::-1][6:]
    assert last.next_page() is None


def test_paging_keeps_filters_in_next_page_url(client: Client) -> None:
    for i in range(3):
        client.video.v1.rooms.create(unique_name=f"flt-{i}")
        client.video.v1.rooms(f"flt-{i}").update(status="completed")
    client.video.v1.rooms.create(unique_name="still-open")
    page = client.video.v1.rooms.page(status="completed", page_size=2)
    assert "Status=completed" in page.next_page_url
    assert len(list(client.video.v1.rooms.stream(status="completed", page_size=1))) == 3


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"unique_name": "x" * 129}, 53101),
        ({"unique_name": "bad\nname"}, 53102),
        ({"unique_name": "   "}, 53100),
        ({"type": "huge"}, 53108),
        ({"max_participants": 51}, 53107),
        ({"max_participants": 0}, 53107),
        ({"type": "go", "max_participants": 3}, 53107),
        ({"empty_room_timeout": 0}, 53109),
        ({"unused_room_timeout": 61}, 53109),
        ({"max_participant_duration": 86401}, 53109),
        ({"status_callback_method": "PUT"}, 53110),
        ({"status_callback": "not a url"}, 53111),
        ({"status_callback": "ftp://example.com/x"}, 53111),
        ({"status_callback": "https://example.com/" + "a" * 1024}, 53111),
        ({"video_codecs": ["VP9"]}, 53103),
        ({"recording_rules": [{"type": "include"}]}, 53120),
        ({"recording_rules": {"rules": [{"type": "keep", "all": True}]}}, 53120),
    ],
)
def test_validation_errors(client: Client, kwargs: dict[str, object], code: int) -> None:
    with pytest.raises(TwilioRestException) as err:
        client.video.v1.rooms.create(**kwargs)
    assert err.value.status == 400
    assert err.value.code == code
    assert client.video.v1.rooms.list() == []  # nothing was created


def test_recording_rules_update_and_validation(client: Client) -> None:
    room = client.video.v1.rooms.create()
    empty = client.video.v1.rooms(room.sid).recording_rules.fetch()
    assert empty.rules == [] and empty.room_sid == room.sid
    updated = client.video.v1.rooms(room.sid).recording_rules.update(
        rules=[{"type": "include", "kind": "audio"}, {"type": "exclude", "publisher": "bob"}]
    )
    assert updated.rules == [
        {"type": "include", "kind": "audio"},
        {"type": "exclude", "publisher": "bob"},
    ]
    assert isinstance(updated.date_updated, dt.datetime)
    with pytest.raises(TwilioRestException) as err:
        client.video.v1.rooms(room.sid).recording_rules.update(rules=[])
    assert (err.value.status, err.value.code) == (400, 53120)
    kept = client.video.v1.rooms(room.sid).recording_rules.fetch()
    assert kept.rules == updated.rules


def test_auth_token_credentials_work_too(server: ServerThread, account: Account) -> None:
    client = client_for(server, account, api_key=False)
    room = client.video.v1.rooms.create(unique_name="via-auth-token")
    assert client.video.v1.rooms(room.sid).fetch().account_sid == account.sid


@pytest.mark.parametrize("api_key", [True, False])
def test_bad_credentials_are_20003(server: ServerThread, account: Account, api_key: bool) -> None:
    bad = Account(account.sid, "0" * 32, account.key_sid, "wrong-secret")
    client = client_for(server, bad, api_key=api_key)
    with pytest.raises(TwilioRestException) as err:
        client.video.v1.rooms.create()
    assert (err.value.status, err.value.code) == (401, 20003)
    with pytest.raises(TwilioRestException) as err:
        client.video.v1.rooms(f"RM{'0' * 32}").fetch()
    assert (err.value.status, err.value.code) == (401, 20003)
    # twilio-python reports list failures without a code, but the body is Twilio's.
    with pytest.raises(TwilioException) as list_err:
        client.video.v1.rooms.list()
    assert list_err.value.args[1].status_code == 401


def test_accounts_cannot_see_each_other(server: ServerThread, account: Account) -> None:
    mine = client_for(server, account)
    theirs = client_for(server, new_account(server))
    room = mine.video.v1.rooms.create(unique_name="private")
    assert theirs.video.v1.rooms.list() == []
    for ref in (room.sid, "private"):
        with pytest.raises(TwilioRestException) as err:
            theirs.video.v1.rooms(ref).fetch()
        assert (err.value.status, err.value.code) == (404, 20404)
        with pytest.raises(TwilioRestException) as err:
            theirs.video.v1.rooms(ref).update(status="completed")
        assert err.value.status == 404
        with pytest.raises(TwilioException) as list_err:
            theirs.video.v1.rooms(ref).participants.list()
        assert list_err.value.args[1].status_code == 404
    # The same UniqueName is free in another account.
    assert theirs.video.v1.rooms.create(unique_name="private").sid != room.sid
    assert mine.video.v1.rooms(room.sid).fetch().status == "in-progress"


def test_unknown_room_is_20404_with_twilio_body(server: ServerThread, account: Account) -> None:
    r = httpx.get(
        f"{server.base_url}/v1/Rooms/RM{'0' * 32}", auth=(account.sid, account.auth_token)
    )
    assert r.status_code == 404
    body = r.json()
    assert body == {
        "code": 20404,
        "message": f"The requested resource /Rooms/RM{'0' * 32} was not found",
        "more_info": "https://www.twilio.com/docs/errors/20404",
        "status": 404,
    }


def test_recording_rules_accepts_java_object_shape(server: ServerThread, account: Account) -> None:
    client = client_for(server, account)
    room = client.video.v1.rooms.create()
    r = httpx.post(
        f"{server.base_url}/v1/Rooms/{room.sid}/RecordingRules",
        data={"Rules": json.dumps({"rules": [{"type": "include", "all": True}]})},
        auth=(account.sid, account.auth_token),
    )
    assert r.status_code == 200
    assert r.json()["rules"] == [{"type": "include", "all": True}]
