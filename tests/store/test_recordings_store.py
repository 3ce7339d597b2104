"""Recordings in the store: round trip, filters, keyset paging, recovery query.
SQLite always; PostgreSQL when PARLOUR_TEST_POSTGRES_DSN is set."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from parlour.domain.accounts import Account
from parlour.domain.paging import PageRequest, parse_page_token
from parlour.domain.ports import RecordingFilter, Store
from parlour.domain.recordings import Recording, RecordingCodec, RecordingStatus, RecordingType
from parlour.domain.rooms import RoomSpec, validate_room_spec
from parlour.domain.sids import (
    AccountSid,
    ParticipantSid,
    RecordingSid,
    RoomSid,
    TrackSid,
    new_sid,
)

T0 = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC)


async def account_with_room(store: Store) -> tuple[AccountSid, RoomSid]:
    account = AccountSid(new_sid("AC"))
    await store.insert_account(Account(account, "t", "h" * 64, T0, T0))
    room = validate_room_spec(RoomSpec(), sid=RoomSid(new_sid("RM")), account_sid=account, now=T0)
    await store.insert_room(room)
    return account, room.sid


def make(
    account: AccountSid,
    room: RoomSid,
    i: int,
    *,
    codec: RecordingCodec = RecordingCodec.OPUS,
    participant: str | None = None,
) -> Recording:
    return Recording.for_track(
        sid=RecordingSid(new_sid("RT")),
        account_sid=account,
        room_sid=room,
        participant_sid=ParticipantSid(participant or new_sid("PA")),
        source_sid=TrackSid(new_sid("MT")),
        track_name=f"track {i}",
        codec=codec,
        now=T0 + dt.timedelta(minutes=i),
        status_callback="https://example.com/cb",
        status_callback_method="GET",
    )


async def test_round_trip_and_update(store: Store) -> None:
    account, room = await account_with_room(store)
    rec = make(account, room, 0, codec=RecordingCodec.VP8)
    await store.insert_recording(rec)
    assert await store.get_recording(account, rec.sid) == rec
    done = rec.completed(T0 + dt.timedelta(seconds=9), duration_ms=8400, size=10**10, offset=2**45)
    assert await store.update_recording(done, expected=RecordingStatus.PROCESSING)
    assert await store.get_recording(account, rec.sid) == done
    # Conditional: a recording no longer processing is not finished a second time.
    again = rec.failed(T0, "late")
    assert not await store.update_recording(again, expected=RecordingStatus.PROCESSING)
    assert await store.get_recording(account, rec.sid) == done
    failed = replace(
        make(account, room, 1), status=RecordingStatus.FAILED, failure_reason="x" * 512
    )
    await store.insert_recording(failed)
    assert await store.get_recording(account, failed.sid) == failed


async def test_scoped_by_account(store: Store) -> None:
    account, room = await account_with_room(store)
    other, _ = await account_with_room(store)
    rec = make(account, room, 0)
    await store.insert_recording(rec)
    assert await store.get_recording(other, rec.sid) is None
    assert (await store.list_recordings(other, RecordingFilter(), PageRequest())).items == []


async def test_filters(store: Store) -> None:
    account, room = await account_with_room(store)
    _, other_room = await account_with_room(store)
    alice = new_sid("PA")
    mic = make(account, room, 0, participant=alice)
    cam = make(account, room, 1, codec=RecordingCodec.VP8, participant=alice)
    bob = make(account, room, 2)
    done = cam.completed(T0, duration_ms=1, size=1)
    for rec in (mic, cam, bob):
        await store.insert_recording(rec)
    assert await store.update_recording(done, expected=RecordingStatus.PROCESSING)

    async def sids(**kw: object) -> list[str]:
        page = await store.list_recordings(account, RecordingFilter(**kw), PageRequest())  # type: ignore[arg-type]
        return [r.sid for r in page.items]

    assert await sids() == [bob.sid, cam.sid, mic.sid]  # newest first
    assert await sids(room_sid=room) == [bob.sid, cam.sid, mic.sid]
    assert await sids(room_sid=other_room) == []
    assert await sids(status=RecordingStatus.COMPLETED) == [cam.sid]
    assert await sids(source_sid=mic.source_sid) == [mic.sid]
    assert await sids(grouping_sids=(alice,)) == [cam.sid, mic.sid]
    assert await sids(grouping_sids=(room, alice)) == [cam.sid, mic.sid]
    assert await sids(grouping_sids=(other_room, alice)) == []
    assert await sids(media_type=RecordingType.VIDEO) == [cam.sid]
    assert await sids(created_after=T0 + dt.timedelta(minutes=1)) == [bob.sid, cam.sid]
    assert await sids(created_before=T0 + dt.timedelta(minutes=1)) == [mic.sid]


async def test_keyset_paging(store: Store) -> None:
    account, room = await account_with_room(store)
    recs = [make(account, room, i) for i in range(5)]
    for rec in recs:
        await store.insert_recording(rec)
    first = await store.list_recordings(account, RecordingFilter(), PageRequest(page_size=2))
    assert [r.sid for r in first.items] == [recs[4].sid, recs[3].sid]
    assert first.next_token is not None and first.previous_token is None
    after, before = parse_page_token(first.next_token)
    second = await store.list_recordings(
        account, RecordingFilter(), PageRequest(page_size=2, page=1, after=after, before=before)
    )
    assert [r.sid for r in second.items] == [recs[2].sid, recs[1].sid]


async def test_recordings_with_status_spans_accounts(store: Store) -> None:
    a1, r1 = await account_with_room(store)
    a2, r2 = await account_with_room(store)
    first, second = make(a1, r1, 0), make(a2, r2, 1)
    for rec in (first, second):
        await store.insert_recording(rec)
    processing = await store.recordings_with_status(RecordingStatus.PROCESSING)
    assert [r.sid for r in processing if r.sid in (first.sid, second.sid)] == [
        first.sid,
        second.sid,
    ]
