"""Transcriptions resources in the store: round trip, conditional updates, paging, per-room
listing, and erasure with the account's rooms (SQLite, PostgreSQL when available, memory)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from parlour.domain.paging import PageRequest, parse_page_token
from parlour.domain.ports import Store
from parlour.domain.sids import AccountSid, RoomSid
from parlour.domain.transcriptions import Transcription, TranscriptionStatus, new_ttid
from tests.store.factories import T0, at, new_room


def make(account: AccountSid, room: RoomSid, i: int = 0) -> Transcription:
    now = at(i)
    return Transcription(
        ttid=new_ttid(),
        account_sid=account,
        room_sid=room,
        status=TranscriptionStatus.STOPPED,
        date_created=now,
        date_updated=now,
        configuration={"languageCode": "en-US", "partialResults": True, "hints": "a, b"},
    ).start(now)


async def test_round_trip_and_conditional_update(store: Store) -> None:
    room = await new_room(store)
    t = make(room.account_sid, room.sid)
    await store.insert_transcription(t)
    assert await store.get_transcription(room.account_sid, room.sid, t.ttid) == t
    stopped = t.stop(T0 + dt.timedelta(seconds=90))
    assert stopped.duration == 90 and stopped.status is TranscriptionStatus.STOPPED
    assert await store.update_transcription(stopped, expected=TranscriptionStatus.STARTED)
    # A second writer expecting `started` loses.
    assert not await store.update_transcription(
        stopped.stop(T0 + dt.timedelta(seconds=99)), expected=TranscriptionStatus.STARTED
    )
    assert await store.get_transcription(room.account_sid, room.sid, t.ttid) == stopped
    restarted = stopped.start(T0 + dt.timedelta(seconds=100))
    assert restarted.end_time is None and restarted.duration == 90
    assert await store.update_transcription(restarted, expected=TranscriptionStatus.STOPPED)
    again = restarted.stop(T0 + dt.timedelta(seconds=110))
    assert again.duration == 100


async def test_other_accounts_and_rooms_do_not_see_it(store: Store) -> None:
    room = await new_room(store)
    other = await new_room(store)
    t = make(room.account_sid, room.sid)
    await store.insert_transcription(t)
    assert await store.get_transcription(other.account_sid, room.sid, t.ttid) is None
    assert await store.get_transcription(room.account_sid, other.sid, t.ttid) is None
    assert (await store.list_transcriptions(other.account_sid, room.sid, PageRequest())).items == []
    assert await store.room_transcriptions(other.sid) == []


async def test_lists_page_in_creation_order(store: Store) -> None:
    room = await new_room(store)
    made = [make(room.account_sid, room.sid, i) for i in range(5)]
    for t in made:
        await store.insert_transcription(t)
    page = await store.list_transcriptions(room.account_sid, room.sid, PageRequest(page_size=2))
    assert [t.ttid for t in page.items] == [t.ttid for t in made[:2]]
    assert page.next_token is not None
    after, _ = parse_page_token(page.next_token)
    rest = await store.list_transcriptions(
        room.account_sid, room.sid, PageRequest(page_size=10, after=after)
    )
    assert [t.ttid for t in rest.items] == [t.ttid for t in made[2:]]
    assert [t.ttid for t in await store.room_transcriptions(room.sid)] == [t.ttid for t in made]


async def test_erasing_the_account_erases_its_transcriptions(store: Store) -> None:
    room = await new_room(store)
    account = room.account_sid
    t = make(account, room.sid)
    await store.insert_transcription(replace(t, status=TranscriptionStatus.STOPPED))
    await store.complete_room(room.sid, at(60))
    await store.erase_personal_data(account, None)
    assert await store.room_transcriptions(room.sid) == []
