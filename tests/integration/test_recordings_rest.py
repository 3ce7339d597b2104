"""Track recordings end to end on a real server: two participants publish audio and video
through the recording seam (what the SFU's producers will call), the official `twilio`
package reads the resources, plain HTTP follows `/Media` and downloads with ranges, and
PyAV reopens and decodes every file."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import av
import httpx
import pytest
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from parlour.testing import ServerThread
from tests.helpers import Account, new_account
from tests.integration.recording_support import (
    LiveTrack,
    Receiver,
    feed,
    media_packets,
    publish,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SECONDS = 3.0
FORMAT = {"OPUS": ("audio", "mka", "audio/x-matroska", "opus")}
FORMAT |= {c: ("video", "mkv", "video/x-matroska", c.lower()) for c in ("VP8", "H264")}


def client_for(server: ServerThread, account: Account) -> Client:
    client = Client(account.key_sid, account.key_secret, account_sid=account.sid)
    client.video.base_url = server.base_url
    return client


@dataclass
class Recorded:
    account: Account
    client: Client
    room_sid: str
    tracks: list[LiveTrack]
    receiver: Receiver
    started_ms: int
    ended_ms: int


@pytest.fixture(scope="module")
def recorded(server: ServerThread) -> Iterator[Recorded]:
    """A room with two participants, each publishing audio and video for 3 s."""
    account = new_account(server)
    client = client_for(server, account)
    with Receiver(account.auth_token) as receiver:
        room = client.video.v1.rooms.create(
            unique_name="recorded",
            record_participants_on_connect=True,
            status_callback=receiver.url,
        )
        tracks = publish(server, account.sid, room.sid, "alice", [("mic", "OPUS"), ("cam", "VP8")])
        tracks += publish(server, account.sid, room.sid, "bob", [("mic", "OPUS"), ("cam", "H264")])
        assert all(t.tap is not None for t in tracks)
        streams = [
            (t.tap, media_packets(t.codec, SECONDS, ssrc=1000 + i)) for i, t in enumerate(tracks)
        ]
        started_ms = int(time.time() * 1000)
        feed(server, streams)  # type: ignore[arg-type]
        client.video.v1.rooms(room.sid).update(status="completed")
        ended_ms = int(time.time() * 1000)
        wait_until(lambda: len(receiver.events("recording-completed")) == 4)
        yield Recorded(account, client, room.sid, tracks, receiver, started_ms, ended_ms)


def test_four_completed_recordings_with_twilio_fields(
    recorded: Recorded, server: ServerThread
) -> None:
    client = recorded.client
    listed = client.video.v1.recordings.list(grouping_sid=[recorded.room_sid])
    assert len(listed) == 4
    assert {r.status for r in listed} == {"completed"}
    by_track = {r.source_sid: r for r in listed}
    assert set(by_track) == {t.track_sid for t in recorded.tracks}
    for track in recorded.tracks:
        rec = client.video.v1.recordings(by_track[track.track_sid].sid).fetch()
        kind, container, _, _ = FORMAT[track.codec]
        assert rec.sid.startswith("RT") and len(rec.sid) == 34
        assert rec.account_sid == recorded.account.sid
        assert (rec.type, rec.container_format, rec.codec) == (kind, container, track.codec)
        assert rec.duration == pytest.approx(SECONDS, rel=0.1)
        assert rec.size is not None and rec.size > 0
        assert rec.track_name == track.name
        assert rec.grouping_sids == {
            "room_sid": recorded.room_sid,
            "participant_sid": track.participant_sid,
        }
        assert recorded.started_ms - 1000 <= rec.offset <= recorded.started_ms + 2000
        assert rec.media_external_location is None
        assert rec.status_callback == recorded.receiver.url
        assert rec.status_callback_method == "POST"
        assert isinstance(rec.date_created, dt.datetime)
        assert rec.url == f"{server.base_url}/v1/Recordings/{rec.sid}"
        assert rec.links == {"media": f"{rec.url}/Media"}
    offsets = [r.offset for r in listed]
    assert max(offsets) - min(offsets) < 1000  # they started together, so they line up


def test_room_recordings(recorded: Recorded, server: ServerThread) -> None:
    room = recorded.client.video.v1.rooms(recorded.room_sid)
    listed = room.recordings.list()
    assert len(listed) == 4
    one = room.recordings(listed[0].sid).fetch()
    assert one.room_sid == recorded.room_sid
    base = f"{server.base_url}/v1/Rooms/{recorded.room_sid}/Recordings/{one.sid}"
    assert one.url == base and one.links == {"media": f"{base}/Media"}
    assert not hasattr(one, "status_callback")
    assert room.recordings.list(status="completed", source_sid=one.source_sid)[0].sid == one.sid
    assert room.recordings.list(status="processing") == []


def test_list_filters(recorded: Recorded) -> None:
    recordings = recorded.client.video.v1.recordings
    alice = recorded.tracks[0].participant_sid
    assert len(recordings.list(grouping_sid=[alice])) == 2
    assert len(recordings.list(grouping_sid=[recorded.room_sid, alice])) == 2
    assert len(recordings.list(media_type="audio", grouping_sid=[recorded.room_sid])) == 2
    assert len(recordings.list(status="deleted", grouping_sid=[recorded.room_sid])) == 0
    mic = recorded.tracks[0].track_sid
    [only] = recordings.list(source_sid=mic)
    assert only.source_sid == mic
    created = only.date_created
    assert len(recordings.list(date_created_after=created, source_sid=mic)) == 1
    assert recordings.list(date_created_before=created, source_sid=mic) == []
    pages = list(recordings.stream(grouping_sid=[recorded.room_sid], page_size=3))
    assert len(pages) == 4


def test_list_validation(recorded: Recorded, server: ServerThread) -> None:
    auth = (recorded.account.sid, recorded.account.auth_token)
    with httpx.Client(base_url=server.base_url, auth=auth) as http:
        for query in (
            "PageSize=101",
            "PageSize=0",
            "Status=paused",
            "MediaType=text",
            "SourceSid=nope",
            "GroupingSid=RM123",
            "DateCreatedAfter=yesterday",
        ):
            reply = http.get(f"/v1/Recordings?{query}")
            assert reply.status_code == 400, query
            assert reply.json()["code"] == 20001
        assert http.get("/v1/Recordings?PageSize=100").status_code == 200


def media_urls(recorded: Recorded, rec: Any) -> list[str]:
    return [
        f"/v1/Recordings/{rec.sid}/Media",
        f"/v1/Rooms/{recorded.room_sid}/Recordings/{rec.sid}/Media",
    ]


def test_media_redirect_and_ranged_download(
    recorded: Recorded, server: ServerThread, tmp_path: Path
) -> None:
    auth = (recorded.account.sid, recorded.account.auth_token)
    listed = recorded.client.video.v1.recordings.list(grouping_sid=[recorded.room_sid])
    with httpx.Client(base_url=server.base_url, auth=auth) as http, httpx.Client() as anonymous:
        for rec in listed:
            for media in media_urls(recorded, rec):
                reply = http.get(media)
                assert reply.status_code == 302
                target = reply.headers["location"]
                assert reply.json() == {"redirect_to": target}
                assert target.startswith(f"{server.base_url}/media/{recorded.account.sid}/")
            _, container, content_type, codec = FORMAT[rec.codec]

            whole = anonymous.get(target)  # no credentials: the URL is signed
            assert whole.status_code == 200
            assert whole.headers["content-type"] == content_type
            assert whole.headers["accept-ranges"] == "bytes"
            assert whole.headers["content-disposition"] == (
                f'attachment; filename="{rec.sid}.{container}"'
            )
            assert len(whole.content) == rec.size

            part = anonymous.get(target, headers={"Range": "bytes=100-199"})
            assert part.status_code == 206
            assert part.headers["content-range"] == f"bytes 100-199/{rec.size}"
            assert part.content == whole.content[100:200]
            tail = anonymous.get(target, headers={"Range": "bytes=-10"})
            assert tail.status_code == 206 and tail.content == whole.content[-10:]
            beyond = anonymous.get(target, headers={"Range": f"bytes={rec.size}-"})
            assert beyond.status_code == 416
            assert beyond.headers["content-range"] == f"bytes */{rec.size}"
            head = anonymous.head(target)
            assert head.status_code == 200 and head.headers["content-length"] == str(rec.size)

            path = tmp_path / f"{rec.sid}.{container}"
            path.write_bytes(whole.content)
            with av.open(str(path)) as file:
                stream = file.streams[0]
                assert file.format.name.startswith("matroska")
                assert stream.codec_context.name == codec
                assert file.duration is not None
                assert file.duration / 1e6 == pytest.approx(SECONDS, rel=0.1)
                frames = list(file.decode(stream))
            if rec.type == "audio":
                assert sum(f.samples for f in frames) == pytest.approx(SECONDS * 48000, rel=0.1)
            else:
                assert len(frames) == pytest.approx(SECONDS * 30, rel=0.1)


def test_media_with_the_twilio_client(recorded: Recorded, server: ServerThread) -> None:
    rec = recorded.client.video.v1.recordings.list(grouping_sid=[recorded.room_sid], limit=1)[0]
    reply = recorded.client.request(
        "GET", f"{server.base_url}/v1/Recordings/{rec.sid}/Media?Ttl=3600"
    )
    assert reply.status_code == 302
    target = json.loads(reply.text)["redirect_to"]
    query = dict(parse_qsl(urlsplit(target).query))
    assert int(query["Expires"]) - time.time() == pytest.approx(3600, abs=30)
    assert httpx.get(target).content[:4] == b"\x1a\x45\xdf\xa3"  # EBML magic


def test_ttl_disposition_and_tampering(recorded: Recorded, server: ServerThread) -> None:
    auth = (recorded.account.sid, recorded.account.auth_token)
    rec = recorded.client.video.v1.recordings.list(grouping_sid=[recorded.room_sid], limit=1)[0]
    media = f"/v1/Recordings/{rec.sid}/Media"
    with httpx.Client(base_url=server.base_url, auth=auth) as http, httpx.Client() as anonymous:
        for ttl in ("0", "3601", "soon"):
            assert http.get(f"{media}?Ttl={ttl}").status_code == 400
        assert http.get(f"{media}?ContentDisposition=form-data").status_code == 400
        target = http.get(f"{media}?{urlencode({'ContentDisposition': 'inline'})}").headers[
            "location"
        ]
        assert anonymous.get(target).headers["content-disposition"] == "inline"
        parts = urlsplit(target)
        query = dict(parse_qsl(parts.query))
        for change in (
            {"Expires": str(int(query["Expires"]) + 10)},
            {"ContentDisposition": "attachment"},
            {"Signature": query["Signature"][:-2] + "AA"},
        ):
            tampered = f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(query | change)}"
            reply = anonymous.get(tampered)
            assert reply.status_code == 403 and reply.json()["code"] == 20403
        stripped = f"{parts.scheme}://{parts.netloc}{parts.path}"
        assert anonymous.get(stripped).status_code == 403
        short = http.get(f"{media}?Ttl=3").headers["location"]
        assert anonymous.head(short).status_code == 200
        time.sleep(3.1)
        assert anonymous.get(short).status_code == 403  # Ttl honoured


def test_recording_callbacks(recorded: Recorded) -> None:
    events = recorded.receiver.events()
    assert all(valid for params, valid in recorded.receiver.received)
    started = [e for e in events if e["StatusCallbackEvent"] == "recording-started"]
    completed = [e for e in events if e["StatusCallbackEvent"] == "recording-completed"]
    assert len(started) == len(completed) == 4
    rooms = {e["RoomSid"] for e in events}
    assert rooms == {recorded.room_sid}
    for event in completed:
        track = next(t for t in recorded.tracks if t.track_sid == event["SourceSid"])
        kind, container, _, _ = FORMAT[track.codec]
        assert event["RecordingUri"] == f"/v1/Recordings/{event['RecordingSid']}"
        assert event["MediaUri"] == f"{event['RecordingUri']}/Media"
        assert (event["Type"], event["Container"], event["Codec"]) == (kind, container, track.codec)
        assert event["TrackName"] == track.name
        assert event["ParticipantSid"] == track.participant_sid
        assert event["ParticipantIdentity"] == track.identity
        assert event["RoomName"] == "recorded" and event["RoomType"] == "group"
        assert int(event["Duration"]) == pytest.approx(SECONDS, rel=0.1)
        assert int(event["Size"]) > 0
        assert int(event["OffsetFromTwilioVideoEpoch"]) > 0
        assert "FailedOperation" not in event and "MediaExternalLocation" not in event
    # Per room, in order: each recording starts before it completes.
    numbers = [int(e["SequenceNumber"]) for e in events]
    for event in completed:
        start = next(e for e in started if e["RecordingSid"] == event["RecordingSid"])
        assert int(start["SequenceNumber"]) < int(event["SequenceNumber"])
    assert len(set(numbers)) == len(numbers)


@pytest.fixture
def short_recordings(server: ServerThread, account: Account) -> tuple[Client, str, list[str]]:
    """A fresh account's room with two short, completed recordings."""
    client = client_for(server, account)
    room = client.video.v1.rooms.create(record_participants_on_connect=True)
    tracks = publish(server, account.sid, room.sid, "carol", [("mic", "OPUS"), ("cam", "VP8")])
    feed(
        server,
        [(t.tap, media_packets(t.codec, 1.0, ssrc=7 + i)) for i, t in enumerate(tracks)],  # type: ignore[misc]
        realtime=False,
    )
    client.video.v1.rooms(room.sid).update(status="completed")
    sids = wait_until(
        lambda: (
            [r.sid for r in client.video.v1.recordings.list(status="completed")]
            if len(client.video.v1.recordings.list(status="completed")) == 2
            else None
        )
    )
    return client, room.sid, sids


def test_delete_really_deletes(
    short_recordings: tuple[Client, str, list[str]], server: ServerThread, account: Account
) -> None:
    client, room_sid, (first, second) = short_recordings
    auth = (account.sid, account.auth_token)
    with httpx.Client(base_url=server.base_url, auth=auth) as http:
        old_link = http.get(f"/v1/Recordings/{first}/Media").headers["location"]
        rec = client.video.v1.recordings(first).fetch()
        stored = server.config.data_dir / "media" / "recordings" / f"{first}.{rec.container_format}"
        assert stored.is_file()

        assert client.video.v1.recordings(first).delete() is True
        assert not stored.exists()
        gone = client.video.v1.recordings(first).fetch()
        assert gone.status == "deleted"
        assert http.get(f"/v1/Recordings/{first}/Media").status_code == 404
        assert httpx.get(old_link).status_code == 404
        assert client.video.v1.recordings(first).delete() is True  # idempotent

        assert client.video.v1.rooms(room_sid).recordings(second).delete() is True
        assert client.video.v1.rooms(room_sid).recordings(second).fetch().status == "deleted"
        assert {r.sid for r in client.video.v1.recordings.list(status="deleted")} == {
            first,
            second,
        }


def test_other_accounts_see_nothing(
    short_recordings: tuple[Client, str, list[str]], server: ServerThread
) -> None:
    _, room_sid, (sid, _) = short_recordings
    intruder = new_account(server)
    other = client_for(server, intruder)
    for call in (
        lambda: other.video.v1.recordings(sid).fetch(),
        lambda: other.video.v1.recordings(sid).delete(),
        lambda: other.video.v1.rooms(room_sid).recordings(sid).fetch(),
    ):
        with pytest.raises(TwilioRestException) as info:
            call()
        assert info.value.status == 404 and info.value.code == 20404
    with pytest.raises(TwilioException) as listing:  # a list page that is not 200
        other.video.v1.rooms(room_sid).recordings.list()
    assert listing.value.args[1].status_code == 404
    assert other.video.v1.recordings.list() == []
    with httpx.Client(base_url=server.base_url, auth=(intruder.sid, intruder.auth_token)) as http:
        assert http.get(f"/v1/Recordings/{sid}/Media").status_code == 404
    # A recording fetched through the wrong room is not found either.
    mine = short_recordings[0]
    other_room = mine.video.v1.rooms.create()
    with pytest.raises(TwilioRestException) as info:
        mine.video.v1.rooms(other_room.sid).recordings(sid).fetch()
    assert info.value.status == 404


def test_rules_changed_mid_room(server: ServerThread, account: Account) -> None:
    client = client_for(server, account)
    room = client.video.v1.rooms.create()
    [mic] = publish(server, account.sid, room.sid, "dave", [("mic", "OPUS")])
    assert mic.tap is not None
    packets = media_packets("OPUS", 2.0, ssrc=5)
    feed(server, [(mic.tap, packets[:50])], realtime=False)
    assert client.video.v1.recordings.list() == []  # not selected: nothing recorded

    client.video.v1.rooms(room.sid).recording_rules.update(rules=[{"type": "include", "all": True}])
    [live] = client.video.v1.recordings.list()
    assert (live.status, live.duration, live.size) == ("processing", 0, 0)
    auth = (account.sid, account.auth_token)
    with httpx.Client(base_url=server.base_url, auth=auth) as http:
        assert http.get(f"/v1/Recordings/{live.sid}/Media").status_code == 404
        assert http.delete(f"/v1/Recordings/{live.sid}").status_code == 400

    feed(server, [(mic.tap, packets[50:])], realtime=False)
    client.video.v1.rooms(room.sid).recording_rules.update(rules=[{"type": "exclude", "all": True}])
    done = client.video.v1.recordings(live.sid).fetch()
    assert done.status == "completed" and done.duration == 1

    client.video.v1.rooms(room.sid).recording_rules.update(
        rules=[{"type": "include", "kind": "audio"}]
    )
    again = client.video.v1.recordings.list(status="processing")
    assert len(again) == 1 and again[0].sid != live.sid
    client.video.v1.rooms(room.sid).update(status="completed")
    # Nothing was fed since the restart: completed with no media, so /Media is 404.
    empty = client.video.v1.recordings(again[0].sid).fetch()
    assert (empty.status, empty.size, empty.duration) == ("completed", 0, 0)
