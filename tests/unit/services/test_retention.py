"""The retention sweeper on the in-memory store with a FakeClock: what is due when, the
per-account policy, `never`, and a restarted sweeper (a new service) carrying on."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from parlour.domain import errors
from parlour.domain.events import CallbackDelivery, DeliveryStatus
from parlour.domain.ports import RetentionPolicy
from parlour.domain.recordings import RecordingStatus
from parlour.services.retention import RetentionService
from parlour.store.memory import MemoryStore
from parlour.testing import FakeClock
from tests.store.factories import join, make_room, new_account, publish
from tests.unit.services.fakes import FakeStorage, opus_recording

DAY = 86400.0
SECRET_ID = "carol-H8d2@private.example"


async def world(store: MemoryStore, clock: FakeClock, storage: FakeStorage) -> dict[str, str]:
    """An ended room (Carol, a recording, a delivered callback) and one in progress."""
    account = await new_account(store)
    room = make_room(account)
    await store.insert_room(room)
    carol = await join(store, room, SECRET_ID, when=clock.now())
    track = await publish(store, carol)
    rec = opus_recording(account, room.sid, carol.sid, clock.now(), source_sid=track.sid)
    await store.insert_recording(rec)
    await store.update_recording(
        rec.completed(clock.now(), duration_ms=1000, size=3), expected=RecordingStatus.PROCESSING
    )
    storage.objects[rec.media_key] = b"abc"
    cb = await store.insert_callback_delivery(
        CallbackDelivery(
            account_sid=account,
            resource_sid=room.sid,
            event="participant-connected",
            url="https://hooks.example.com/",
            method="POST",
            params={"ParticipantIdentity": SECRET_ID},
            date_created=clock.now(),
            next_attempt_at=clock.now(),
        )
    )
    await store.update_callback_delivery(
        replace(cb, status=DeliveryStatus.DELIVERED, date_updated=clock.now())
    )
    await store.disconnect_participant(carol.sid, clock.now())
    await store.complete_room(room.sid, clock.now())
    live = make_room(account, 1)
    await store.insert_room(live)
    await join(store, live, "dave", when=clock.now())
    return {"account": account, "room": room.sid, "carol": carol.sid, "rec": rec.sid}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def test_the_default_policy_applies_in_days(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    store, storage = MemoryStore(), FakeStorage()
    w = await world(store, clock, storage)
    service = RetentionService(store, clock, RetentionPolicy(), storage=storage)
    clock.advance(6 * DAY)
    assert (await service.sweep()).total == 0
    clock.advance(1 * DAY + 1)
    swept = await service.sweep()
    assert swept.callbacks_removed and not swept.anonymized and not swept.recordings_deleted
    assert await store.list_callback_deliveries(w["room"]) == []
    clock.advance(23 * DAY)  # 30 days and a second after the room ended
    caplog.set_level(logging.INFO, "parlour.services.retention")
    swept = await service.sweep()
    assert swept.anonymized == [w["carol"]] and swept.recordings_deleted == [w["rec"]]
    carol = await store.get_participant(w["room"], w["carol"])  # type: ignore[arg-type]
    assert carol is not None and carol.identity == w["carol"]
    rec = await store.get_recording(w["account"], w["rec"])  # type: ignore[arg-type]
    assert rec is not None and rec.status is RecordingStatus.DELETED
    assert storage.objects == {}
    # The live room's participant keeps their identity; the log names SIDs only.
    assert (await store.personal_data(w["account"], "dave")).participants[0].identity == "dave"
    assert f"participant={w['carol']}" in caplog.text and f"recording={w['rec']}" in caplog.text
    assert SECRET_ID not in caplog.text
    # A restarted sweeper (a new service) finds nothing left to do.
    again = RetentionService(store, clock, RetentionPolicy(), storage=storage)
    assert (await again.sweep()).total == 0


async def test_an_account_policy_and_never(clock: FakeClock) -> None:
    store, storage = MemoryStore(), FakeStorage()
    w = await world(store, clock, storage)
    service = RetentionService(store, clock, RetentionPolicy(), storage=storage)
    assert (await service.get(w["account"])).is_default
    kept = await service.update(w["account"], recording_days=None, identity_days=2)
    assert kept.policy == RetentionPolicy(identity_days=2, recording_days=None, callback_days=7)
    assert not kept.is_default
    clock.advance(2 * DAY + 1)
    swept = await service.sweep()
    # Identities after 2 days, and the callbacks that carry them with them.
    assert swept.anonymized == [w["carol"]] and len(swept.callbacks_removed) == 1
    clock.advance(3650 * DAY)
    assert (await service.sweep()).recordings_deleted == []
    assert storage.objects != {}


async def test_bad_days_and_unknown_accounts(clock: FakeClock) -> None:
    store = MemoryStore()
    account = await new_account(store)
    service = RetentionService(store, clock, RetentionPolicy())
    with pytest.raises(errors.InvalidParameterError):
        await service.update(account, identity_days=0)
    with pytest.raises(errors.NotFoundError):
        await service.get("AC" + "0" * 32)
    assert (await service.get(account)).policy == RetentionPolicy()
