"""Nodes: heartbeats, stale nodes and the participants they held
(memory, SQLite, PostgreSQL: see conftest.py)."""

from __future__ import annotations

from parlour.domain.ports import Store
from tests.store.factories import at, join, new_room


async def test_heartbeats_and_stale_nodes(store: Store) -> None:
    assert await store.stale_nodes(at(100)) == []
    await store.heartbeat_node("b", at(0))
    await store.heartbeat_node("a", at(1))
    await store.heartbeat_node("c", at(0))
    assert await store.stale_nodes(at(0)) == []
    assert await store.stale_nodes(at(1)) == ["b", "c"]  # oldest heartbeat first, then id
    assert await store.stale_nodes(at(2)) == ["b", "c", "a"]
    await store.heartbeat_node("b", at(10))  # an upsert, not a second row
    assert await store.stale_nodes(at(5)) == ["c", "a"]
    assert await store.stale_nodes(at(11)) == ["c", "a", "b"]
    await store.delete_node("c")
    await store.delete_node("nope")
    assert await store.stale_nodes(at(11)) == ["a", "b"]


async def test_active_participants_of_node_span_rooms(store: Store) -> None:
    one, two = await new_room(store), await new_room(store)
    a1 = await join(store, one, "a1", node_id="n1")
    b1 = await join(store, two, "b1", node_id="n1")
    gone = await join(store, two, "gone", node_id="n1")
    await join(store, one, "elsewhere", node_id="n2")
    await join(store, one, "unassigned", node_id=None)
    await store.disconnect_participant(gone.sid, at(1))
    assert await store.active_participants_of_node("n1") == [a1, b1]
    assert await store.active_participants_of_node("n3") == []
