"""Data-subject requests and retention in the store (memory, SQLite, PostgreSQL):
what `personal_data` finds for an account or one identity, what `erase_personal_data`
deletes and when it refuses, and the queries the retention sweeper runs."""

from __future__ import annotations

from dataclasses import replace

import pytest

from parlour.domain.events import CallbackDelivery, DeliveryStatus
from parlour.domain.participants import Participant, ParticipantStatus
from parlour.domain.ports import ErasureBlocked, RetentionPolicy, Store
from parlour.domain.recordings import Recording, RecordingCodec, RecordingStatus
from parlour.domain.rooms import Room
from parlour.domain.sids import AccountSid, RecordingSid, new_sid
from parlour.domain.tracks import PublishedTrack
from tests.store.factories import T0, at, join, make_room, new_account, publish, subscription

ERIN = "erin.private@example.org"


async def room_of(store: Store, account: AccountSid, i: int = 0) -> Room:
    room = make_room(account, i)
    await store.insert_room(room)
    return room


async def recording_of(store: Store, p: Participant, track: PublishedTrack) -> Recording:
    rec = Recording.for_track(
        sid=RecordingSid(new_sid("RT")),
        account_sid=p.account_sid,
        room_sid=p.room_sid,
        participant_sid=p.sid,
        source_sid=track.sid,
        track_name=track.name,
        codec=RecordingCodec.OPUS,
        now=T0,
    )
    await store.insert_recording(rec)
    done = rec.completed(at(5), duration_ms=3000, size=100)
    assert await store.update_recording(done, expected=RecordingStatus.PROCESSING)
    return done


async def callback(
    store: Store, room: Room, params: dict[str, str], *, pending: bool = False, when: float = 0
) -> CallbackDelivery:
    d = await store.insert_callback_delivery(
        CallbackDelivery(
            account_sid=room.account_sid,
            resource_sid=room.sid,
            event="participant-connected",
            url="https://hooks.example.com/cb",
            method="POST",
            params={"RoomSid": room.sid, **params},
            date_created=at(when),
            next_attempt_at=at(when),
        )
    )
    if not pending:
        d = replace(d, status=DeliveryStatus.DELIVERED, attempts=1, date_updated=at(when))
        await store.update_callback_delivery(d)
    return d


async def leave(store: Store, p: Participant, when: float = 10) -> None:
    assert await store.disconnect_participant(p.sid, at(when)) is not None


class World:
    """One account, two rooms; Erin is in both (and publishes), Bob in the first."""

    async def build(self, store: Store) -> World:
        self.account = await new_account(store)
        self.other_account = await new_account(store)
        self.r1 = await room_of(store, self.account, 0)
        self.r2 = await room_of(store, self.account, 1)
        self.erin1 = await join(store, self.r1, ERIN)
        self.erin2 = await join(store, self.r2, ERIN)
        self.bob = await join(store, self.r1, "bob")
        self.mic = await publish(store, self.erin1, "erin-mic")
        self.bob_cam = await publish(store, self.bob, "bob-cam")
        assert await store.insert_subscribed_track(subscription(self.bob, self.mic))
        assert await store.insert_subscribed_track(subscription(self.erin1, self.bob_cam))
        self.rec = await recording_of(store, self.erin1, self.mic)
        self.bob_rec = await recording_of(store, self.bob, self.bob_cam)
        self.cb_erin = await callback(store, self.r1, {"ParticipantIdentity": ERIN})
        self.cb_bob = await callback(store, self.r1, {"ParticipantIdentity": "bob"})
        self.cb_rec = await callback(store, self.r1, {"RecordingSid": self.rec.sid})
        # The same identity in another account is another person.
        self.elsewhere = await join(store, await room_of(store, self.other_account), ERIN)
        return self


async def test_personal_data_of_one_identity(store: Store) -> None:
    w = await World().build(store)
    data = await store.personal_data(w.account, ERIN)
    assert [p.sid for p in data.participants] == [w.erin1.sid, w.erin2.sid]
    assert {r.sid for r in data.rooms} == {w.r1.sid, w.r2.sid}
    assert [t.sid for t in data.published_tracks] == [w.mic.sid]
    assert {(s.participant_sid, s.sid) for s in data.subscribed_tracks} == {
        (w.bob.sid, w.mic.sid),
        (w.erin1.sid, w.bob_cam.sid),
    }
    assert [r.sid for r in data.recordings] == [w.rec.sid]
    assert [d.id for d in data.callback_deliveries] == [w.cb_erin.id, w.cb_rec.id]


async def test_personal_data_of_an_account(store: Store) -> None:
    w = await World().build(store)
    data = await store.personal_data(w.account, None)
    assert len(data.rooms) == 2 and len(data.participants) == 3
    assert len(data.recordings) == 2 and len(data.callback_deliveries) == 3
    assert w.elsewhere.sid not in {p.sid for p in data.participants}


async def test_erasing_an_identity_keeps_everyone_else(store: Store) -> None:
    w = await World().build(store)
    for p in (w.erin1, w.erin2):
        await leave(store, p)
    erased = await store.erase_personal_data(w.account, ERIN)
    assert len(erased.participants) == 2 and len(erased.recordings) == 1
    after = await store.personal_data(w.account, ERIN)
    assert after.participants == [] and after.recordings == [] and after.rooms == []
    assert await store.get_participant(w.r1.sid, w.erin1.sid) is None
    assert await store.get_recording(w.account, w.rec.sid) is None
    assert await store.get_recording(w.account, w.bob_rec.sid) is not None
    assert await store.get_participant(w.r1.sid, w.bob.sid) is not None
    assert await store.get_room(w.account, w.r1.sid) is not None
    left = [d.id for d in await store.list_callback_deliveries(w.r1.sid)]
    assert left == [w.cb_bob.id]
    bob = await store.personal_data(w.account, "bob")
    assert bob.subscribed_tracks == []  # his subscription to Erin's track went with her
    other = await store.personal_data(w.other_account, ERIN)
    assert [p.sid for p in other.participants] == [w.elsewhere.sid]


async def test_erasure_waits_for_a_connected_identity(store: Store) -> None:
    w = await World().build(store)
    await leave(store, w.erin1)  # still connected in r2
    with pytest.raises(ErasureBlocked, match=w.erin2.sid):
        await store.erase_personal_data(w.account, ERIN)
    assert len((await store.personal_data(w.account, ERIN)).participants) == 2


async def test_erasure_waits_for_a_pending_callback(store: Store) -> None:
    w = await World().build(store)
    for p in (w.erin1, w.erin2):
        await leave(store, p)
    await callback(store, w.r2, {"ParticipantSid": w.erin2.sid}, pending=True)
    with pytest.raises(ErasureBlocked, match="pending"):
        await store.erase_personal_data(w.account, ERIN)


async def test_erasing_an_account(store: Store) -> None:
    w = await World().build(store)
    with pytest.raises(ErasureBlocked, match="in progress"):
        await store.erase_personal_data(w.account, None)
    for room in (w.r1, w.r2):
        for p in await store.active_participants(room.sid):
            await leave(store, p)
        assert await store.complete_room(room.sid, at(20)) is not None
    erased = await store.erase_personal_data(w.account, None)
    assert len(erased.rooms) == 2 and len(erased.callback_deliveries) == 3
    after = await store.personal_data(w.account, None)
    assert after == type(after)([], [], [], [], [], [])
    assert await store.get_account(w.account) is not None  # the account itself stays
    assert len((await store.personal_data(w.other_account, None)).participants) == 1
    await store.reclaim_space()


async def test_retention_policies(store: Store) -> None:
    a, b = await new_account(store), await new_account(store)
    assert await store.get_retention(a) is None
    first = await store.set_retention(a, RetentionPolicy(1, None, 2), at(1))
    assert first.policy == RetentionPolicy(1, None, 2) and first.date_created == at(1)
    second = await store.set_retention(a, RetentionPolicy(3, 4, None), at(2))
    assert second.policy == RetentionPolicy(3, 4, None)
    assert (second.date_created, second.date_updated) == (at(1), at(2))
    assert await store.get_retention(a) == second
    assert await store.get_retention(b) is None
    assert {a, b} <= set(await store.account_sids())


async def test_what_retention_finds(store: Store) -> None:
    w = await World().build(store)
    for p in (w.erin1, w.bob):
        await leave(store, p)
    assert await store.complete_room(w.r1.sid, at(100)) is not None
    # r2 is in progress: its participants are never due, nor its callbacks.
    live_cb = await callback(store, w.r2, {"ParticipantIdentity": ERIN})
    pending = await callback(store, w.r1, {"ParticipantIdentity": "x"}, pending=True)
    assert await store.participants_to_anonymize(w.account, at(100), 10) == []
    due = await store.participants_to_anonymize(w.account, at(101), 10)
    assert {p.sid for p in due} == {w.erin1.sid, w.bob.sid}
    assert len(await store.participants_to_anonymize(w.account, at(101), 1)) == 1
    await store.anonymize_participant(w.erin1.sid, at(102))
    due = await store.participants_to_anonymize(w.account, at(101), 10)
    assert [p.sid for p in due] == [w.bob.sid]

    assert await store.expired_recordings(w.account, T0, 10) == []
    expired = await store.expired_recordings(w.account, at(1), 10)
    assert {r.sid for r in expired} == {w.rec.sid, w.bob_rec.sid}

    purged = await store.purge_callback_deliveries(w.account, at(1), 10)
    assert sorted(purged) == sorted([w.cb_erin.id, w.cb_bob.id, w.cb_rec.id])
    assert [d.id for d in await store.list_callback_deliveries(w.r1.sid)] == [pending.id]
    assert [d.id for d in await store.list_callback_deliveries(w.r2.sid)] == [live_cb.id]
    assert ParticipantStatus.CONNECTED is w.erin2.status
