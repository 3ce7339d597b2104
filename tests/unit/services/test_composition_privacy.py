"""Compositions in the privacy machinery: recording retention deletes them (bytes gone,
`deleted` resource kept), erasure of anyone in their room removes them, export includes
them."""

from __future__ import annotations

import zipfile
from pathlib import Path

from parlour.domain.compositions import Composition, CompositionSpec, CompositionStatus
from parlour.domain.ports import RetentionPolicy
from parlour.domain.sids import AccountSid, new_sid
from parlour.services.privacy import PrivacyService
from parlour.services.retention import RetentionService
from parlour.store.memory import MemoryStore
from parlour.testing import FakeClock
from tests.store.factories import join, make_room, new_account
from tests.unit.services.fakes import FakeStorage

DAY = 86400.0


async def composed_room(
    store: MemoryStore, clock: FakeClock, storage: FakeStorage
) -> tuple[AccountSid, Composition]:
    account = await new_account(store)
    room = make_room(account)
    await store.insert_room(room)
    dora = await join(store, room, "dora", when=clock.now())
    await store.disconnect_participant(dora.sid, clock.now())
    await store.complete_room(room.sid, clock.now())
    composition = Composition(
        sid=new_sid("CJ"),
        account_sid=account,
        room_sid=room.sid,
        spec=CompositionSpec.checked(audio_sources=("*",)),
        status=CompositionStatus.PROCESSING,
        date_created=clock.now(),
        date_updated=clock.now(),
    )
    await store.insert_composition(composition)
    done = composition.completed(clock.now(), duration_ms=2000, size=4, bitrate=1)
    await store.update_composition(done, expected=CompositionStatus.PROCESSING)
    storage.objects[done.media_key] = b"webm"
    return account, done


async def test_recording_retention_deletes_compositions() -> None:
    store, clock, storage = MemoryStore(), FakeClock(), FakeStorage()
    account, done = await composed_room(store, clock, storage)
    sweeper = RetentionService(store, clock, RetentionPolicy(recording_days=30), storage=storage)
    clock.advance(29 * DAY)
    assert (await sweeper.sweep()).compositions_deleted == []
    clock.advance(2 * DAY)
    assert (await sweeper.sweep()).compositions_deleted == [done.sid]
    assert done.media_key not in storage.objects
    kept = await store.get_composition(account, done.sid)
    assert kept is not None and kept.status is CompositionStatus.DELETED
    assert kept.date_deleted == clock.now()


async def test_export_and_erasure_of_anyone_in_the_room(tmp_path: Path) -> None:
    store, clock, storage = MemoryStore(), FakeClock(), FakeStorage()
    account, done = await composed_room(store, clock, storage)
    privacy = PrivacyService(store, clock, storage, None)
    summary = await privacy.export(account, "dora", tmp_path / "dora.zip")
    assert summary.records["compositions"] == 1
    assert f"media/{done.file_name}" in summary.media_files
    with zipfile.ZipFile(tmp_path / "dora.zip") as z:
        assert z.read(f"media/{done.file_name}") == b"webm"
    erased = await privacy.erase(account, "dora")
    assert erased.records["compositions"] == 1 and done.sid in erased.media_deleted
    assert await store.get_composition(account, done.sid) is None
    assert done.media_key not in storage.objects
