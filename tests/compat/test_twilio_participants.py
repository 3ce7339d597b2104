"""Participants, tracks and subscribe rules through the official `twilio` package.

Participants come from clients connecting; until signaling lands (a later issue), the tests
drive the same service calls the signaling layer will make, on the server's own loop.
"""

from __future__ import annotations

import datetime as dt

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from parlour.domain.participants import Participant
from parlour.domain.rooms import Room
from parlour.domain.tracks import PublishedTrack, TrackKind
from parlour.testing import ServerThread
from tests.helpers import Account

pytestmark = pytest.mark.integration


class Driver:
    """Calls the services the way the signaling layer does."""

    def __init__(self, server: ServerThread, account: Account) -> None:
        self.server = server
        self.account = account

    def room(self, ref: str) -> Room:
        return self.server.call(self.server.parlour.rooms.get(self.account.sid, ref))

    def join(self, room: str, identity: str) -> Participant:
        return self.server.call(self.server.parlour.participants.join(self.room(room), identity))

    def leave(self, room: str, participant: Participant) -> Participant:
        svc = self.server.parlour.participants
        return self.server.call(svc.leave(self.room(room), participant))

    def publish(self, participant: Participant, name: str, kind: TrackKind) -> PublishedTrack:
        svc = self.server.parlour.participants
        room = self.room(participant.room_sid)
        return self.server.call(svc.publish(room, participant, name, kind))

    def subscribe(self, subscriber: Participant, track: PublishedTrack) -> None:
        svc = self.server.parlour.participants
        self.server.call(svc.subscribe(subscriber, track))


@pytest.fixture
def driver(server: ServerThread, account: Account) -> Driver:
    return Driver(server, account)


def test_participants_list_fetch_and_fields(
    client: Client, driver: Driver, server: ServerThread
) -> None:
    room = client.video.v1.rooms.create(unique_name="standup")
    assert client.video.v1.rooms(room.sid).participants.list() == []
    alice = driver.join("standup", "alice")
    bob = driver.join("standup", "bob")

    listed = client.video.v1.rooms("standup").participants.list()
    assert [p.sid for p in listed] == [alice.sid, bob.sid]
    p = client.video.v1.rooms(room.sid).participants("alice").fetch()
    assert p.sid == alice.sid and p.identity == "alice"
    assert p.status == "connected" and p.room_sid == room.sid and p.account_sid == room.account_sid
    assert isinstance(p.start_time, dt.datetime) and p.end_time is None and p.duration is None
    base = f"{server.base_url}/v1/Rooms/{room.sid}/Participants/{alice.sid}"
    assert p.url == base
    assert p.links == {
        "published_tracks": f"{base}/PublishedTracks",
        "subscribed_tracks": f"{base}/SubscribedTracks",
        "subscribe_rules": f"{base}/SubscribeRules",
        "anonymize": f"{base}/Anonymize",
    }
    assert client.video.v1.rooms(room.sid).participants(alice.sid).fetch().identity == "alice"
    assert [x.sid for x in client.video.v1.rooms(room.sid).participants.list(identity="bob")] == [
        bob.sid
    ]


def test_rest_disconnect_and_status_filters(client: Client, driver: Driver) -> None:
    room = client.video.v1.rooms.create(unique_name="kick")
    alice = driver.join("kick", "alice")
    driver.join("kick", "bob")
    kicked = client.video.v1.rooms("kick").participants("alice").update(status="disconnected")
    assert kicked.sid == alice.sid and kicked.status == "disconnected"
    assert isinstance(kicked.end_time, dt.datetime) and kicked.duration is not None
    parts = client.video.v1.rooms(room.sid).participants
    assert [p.identity for p in parts.list()] == ["bob"]
    assert [p.identity for p in parts.list(status="disconnected")] == ["alice"]
    with pytest.raises(TwilioRestException) as err:
        parts("bob").update(status="connected")
    assert (err.value.status, err.value.code) == (400, 53209)
    assert parts("bob").fetch().status == "connected"

    client.video.v1.rooms(room.sid).update(status="completed")
    # A completed room lists only disconnected participants, by default and by filter.
    assert {p.identity for p in parts.list()} == {"alice", "bob"}
    assert parts.list(status="connected") == []
    assert all(p.status == "disconnected" for p in parts.list())


def test_completed_room_refuses_joins(client: Client, driver: Driver) -> None:
    room = client.video.v1.rooms.create()
    client.video.v1.rooms(room.sid).update(status="completed")
    with pytest.raises(Exception) as err:
        driver.join(room.sid, "late")
    assert getattr(err.value, "code", None) == 53118


def test_duplicate_identity_replaces_the_older_participant(client: Client, driver: Driver) -> None:
    room = client.video.v1.rooms.create(unique_name="dupe")
    first = driver.join("dupe", "carol")
    second = driver.join("dupe", "carol")
    parts = client.video.v1.rooms(room.sid).participants
    assert [p.sid for p in parts.list()] == [second.sid]
    assert parts(first.sid).fetch().status == "disconnected"
    assert parts("carol").fetch().sid == second.sid


def test_max_participants_enforced(client: Client, driver: Driver) -> None:
    room = client.video.v1.rooms.create(unique_name="tiny", max_participants=1)
    driver.join("tiny", "one")
    with pytest.raises(Exception) as err:
        driver.join("tiny", "two")
    assert getattr(err.value, "code", None) == 53105
    assert len(client.video.v1.rooms(room.sid).participants.list()) == 1


def test_anonymize(client: Client, driver: Driver, server: ServerThread) -> None:
    room = client.video.v1.rooms.create(unique_name="anon")
    alice = driver.join("anon", "alice")
    driver.leave("anon", alice)
    anonymized = client.video.v1.rooms(room.sid).participants(alice.sid).anonymize().update()
    assert anonymized.identity == alice.sid
    assert anonymized.url.endswith(f"/Participants/{alice.sid}/Anonymize")
    fetched = client.video.v1.rooms(room.sid).participants(alice.sid).fetch()
    assert fetched.identity == alice.sid
    listed = client.video.v1.rooms(room.sid).participants.list(identity="alice")
    assert listed == []


def test_published_and_subscribed_tracks(
    client: Client, driver: Driver, server: ServerThread
) -> None:
    room = client.video.v1.rooms.create(unique_name="tracks")
    alice = driver.join("tracks", "alice")
    bob = driver.join("tracks", "bob")
    mic = driver.publish(alice, "mic", TrackKind.AUDIO)
    cam = driver.publish(alice, "camera", TrackKind.VIDEO)
    driver.subscribe(bob, mic)

    published = client.video.v1.rooms(room.sid).participants(alice.sid).published_tracks
    assert [(t.sid, t.name, t.kind) for t in published.list()] == [
        (mic.sid, "mic", "audio"),
        (cam.sid, "camera", "video"),
    ]
    by_name = published("camera").fetch()
    assert by_name.sid == cam.sid and by_name.enabled is True
    assert by_name.participant_sid == alice.sid and by_name.room_sid == room.sid
    assert by_name.url == (
        f"{server.base_url}/v1/Rooms/{room.sid}/Participants/{alice.sid}/PublishedTracks/{cam.sid}"
    )
    assert published(cam.sid).fetch().name == "camera"

    subscribed = client.video.v1.rooms(room.sid).participants("bob").subscribed_tracks
    [sub] = subscribed.list()
    assert (sub.sid, sub.publisher_sid, sub.participant_sid, sub.kind) == (
        mic.sid,
        alice.sid,
        bob.sid,
        "audio",
    )
    assert subscribed(mic.sid).fetch().name == "mic"
    with pytest.raises(TwilioRestException) as err:
        subscribed(cam.sid).fetch()
    assert err.value.status == 404

    driver.leave("tracks", alice)
    assert published.list() == []
    assert subscribed.list() == []


def test_subscribe_rules(client: Client, driver: Driver) -> None:
    room = client.video.v1.rooms.create(unique_name="rules")
    alice = driver.join("rules", "alice")
    rules = client.video.v1.rooms(room.sid).participants(alice.sid).subscribe_rules
    default = rules.fetch()
    assert default.participant_sid == alice.sid and default.room_sid == room.sid
    assert default.date_created is None and default.date_updated is None
    assert default.rules == [
        {
            "type": "include",
            "all": True,
            "publisher": None,
            "track": None,
            "kind": None,
            "priority": None,
        }
    ]
    updated = rules.update(
        rules=[{"type": "include", "kind": "audio"}, {"type": "exclude", "publisher": "bob"}]
    )
    assert updated.rules == [
        {
            "type": "include",
            "all": None,
            "publisher": None,
            "track": None,
            "kind": "audio",
            "priority": None,
        },
        {
            "type": "exclude",
            "all": None,
            "publisher": "bob",
            "track": None,
            "kind": None,
            "priority": None,
        },
    ]
    assert isinstance(updated.date_created, dt.datetime)
    for bad in (
        [],
        [{"type": "include"}],
        [{"type": "include", "all": False}],
        [{"type": "include", "all": True, "kind": "audio"}],
        [{"type": "maybe", "all": True}],
        [{"type": "include", "kind": "smell"}],
        [{"type": "include", "all": True}] * 21,
    ):
        with pytest.raises(TwilioRestException) as err:
            rules.update(rules=bad)
        assert (err.value.status, err.value.code) == (400, 53215), bad
    assert rules.fetch().rules == updated.rules


def test_unknown_participant_is_20404(client: Client) -> None:
    room = client.video.v1.rooms.create()
    with pytest.raises(TwilioRestException) as err:
        client.video.v1.rooms(room.sid).participants("nobody").fetch()
    assert (err.value.status, err.value.code) == (404, 20404)
    with pytest.raises(TwilioRestException) as err:
        client.video.v1.rooms(room.sid).participants("nobody").subscribe_rules.fetch()
    assert err.value.status == 404
