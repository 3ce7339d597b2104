"""The store contract, on SQLite always and on PostgreSQL when PARLOUR_TEST_POSTGRES_DSN is set.

Set it to e.g. ``postgresql://postgres@127.0.0.1:5432/parlour_test`` (an empty database the
tests may fill; each test uses fresh accounts, so runs do not interfere).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from parlour.config import Config
from parlour.domain import errors
from parlour.domain.accounts import Account
from parlour.domain.paging import PageRequest, parse_page_token
from parlour.domain.participants import Participant, ParticipantStatus
from parlour.domain.ports import ParticipantFilter, RoomFilter
from parlour.domain.rooms import Room, RoomSpec, RoomStatus, validate_room_spec
from parlour.domain.sids import AccountSid, ParticipantSid, RoomSid, new_sid
from parlour.store.sql import SqlStore

T0 = dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.UTC)

BACKENDS = ["sqlite"]
if os.environ.get("PARLOUR_TEST_POSTGRES_DSN"):
    BACKENDS.append("postgres")


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlStore]:
    if request.param == "sqlite":
        url = Config(data_dir=tmp_path).db_url
    else:
        url = Config(database_url=os.environ["PARLOUR_TEST_POSTGRES_DSN"]).db_url
    s = await SqlStore.open(url)
    yield s
    await s.close()


async def new_account(store: SqlStore) -> AccountSid:
    sid = AccountSid(new_sid("AC"))
    await store.insert_account(Account(sid, "t", "h" * 64, T0, T0))
    return sid


def make_room(account: AccountSid, i: int, **kw: object) -> Room:
    return validate_room_spec(
        RoomSpec(**kw),  # type: ignore[arg-type]
        sid=RoomSid(new_sid("RM")),
        account_sid=account,
        now=T0 + dt.timedelta(seconds=i),
    )


async def test_room_round_trip_keeps_every_field(store: SqlStore) -> None:
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


async def test_unique_name_only_among_in_progress(store: SqlStore) -> None:
    account = await new_account(store)
    first = make_room(account, 0, unique_name="n")
    await store.insert_room(first)
    with pytest.raises(errors.RoomError) as err:
        await store.insert_room(make_room(account, 1, unique_name="n"))
    assert err.value.code == 53113
    await store.update_room(first.completed(T0 + dt.timedelta(seconds=5)))
    second = make_room(account, 2, unique_name="n")
    await store.insert_room(second)
    assert (await store.get_room(account, "n")) == second
    other = await new_account(store)
    await store.insert_room(make_room(other, 3, unique_name="n"))


async def test_keyset_paging_forwards_and_backwards(store: SqlStore) -> None:
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


async def test_room_filters(store: SqlStore) -> None:
    account = await new_account(store)
    a, b = make_room(account, 0, unique_name="a"), make_room(account, 100, unique_name="b")
    await store.insert_room(a)
    await store.insert_room(b)
    await store.update_room(a.completed(T0 + dt.timedelta(seconds=10)))
    req = PageRequest()

    async def sids(**kw: object) -> list[str]:
        page = await store.list_rooms(account, RoomFilter(**kw), req)  # type: ignore[arg-type]
        return [r.sid for r in page.items]

    assert await sids(status=RoomStatus.COMPLETED) == [a.sid]
    assert await sids(unique_name="b") == [b.sid]
    assert await sids(created_after=T0 + dt.timedelta(seconds=50)) == [b.sid]
    assert await sids(created_before=T0 + dt.timedelta(seconds=50)) == [a.sid]
    assert await sids(created_after=T0) == [b.sid, a.sid]


async def test_participants_and_identity_lookup(store: SqlStore) -> None:
    account = await new_account(store)
    room = make_room(account, 0)
    await store.insert_room(room)

    def participant(identity: str, status: ParticipantStatus) -> Participant:
        return Participant(
            sid=ParticipantSid(new_sid("PA")),
            room_sid=room.sid,
            account_sid=account,
            identity=identity,
            status=status,
            date_created=T0,
            date_updated=T0,
            start_time=T0,
        )

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


async def test_instance_value_is_set_once(store: SqlStore) -> None:
    key = new_sid("XX")
    assert await store.set_instance_value_once(key, "first") == "first"
    assert await store.set_instance_value_once(key, "second") == "first"
    assert await store.get_instance_value(key) == "first"
