"""Conditional transitions of rooms, participants and tracks, alone and racing each other
(memory, SQLite, PostgreSQL: see conftest.py)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from parlour.domain.paging import PageRequest
from parlour.domain.participants import ParticipantStatus
from parlour.domain.ports import Store
from parlour.domain.rooms import RoomStatus
from parlour.domain.rules import Rule
from parlour.domain.sids import ParticipantSid, RoomSid, TrackSid, new_sid
from parlour.domain.tracks import PublishedTrack, TrackKind
from tests.store.factories import (
    T0,
    at,
    join,
    make_participant,
    new_room,
    publish,
    subscription,
)

RULES = (Rule(type="include", all=True), Rule(type="exclude", kind="video"))


# -- rooms ------------------------------------------------------------------------------


async def test_complete_room_matches_room_completed(store: Store) -> None:
    room = await new_room(store, unique_name="n")
    await store.set_room_occupied(room.sid, at(1))
    done = await store.complete_room(room.sid, at(61.9))
    expected = replace(room.completed(at(61.9)), empty_since=None, ever_joined=True)
    assert done == expected
    assert done.status is RoomStatus.COMPLETED and done.duration == 61
    assert done.end_time == done.date_updated == at(61.9) and done.empty_since is None
    assert await store.get_room(room.account_sid, room.sid) == done
    assert await store.get_room(room.account_sid, "n") is None  # the name is free again
    assert await store.complete_room(room.sid, at(70)) is None
    assert await store.complete_room(RoomSid(new_sid("RM")), at(70)) is None


async def test_complete_room_has_one_winner(store: Store) -> None:
    room = await new_room(store)
    results = await asyncio.gather(*(store.complete_room(room.sid, at(i)) for i in range(20)))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert await store.get_room(room.account_sid, room.sid) == winners[0]


async def test_a_completed_room_stays_completed(store: Store) -> None:
    room = await new_room(store)
    done = await store.complete_room(room.sid, at(5))
    await store.set_room_occupied(room.sid, at(6))
    assert await store.set_room_empty_if_vacant(room.sid, at(7)) is False
    assert await store.set_recording_rules(room.sid, RULES, at(8)) is None
    assert await store.get_room(room.account_sid, room.sid) == done
    assert await store.idle_rooms() == []


async def test_occupied_then_empty_when_vacant(store: Store) -> None:
    room = await new_room(store)
    assert room.empty_since == T0 and not room.ever_joined
    assert [r.sid for r in await store.idle_rooms()] == [room.sid]
    # Already empty since creation: the timeout is not restarted.
    assert await store.set_room_empty_if_vacant(room.sid, at(1)) is False
    alice = await join(store, room)
    await store.set_room_occupied(room.sid, at(2))
    occupied = await store.get_room(room.account_sid, room.sid)
    assert occupied is not None
    assert (occupied.empty_since, occupied.ever_joined, occupied.date_updated) == (
        None,
        True,
        at(2),
    )
    assert await store.idle_rooms() == []
    assert await store.set_room_empty_if_vacant(room.sid, at(3)) is False  # alice is in
    assert await store.disconnect_participant(alice.sid, at(4)) is not None
    assert await store.set_room_empty_if_vacant(room.sid, at(5)) is True
    assert await store.set_room_empty_if_vacant(room.sid, at(6)) is False  # already empty
    empty = await store.get_room(room.account_sid, room.sid)
    assert empty is not None and (empty.empty_since, empty.ever_joined) == (at(5), True)
    assert [r.sid for r in await store.idle_rooms()] == [room.sid]


async def test_reconnecting_participant_keeps_the_room_occupied(store: Store) -> None:
    room = await new_room(store)
    await join(store, room, status=ParticipantStatus.RECONNECTING)
    await store.set_room_occupied(room.sid, at(1))
    assert await store.set_room_empty_if_vacant(room.sid, at(2)) is False


async def test_set_recording_rules(store: Store) -> None:
    room = await new_room(store)
    updated = await store.set_recording_rules(room.sid, RULES, at(3))
    assert updated == replace(
        room, recording_rules=RULES, recording_rules_updated=at(3), date_updated=at(3)
    )
    assert await store.get_room(room.account_sid, room.sid) == updated
    cleared = await store.set_recording_rules(room.sid, (), at(4))
    assert cleared is not None and cleared.recording_rules == ()


# -- participants -----------------------------------------------------------------------


async def test_node_id_round_trip(store: Store) -> None:
    room = await new_room(store)
    on_node = await join(store, room, "a", node_id="node-7")
    nowhere = await join(store, room, "b", node_id=None)
    assert await store.get_participant(room.sid, on_node.sid) == on_node
    assert (await store.get_participant(room.sid, "b")) == nowhere


async def test_disconnect_participant_ends_its_tracks_and_subscriptions(store: Store) -> None:
    room = await new_room(store)
    alice = await join(store, room, "alice", when=at(10))
    bob = await join(store, room, "bob")
    mic, cam = await publish(store, alice, "mic"), await publish(store, alice, "cam")
    bobs = await publish(store, bob, "bob-mic")
    assert await store.end_published_track(cam.sid, at(20)) is not None  # ended before
    assert await store.insert_subscribed_track(subscription(bob, mic))
    assert await store.insert_subscribed_track(subscription(alice, bobs))

    result = await store.disconnect_participant(alice.sid, at(75.5))
    assert result is not None
    gone, tracks = result
    assert gone == alice.disconnected(at(75.5))
    assert gone.duration == 65 and gone.status is ParticipantStatus.DISCONNECTED
    assert tracks == [replace(mic, ended_at=at(75.5), date_updated=at(75.5))]
    assert await store.get_participant(room.sid, alice.sid) == gone
    assert await store.active_published_tracks(alice.sid) == []
    assert await store.get_subscribed_track(bob.sid, mic.sid) is None
    assert await store.get_subscribed_track(alice.sid, bobs.sid) is None
    assert await store.active_published_tracks(bob.sid) == [bobs]  # bob's own track lives
    assert await store.disconnect_participant(alice.sid, at(80)) is None
    assert await store.disconnect_participant(ParticipantSid(new_sid("PA")), at(80)) is None


async def test_disconnect_participant_has_one_winner(store: Store) -> None:
    room = await new_room(store)
    alice = await join(store, room)
    await publish(store, alice)
    results = await asyncio.gather(
        *(store.disconnect_participant(alice.sid, at(i)) for i in range(1, 6))
    )
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    gone, tracks = winners[0]
    assert len(tracks) == 1 and tracks[0].ended_at == gone.end_time


async def test_a_track_is_not_published_once_its_participant_left(store: Store) -> None:
    """A publish that races the participant's departure records nothing (the soak found
    tracks left open for ever: published after their participant had disconnected)."""
    room = await new_room(store)
    alice = await join(store, room)
    await store.disconnect_participant(alice.sid, at(5))
    late = PublishedTrack.published(room.sid, alice.sid, "late", TrackKind.AUDIO, at(6))
    assert await store.insert_published_track(late) is False
    assert await store.active_published_tracks(alice.sid) == []
    assert await store.get_published_track(alice.sid, "late") is None
    nobody = PublishedTrack.published(
        room.sid, ParticipantSid(new_sid("PA")), "x", TrackKind.AUDIO, at(6)
    )
    assert await store.insert_published_track(nobody) is False


async def test_publish_racing_disconnect_leaves_no_open_track(store: Store) -> None:
    """Whichever commits first, no track of a disconnected participant stays open."""
    room = await new_room(store)
    for i in range(8):
        alice = await join(store, room, f"alice-{i}")
        tracks = [
            PublishedTrack.published(room.sid, alice.sid, f"t{n}", TrackKind.DATA, at(1))
            for n in range(3)
        ]
        await asyncio.gather(
            *(store.insert_published_track(t) for t in tracks[:2]),
            store.disconnect_participant(alice.sid, at(2)),
            store.insert_published_track(tracks[2]),
        )
        assert await store.active_published_tracks(alice.sid) == []


async def test_set_participant_status(store: Store) -> None:
    room = await new_room(store)
    alice = await join(store, room)
    away = await store.set_participant_status(alice.sid, ParticipantStatus.RECONNECTING, at(1))
    assert away == replace(alice, status=ParticipantStatus.RECONNECTING, date_updated=at(1))
    back = await store.set_participant_status(alice.sid, ParticipantStatus.CONNECTED, at(2))
    assert back is not None and back.status is ParticipantStatus.CONNECTED
    with pytest.raises(ValueError):
        await store.set_participant_status(alice.sid, ParticipantStatus.DISCONNECTED, at(3))
    await store.disconnect_participant(alice.sid, at(4))
    assert await store.set_participant_status(alice.sid, ParticipantStatus.CONNECTED, at(5)) is None
    got = await store.get_participant(room.sid, alice.sid)
    assert got is not None and got.status is ParticipantStatus.DISCONNECTED


async def test_anonymize_participant(store: Store) -> None:
    room = await new_room(store)
    alice = await join(store, room)
    await store.disconnect_participant(alice.sid, at(1))
    anon = await store.anonymize_participant(alice.sid, at(2))
    assert anon is not None and anon.identity == alice.sid and anon.date_updated == at(2)
    assert await store.get_participant(room.sid, "alice") is None
    assert await store.get_participant(room.sid, alice.sid) == anon
    assert await store.anonymize_participant(ParticipantSid(new_sid("PA")), at(2)) is None


async def test_set_subscribe_rules(store: Store) -> None:
    room = await new_room(store)
    alice = await join(store, room)
    first = await store.set_subscribe_rules(alice.sid, RULES, at(1))
    assert first == replace(
        alice,
        subscribe_rules=RULES,
        subscribe_rules_created=at(1),
        subscribe_rules_updated=at(1),
        date_updated=at(1),
    )
    second = await store.set_subscribe_rules(alice.sid, (), at(2))
    assert second is not None
    assert (second.subscribe_rules, second.subscribe_rules_created) == ((), at(1))
    assert second.subscribe_rules_updated == at(2)
    assert await store.get_participant(room.sid, alice.sid) == second
    assert await store.set_subscribe_rules(ParticipantSid(new_sid("PA")), (), at(2)) is None


# -- tracks -----------------------------------------------------------------------------


async def test_end_published_track_ends_its_subscriptions(store: Store) -> None:
    room = await new_room(store)
    alice, bob = await join(store, room, "alice"), await join(store, room, "bob")
    mic, cam = await publish(store, alice, "mic"), await publish(store, alice, "cam")
    for track in (mic, cam):
        assert await store.insert_subscribed_track(subscription(bob, track))
    ended = await store.end_published_track(mic.sid, at(5))
    assert ended == replace(mic, ended_at=at(5), date_updated=at(5))
    assert await store.end_published_track(mic.sid, at(6)) is None
    assert await store.get_published_track(alice.sid, "mic") is None
    assert await store.get_subscribed_track(bob.sid, mic.sid) is None
    assert await store.get_subscribed_track(bob.sid, cam.sid) is not None
    page = await store.list_subscribed_tracks(bob.sid, PageRequest())
    assert [s.sid for s in page.items] == [cam.sid]
    assert await store.end_published_track(TrackSid(new_sid("MT")), at(6)) is None


async def test_set_track_enabled(store: Store) -> None:
    room = await new_room(store)
    alice = await join(store, room)
    mic = await publish(store, alice)
    assert await store.set_track_enabled(mic.sid, True, at(1)) is None  # unchanged
    off = await store.set_track_enabled(mic.sid, False, at(2))
    assert off == replace(mic, enabled=False, date_updated=at(2))
    assert await store.get_published_track(alice.sid, mic.sid) == off
    assert await store.set_track_enabled(mic.sid, False, at(3)) is None
    await store.end_published_track(mic.sid, at(4))
    assert await store.set_track_enabled(mic.sid, True, at(5)) is None


async def test_insert_subscribed_track_conditions(store: Store) -> None:
    room = await new_room(store)
    alice, bob = await join(store, room, "alice"), await join(store, room, "bob")
    mic, cam = await publish(store, alice, "mic"), await publish(store, alice, "cam")
    sub = subscription(bob, mic)
    assert await store.insert_subscribed_track(sub) is True
    assert await store.insert_subscribed_track(sub) is False  # already live
    assert await store.get_subscribed_track(bob.sid, mic.sid) == sub
    # Ended, it may be subscribed again.
    await store.end_subscribed_track(bob.sid, mic.sid, at(1))
    assert await store.get_subscribed_track(bob.sid, mic.sid) is None
    again = replace(sub, date_created=at(2), date_updated=at(2))
    assert await store.insert_subscribed_track(again) is True
    assert await store.get_subscribed_track(bob.sid, mic.sid) == again
    # An ended track, an unknown track, a departed subscriber: nothing is written.
    await store.end_published_track(cam.sid, at(3))
    assert await store.insert_subscribed_track(subscription(bob, cam)) is False
    ghost = replace(mic, sid=TrackSid(new_sid("MT")))
    assert await store.insert_subscribed_track(subscription(bob, ghost)) is False
    carol = await join(store, room, "carol")
    await store.disconnect_participant(carol.sid, at(4))
    assert await store.insert_subscribed_track(subscription(carol, mic)) is False
    stranger = make_participant(room, "dave")  # never inserted
    assert await store.insert_subscribed_track(subscription(stranger, mic)) is False
    assert [s.sid for s in (await store.list_subscribed_tracks(bob.sid, PageRequest())).items] == [
        mic.sid
    ]
    assert (await store.list_subscribed_tracks(carol.sid, PageRequest())).items == []


async def test_concurrent_subscriptions_record_one(store: Store) -> None:
    room = await new_room(store)
    alice, bob = await join(store, room, "alice"), await join(store, room, "bob")
    mic = await publish(store, alice)
    results = await asyncio.gather(
        *(store.insert_subscribed_track(subscription(bob, mic)) for _ in range(10))
    )
    assert results.count(True) == 1
    assert len((await store.list_subscribed_tracks(bob.sid, PageRequest())).items) == 1


async def test_subscribing_while_the_publisher_leaves(store: Store) -> None:
    """Whichever runs first, no live subscription to a departed publisher's track remains."""
    room = await new_room(store)
    alice, bob = await join(store, room, "alice"), await join(store, room, "bob")
    mic = await publish(store, alice)
    await asyncio.gather(
        store.insert_subscribed_track(subscription(bob, mic)),
        store.disconnect_participant(alice.sid, at(1)),
    )
    assert await store.get_subscribed_track(bob.sid, mic.sid) is None


async def test_published_tracks_list_live_ones_in_order(store: Store) -> None:
    room = await new_room(store)
    alice = await join(store, room)
    tracks = [await publish(store, alice, f"t{i}") for i in range(5)]
    await store.end_published_track(tracks[1].sid, at(1))
    live = [t.sid for t in tracks if t is not tracks[1]]
    assert [t.sid for t in await store.active_published_tracks(alice.sid)] == live
    first = await store.list_published_tracks(alice.sid, PageRequest(page_size=3))
    assert [t.sid for t in first.items] == live[:3]
    assert first.next_token is not None and first.previous_token is None
    second = await store.list_published_tracks(
        alice.sid, PageRequest(page_size=3, page=1, after=int(first.next_token[2:]))
    )
    assert [t.sid for t in second.items] == live[3:] and second.next_token is None
    assert await store.get_published_track(alice.sid, "t2") == tracks[2]
    assert await store.get_published_track(alice.sid, tracks[3].sid) == tracks[3]
