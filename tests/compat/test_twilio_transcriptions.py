"""The official `twilio` package against Parlour's real-time transcriptions resources
(`/v1/Rooms/{RoomSid}/Transcriptions`): create (202), fetch, list, update (202)."""

from __future__ import annotations

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from parlour.testing import ServerThread
from tests.helpers import Account

pytestmark = pytest.mark.integration


def test_create_fetch_update_and_list_transcriptions(
    client: Client, server: ServerThread, account: Account
) -> None:
    room = client.video.v1.rooms.create(unique_name="rest-captions")
    rooms = client.video.v1.rooms(room.sid)
    assert rooms.transcriptions.list() == []
    created = rooms.transcriptions.create(configuration={"LanguageCode": "en-US"})
    assert created.ttid.startswith("video_transcriptions_")
    assert created.status == "started"
    assert created.room_sid == room.sid and created.account_sid == account.sid
    assert created.configuration == {"languageCode": "en-US"}
    assert created.start_time is not None and created.end_time is None
    assert created.url == f"{server.base_url}/v1/Rooms/{room.sid}/Transcriptions/{created.ttid}"
    fetched = rooms.transcriptions(created.ttid).fetch()
    assert fetched.ttid == created.ttid and fetched.status == "started"
    stopped = rooms.transcriptions(created.ttid).update(status="stopped")
    assert stopped.status == "stopped"
    changed = rooms.transcriptions(created.ttid).update(
        configuration={"languageCode": "en-US", "partialResults": True},
    )
    assert changed.configuration == {"languageCode": "en-US", "partialResults": True}
    second = rooms.transcriptions.create()
    assert second.ttid != created.ttid
    assert [t.ttid for t in rooms.transcriptions.list()] == [
        created.ttid,
        second.ttid,
    ]
    rooms.update(status="completed")
    ended = rooms.transcriptions(second.ttid).fetch()
    assert ended.status == "stopped" and ended.duration is not None


def test_errors_are_twilio_errors(client: Client) -> None:
    room = client.video.v1.rooms.create()
    with pytest.raises(TwilioRestException) as err:
        client.video.v1.rooms(room.sid).transcriptions("video_transcriptions_0").fetch()
    assert (err.value.status, err.value.code) == (404, 20404)
    with pytest.raises(TwilioRestException) as err:
        client.video.v1.rooms(room.sid).transcriptions.create(configuration={"languageCode": 1})
    assert (err.value.status, err.value.code) == (400, 20001)
    with pytest.raises(TwilioRestException) as err:
        client.video.v1.rooms.create(type="go", transcribe_participants_on_connect=True)
    assert (err.value.status, err.value.code) == (400, 53114)


def test_transcribe_participants_on_connect_starts_with_the_room(client: Client) -> None:
    room = client.video.v1.rooms.create(
        transcribe_participants_on_connect=True,
        transcriptions_configuration={"LanguageCode": "en-US", "profanityFilter": True},
    )
    (started,) = client.video.v1.rooms(room.sid).transcriptions.list()
    assert started.status == "started"
    assert started.configuration == {"languageCode": "en-US", "profanityFilter": True}
