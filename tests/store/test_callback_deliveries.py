"""Status callback delivery records in the store (SQLite; PostgreSQL when
PARLOUR_TEST_POSTGRES_DSN is set): numbering per resource, updates, the pending set."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import replace

from parlour.domain.events import CallbackDelivery, DeliveryStatus
from parlour.domain.ports import Store
from parlour.domain.sids import new_sid

T0 = dt.datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=dt.UTC)


def delivery(room: str, event: str = "room-created") -> CallbackDelivery:
    return CallbackDelivery(
        account_sid="AC" + "0" * 32,
        resource_sid=room,
        event=event,
        url="https://hooks.example.com/cb?x=1",
        method="POST",
        params={"RoomSid": room, "RoomName": "café ☕"},
        date_created=T0,
        next_attempt_at=T0,
    )


async def test_sequence_numbers_count_per_room_from_zero(store: Store) -> None:
    a, b = new_sid("RM"), new_sid("RM")
    first = await store.insert_callback_delivery(delivery(a))
    assert first.id is not None and first.sequence_number == 0
    assert (await store.insert_callback_delivery(delivery(b))).sequence_number == 0
    numbers = [
        (await store.insert_callback_delivery(delivery(a, "participant-connected"))).sequence_number
        for _ in range(3)
    ]
    assert numbers == [1, 2, 3]
    listed = await store.list_callback_deliveries(a)
    assert [d.sequence_number for d in listed] == [0, 1, 2, 3]
    assert listed[0] == first
    assert listed[0].params == {"RoomSid": a, "RoomName": "café ☕"}
    assert listed[0].status is DeliveryStatus.PENDING and listed[0].date_updated == T0


async def test_updates_and_the_pending_set(store: Store) -> None:
    a, b = sorted([new_sid("RM"), new_sid("RM")])
    a0 = await store.insert_callback_delivery(delivery(a))
    b0 = await store.insert_callback_delivery(delivery(b))
    a1 = await store.insert_callback_delivery(delivery(a, "room-ended"))
    later = T0 + dt.timedelta(seconds=2)
    await store.update_callback_delivery(
        replace(
            a0, status=DeliveryStatus.DELIVERED, attempts=3, last_status=200, date_updated=later
        )
    )
    retry = replace(
        b0,
        attempts=1,
        last_status=503,
        last_error="x" * 1000,
        next_attempt_at=later,
        date_updated=later,
    )
    await store.update_callback_delivery(retry)
    pending = await store.pending_callback_deliveries()
    mine = [d for d in pending if d.resource_sid in (a, b)]
    assert [(d.resource_sid, d.sequence_number) for d in mine] == [(a, 1), (b, 0)]
    assert mine[0] == a1
    stored_retry = mine[1]
    assert stored_retry.last_error == "x" * 512  # kept short
    assert (stored_retry.attempts, stored_retry.last_status, stored_retry.next_attempt_at) == (
        1,
        503,
        later,
    )
    [done, _] = await store.list_callback_deliveries(a)
    assert (done.status, done.attempts, done.last_status, done.date_updated) == (
        DeliveryStatus.DELIVERED,
        3,
        200,
        later,
    )


async def test_concurrent_inserts_of_different_rooms(store: Store) -> None:
    rooms = [new_sid("RM") for _ in range(5)]
    stored = await asyncio.gather(*(store.insert_callback_delivery(delivery(r)) for r in rooms))
    assert [d.sequence_number for d in stored] == [0] * 5
    assert len({d.id for d in stored}) == 5


async def test_a_gone_nodes_pending_callbacks_are_taken_over_once(store: Store) -> None:
    """Several nodes: each delivers its own callbacks; a gone node's (and those of no node)
    are taken over, each by one node, in sequence order."""
    room = new_sid("RM")
    live, gone, other = "ND" + "1" * 32, "ND" + "2" * 32, "ND" + "3" * 32
    for node in (live, other):
        await store.heartbeat_node(node, T0 + dt.timedelta(seconds=60))
    await store.heartbeat_node(gone, T0)
    mine = await store.insert_callback_delivery(replace(delivery(room), node_id=live))
    orphaned = [
        await store.insert_callback_delivery(replace(delivery(room, e), node_id=gone))
        for e in ("participant-connected", "participant-disconnected")
    ]
    legacy = await store.insert_callback_delivery(delivery(room, "room-ended"))
    done = await store.insert_callback_delivery(replace(delivery(room), node_id=gone))
    await store.update_callback_delivery(replace(done, status=DeliveryStatus.DELIVERED))
    assert mine.node_id == live and legacy.node_id is None

    alive_since = T0 + dt.timedelta(seconds=30)
    taken = await store.adopt_callback_deliveries(other, alive_since=alive_since)
    assert [(d.id, d.node_id) for d in taken] == [
        (orphaned[0].id, other),
        (orphaned[1].id, other),
        (legacy.id, other),
    ]
    # Nothing is taken twice, and a live node's own callbacks are never taken.
    assert await store.adopt_callback_deliveries(live, alive_since=alive_since) == []
    listed = {d.id: d.node_id for d in await store.list_callback_deliveries(room)}
    assert listed[mine.id] == live and listed[done.id] == gone

    # A single server that restarted (no liveness): every other pending callback is its.
    restarted = "ND" + "4" * 32
    everything = await store.adopt_callback_deliveries(restarted)
    assert [d.id for d in everything] == [mine.id, orphaned[0].id, orphaned[1].id, legacy.id]
