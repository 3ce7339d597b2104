"""Compositions and composition hooks in the store: round trip, conditional transitions,
filters, paging, name uniqueness, privacy."""

from __future__ import annotations

from dataclasses import replace

from parlour.domain.compositions import (
    Composition,
    CompositionFormat,
    CompositionHook,
    CompositionSpec,
    CompositionStatus,
)
from parlour.domain.media_settings import Envelope
from parlour.domain.paging import PageRequest, parse_page_token
from parlour.domain.ports import CompositionFilter, CompositionHookFilter, Store
from parlour.domain.sids import new_sid
from tests.store.factories import at, new_room

SPEC = CompositionSpec.checked(
    video_layout={"grid": {"video_sources": ["*"], "max_rows": 2}},
    audio_sources=("*",),
    resolution="1280x720",
    format=CompositionFormat.MP4,
    trim=False,
)


def make(room_sid: str, account: str, i: int) -> Composition:
    return Composition(
        sid=new_sid("CJ"),
        account_sid=account,  # type: ignore[arg-type]
        room_sid=room_sid,  # type: ignore[arg-type]
        spec=SPEC,
        status=CompositionStatus.ENQUEUED,
        date_created=at(i),
        date_updated=at(i),
        status_callback="http://example.com/cb",
    )


async def test_composition_round_trip_and_conditional_writes(store: Store) -> None:
    room = await new_room(store)
    c = make(room.sid, room.account_sid, 1)
    await store.insert_composition(c)
    assert await store.get_composition(room.account_sid, c.sid) == c
    assert await store.get_composition(new_sid("AC"), c.sid) is None  # type: ignore[arg-type]
    claimed = c.processing(at(2))
    assert await store.update_composition(claimed, expected=CompositionStatus.ENQUEUED)
    assert not await store.update_composition(claimed, expected=CompositionStatus.ENQUEUED)
    done = claimed.completed(at(3), duration_ms=61_400, size=1234, bitrate=99)
    assert await store.update_composition(done, expected=CompositionStatus.PROCESSING)
    stored = await store.get_composition(room.account_sid, c.sid)
    assert stored == done and stored.duration == 61 and stored.spec == SPEC
    assert await store.compositions_with_status(CompositionStatus.COMPLETED) == [done]
    assert await store.expired_compositions(room.account_sid, at(10), 10) == [done]
    assert await store.expired_compositions(room.account_sid, at(0), 10) == []


async def test_composition_keeps_where_its_media_is(store: Store) -> None:
    """CompositionSettings: the bucket's credential, object URL, key and envelope."""
    room = await new_room(store)
    c = replace(
        make(room.sid, room.account_sid, 1),
        media_credentials_sid=new_sid("CR"),
        media_external_location="http://127.0.0.1:9/bucket/path/CJx.mp4",
        encryption_key_sid=new_sid("CR"),
    )
    await store.insert_composition(c)
    assert await store.get_composition(room.account_sid, c.sid) == c
    claimed = c.processing(at(2))
    assert await store.update_composition(claimed, expected=CompositionStatus.ENQUEUED)
    done = replace(
        claimed.completed(at(3), duration_ms=1000, size=48, bitrate=1),
        encryption=Envelope(c.encryption_key_sid or "", "a2V5", "aXY=", 40),
    )
    assert await store.update_composition(done, expected=CompositionStatus.PROCESSING)
    stored = await store.get_composition(room.account_sid, c.sid)
    assert stored == done and stored.encrypted
    assert stored.encryption is not None and stored.encryption.plain_size == 40


async def test_composition_list_filters_newest_first(store: Store) -> None:
    room = await new_room(store)
    made = [make(room.sid, room.account_sid, i) for i in range(5)]
    for c in made:
        await store.insert_composition(c)
    await store.update_composition(made[1].processing(at(9)), expected=CompositionStatus.ENQUEUED)
    page = await store.list_compositions(room.account_sid, CompositionFilter(), PageRequest(2))
    assert [c.sid for c in page.items] == [made[4].sid, made[3].sid] and page.next_token
    second = await store.list_compositions(
        room.account_sid,
        CompositionFilter(),
        PageRequest(2, after=parse_page_token(page.next_token)[0]),
    )
    assert [c.sid for c in second.items] == [made[2].sid, made[1].sid]
    flt = CompositionFilter(status=CompositionStatus.PROCESSING, room_sid=room.sid)
    only = await store.list_compositions(room.account_sid, flt, PageRequest(50))
    assert [c.sid for c in only.items] == [made[1].sid]
    dated = CompositionFilter(created_after=at(1), created_before=at(3))
    assert len((await store.list_compositions(room.account_sid, dated, PageRequest())).items) == 2


def hook(account: str, name: str, i: int = 0, *, enabled: bool = True) -> CompositionHook:
    return CompositionHook(
        sid=new_sid("HK"),
        account_sid=account,  # type: ignore[arg-type]
        friendly_name=name,
        enabled=enabled,
        spec=SPEC,
        date_created=at(i),
    )


async def test_hooks_unique_names_filters_update_delete(store: Store) -> None:
    room = await new_room(store)
    account = room.account_sid
    a = hook(account, "My Hook", 1)
    b = hook(account, "other_hook", 2, enabled=False)
    assert await store.insert_composition_hook(a)
    assert await store.insert_composition_hook(b)
    assert not await store.insert_composition_hook(hook(account, "My Hook"))
    assert await store.get_composition_hook(account, a.sid) == a
    by_name = CompositionHookFilter(friendly_name="my*")
    page = await store.list_composition_hooks(account, by_name, PageRequest())
    assert [h.sid for h in page.items] == [a.sid]
    underscore = CompositionHookFilter(friendly_name="other_*")
    assert len((await store.list_composition_hooks(account, underscore, PageRequest())).items) == 1
    literal = CompositionHookFilter(friendly_name="other%")
    assert not (await store.list_composition_hooks(account, literal, PageRequest())).items
    enabled = await store.list_composition_hooks(
        account, CompositionHookFilter(enabled=False), PageRequest()
    )
    assert [h.sid for h in enabled.items] == [b.sid]
    from dataclasses import replace

    assert not await store.update_composition_hook(replace(b, friendly_name="My Hook"))
    renamed = replace(b, friendly_name="Renamed", enabled=True, date_updated=at(5))
    assert await store.update_composition_hook(renamed)
    assert await store.get_composition_hook(account, b.sid) == renamed
    assert await store.delete_composition_hook(account, a.sid)
    assert not await store.delete_composition_hook(account, a.sid)


async def test_compositions_are_personal_data_of_their_room(store: Store) -> None:
    room = await new_room(store)
    c = make(room.sid, room.account_sid, 1)
    await store.insert_composition(c)
    data = await store.personal_data(room.account_sid, None)
    assert [x.sid for x in data.compositions] == [c.sid]
    # the room must have ended before an account erasure
    from parlour.domain.ports import ErasureBlocked

    try:
        await store.erase_personal_data(room.account_sid, None)
    except ErasureBlocked:
        await store.complete_room(room.sid, at(5))
        await store.erase_personal_data(room.account_sid, None)
    assert await store.get_composition(room.account_sid, c.sid) is None
