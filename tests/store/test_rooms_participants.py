"""The store contract for rooms and participants: round trips, lookups, filters, paging
(memory, SQLite, PostgreSQL: see conftest.py)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from parlour.domain import errors
from parlour.domain.paging import PageRequest, parse_page_token
from parlour.domain.participants import Participant, ParticipantStatus
from parlour.domain.ports import ParticipantFilter, RoomFilter, Store
from parlour.domain.rooms import RoomStatus
from parlour.domain.sids import ParticipantSid, RoomSid, new_sid
from tests.store.factories import T0, make_room, new_account


async def test_room_round_trip_keeps_every_field(store: Store) -> None:
    account = await new_account(store)
    room = make_room(
        account,
        0,
        unique_name="Ünïcode room",
        video_codecs=["H264"],
        record_participants_on_connect=True,
        transcriptions_configuration='{"languageCode": "en-US"}',
        status_callback="https://x.test/cb",
    )
    await store.insert_room(room)
    assert await store.get_room(account, room.sid) == room
    assert await store.get_room(account, "Ünïcode room") == room
    assert await store.get_room(await new_account(store), room.sid) is None


async def test_unique_name_only_among_in_progress(store: Store) -> None:
    account = await new_account(store)
    first = make_room(account, 0, unique_name="n")
    await store.insert_room(first)
    with pytest.raises(errors.RoomError) as err:
        await store.insert_room(make_room(account, 1, unique_name="n"))
    assert err.value.code == 53113
    assert await store.complete_room(first.sid, T0 + dt.timedelta(seconds=5)) is not None
    second = make_room(account, 2, unique_name="n")
    await store.insert_room(second)
    assert (await store.get_room(account, "n")) == second
    other = await new_account(store)
    await store.insert_room(make_room(other, 3, unique_name="n"))


async def test_keyset_paging_forwards_and_backwards(store: Store) -> None:
    account = await new_account(store)
    rooms = [make_room(account, i) for i in range(7)]
    for room in rooms:
        await store.insert_room(room)
    newest_first = [r.sid for r in reversed(rooms)]
    flt = RoomFilter(status=RoomStatus.IN_PROGRESS)
    seen: list[str] = []
    req = PageRequest(page_size=3)
    pages = []
    while True:
        page = await store.list_rooms(account, flt, req)
        pages.append(page)
        seen += [r.sid for r in page.items]
        if page.next_token is None:
            break
        after, before = parse_page_token(page.next_token)
        req = PageRequest(page_size=3, page=req.page + 1, after=after, before=before)
    assert seen == newest_first and len(pages) == 3
    assert pages[0].previous_token is None
    # Back from the last page.
    assert pages[2].previous_token is not None
    after, before = parse_page_token(pages[2].previous_token)
    back = await store.list_rooms(
        account, flt, PageRequest(page_size=3, page=1, after=after, before=before)
    )
    assert [r.sid for r in back.items] == newest_first[3:6]
    # Offset paging (Page without a token).
    by_page = await store.list_rooms(account, flt, PageRequest(page_size=3, page=2))
    assert [r.sid for r in by_page.items] == newest_first[6:]


async def test_room_filters(store: Store) -> None:
    account = await new_account(store)
    a, b = make_room(account, 0, unique_name="a"), make_room(account, 100, unique_name="b")
    await store.insert_room(a)
    await store.insert_room(b)
    assert await store.complete_room(a.sid, T0 + dt.timedelta(seconds=10)) is not None
    req = PageRequest()

    async def sids(**kw: object) -> list[str]:
        page = await store.list_rooms(account, RoomFilter(**kw), req)  # type: ignore[arg-type]
        return [r.sid for r in page.items]

    assert await sids(status=RoomStatus.COMPLETED) == [a.sid]
    assert await sids(unique_name="b") == [b.sid]
    assert await sids(created_after=T0 + dt.timedelta(seconds=50)) == [b.sid]
    assert await sids(created_before=T0 + dt.timedelta(seconds=50)) == [a.sid]
    assert await sids(created_after=T0) == [b.sid, a.sid]


async def test_participants_and_identity_lookup(store: Store) -> None:
    account = await new_account(store)
    room = make_room(account, 0)
    await store.insert_room(room)

    def participant(identity: str, status: ParticipantStatus) -> Participant:
        joined = Participant.joining(room.sid, account, identity, T0)
        return replace(joined, status=status, node_id=None)

    old = participant("alice", ParticipantStatus.DISCONNECTED)
    new = participant("alice", ParticipantStatus.CONNECTED)
    await store.insert_participant(old)
    await store.insert_participant(new)
    assert (await store.get_participant(room.sid, "alice")) == new
    assert (await store.get_participant(room.sid, old.sid)) == old
    page = await store.list_participants(
        room.sid, ParticipantFilter(statuses=[ParticipantStatus.DISCONNECTED]), PageRequest()
    )
    assert [p.sid for p in page.items] == [old.sid]
    assert [p.sid for p in await store.active_participants(room.sid)] == [new.sid]


async def test_instance_value_is_set_once(store: Store) -> None:
    key = new_sid("XX")
    assert await store.set_instance_value_once(key, "first") == "first"
    assert await store.set_instance_value_once(key, "second") == "first"
    assert await store.get_instance_value(key) == "first"


async def test_participant_filters_and_paging(store: Store) -> None:
    account = await new_account(store)
    room = make_room(account, 0)
    await store.insert_room(room)
    people = [
        Participant(
            sid=ParticipantSid(new_sid("PA")),
            room_sid=room.sid,
            account_sid=account,
            identity=f"p{i % 2}",
            status=ParticipantStatus.CONNECTED,
            date_created=T0 + dt.timedelta(seconds=i),
            date_updated=T0,
        )
        for i in range(5)
    ]
    for p in people:
        await store.insert_participant(p)

    async def sids(flt: ParticipantFilter, req: PageRequest | None = None) -> list[str]:
        return [
            p.sid
            for p in (await store.list_participants(room.sid, flt, req or PageRequest())).items
        ]

    assert await sids(ParticipantFilter()) == [p.sid for p in people]  # in the order they joined
    assert await sids(ParticipantFilter(identity="p1")) == [people[1].sid, people[3].sid]
    later = T0 + dt.timedelta(seconds=3)
    assert await sids(ParticipantFilter(created_after=later)) == [people[3].sid, people[4].sid]
    assert await sids(ParticipantFilter(created_before=later)) == [p.sid for p in people[:3]]
    first = await store.list_participants(room.sid, ParticipantFilter(), PageRequest(page_size=2))
    assert first.next_token is not None
    after, before = parse_page_token(first.next_token)
    second = await store.list_participants(
        room.sid, ParticipantFilter(), PageRequest(page_size=2, page=1, after=after, before=before)
    )
    assert [p.sid for p in second.items] == [people[2].sid, people[3].sid]
    assert second.previous_token is not None
    after, before = parse_page_token(second.previous_token)
    back = await store.list_participants(
        room.sid, ParticipantFilter(), PageRequest(page_size=2, after=after, before=before)
    )
    assert back.items == first.items and back.previous_token is None
    assert await store.list_participants(
        await _other_room(store), ParticipantFilter(), PageRequest()
    ) == type(first)([], None, None)


async def _other_room(store: Store) -> RoomSid:
    room = make_room(await new_account(store), 0)
    await store.insert_room(room)
    return room.sid
