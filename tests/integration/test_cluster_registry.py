"""The live-room registry on a real Redis server, and the cluster service's placement,
control messages and crash rule on top of it (live rooms and the node monitor are fakes)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from parlour.cluster import RedisRegistry, redacted_url
from parlour.domain.ports import NodeInfo
from parlour.domain.sids import ParticipantSid, RoomSid
from parlour.services.cluster import ClusterService, node_of_session, signaling_url
from tests.redis_support import RedisServer, missing_reason

pytestmark = pytest.mark.integration

N1, N2, N3 = ("ND" + c * 32 for c in "123")
ROOM = RoomSid("RM" + "a" * 32)


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    server = RedisServer.start()
    yield server
    server.stop()


@pytest.fixture
async def reg(redis_server: RedisServer, request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    # A prefix per test: tests share the server, not their keys.
    registry = await RedisRegistry.connect(redis_server.url, prefix=f"t{id(request)}:")
    yield registry
    await registry.close()


async def test_heartbeats_expire_into_gone_nodes(reg: RedisRegistry) -> None:
    await reg.beat(NodeInfo(N1, "http://10.0.0.1:8080", load=3), ttl=0.2)
    await reg.beat(NodeInfo(N2, "http://10.0.0.2:8080"), ttl=30)
    assert await reg.live_nodes() == [
        NodeInfo(N1, "http://10.0.0.1:8080", load=3, rooms=0),
        NodeInfo(N2, "http://10.0.0.2:8080", load=0, rooms=0),
    ]
    assert await reg.gone_nodes() == []
    await asyncio.sleep(0.3)
    assert [n.node_id for n in await reg.live_nodes()] == [N2]
    assert await reg.gone_nodes() == [N1]
    assert await reg.forget_node(N1) == []
    assert await reg.gone_nodes() == []


async def test_a_room_has_one_host_and_claims_are_compare_and_set(reg: RedisRegistry) -> None:
    for node in (N1, N2):
        await reg.beat(NodeInfo(node, "http://x"), ttl=30)
    assert await reg.room_host(ROOM) is None
    results = await asyncio.gather(*(reg.claim_room(ROOM, n, None) for n in (N1, N2) * 5))
    assert len(set(results)) == 1  # every racer sees the one winner
    winner = results[0]
    loser = N2 if winner == N1 else N1
    assert await reg.claim_room(ROOM, loser, expected=loser) == winner  # stale expectation
    assert await reg.claim_room(ROOM, loser, expected=winner) == loser  # taken over
    rooms = {n.node_id: n.rooms for n in await reg.live_nodes()}
    assert rooms == {loser: 1, winner: 0}
    await reg.release_room(ROOM)
    assert await reg.room_host(ROOM) is None
    assert {n.rooms for n in await reg.live_nodes()} == {0}


async def test_forgetting_a_node_releases_only_the_rooms_it_still_hosts(
    reg: RedisRegistry,
) -> None:
    other = RoomSid("RM" + "b" * 32)
    await reg.beat(NodeInfo(N1, "http://x"), ttl=30)
    assert await reg.claim_room(ROOM, N1, None) == N1
    assert await reg.claim_room(other, N1, None) == N1
    assert await reg.claim_room(other, N2, expected=N1) == N2  # moved on meanwhile
    assert await reg.forget_node(N1) == [ROOM]
    assert await reg.room_host(ROOM) is None
    assert await reg.room_host(other) == N2
    assert await reg.live_nodes() == []  # unregistered, though its heartbeat key lasts


async def test_one_recoverer_per_gone_node(reg: RedisRegistry) -> None:
    wins = await asyncio.gather(*(reg.claim_recovery(N1, f"ND{i}", 5) for i in range(8)))
    assert wins.count(True) == 1


async def test_messages_reach_the_node_they_are_sent_to(reg: RedisRegistry) -> None:
    got: list[str] = []

    async def listen() -> None:
        async for message in reg.messages(N1):
            got.append(message)

    task = asyncio.create_task(listen())
    try:
        deadline = asyncio.get_running_loop().time() + 5
        while not got:  # subscribing takes a moment: send until one arrives
            assert asyncio.get_running_loop().time() < deadline
            await reg.publish(N1, "hello")
            await reg.publish(N2, "not for N1")
            await asyncio.sleep(0.02)
        assert set(got) == {"hello"}
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_bad_urls_and_unreachable_servers_are_clear_errors() -> None:
    assert redacted_url("redis://:s3cret@cache:6379/0") == "redis://:***@cache:6379/0"
    assert redacted_url("redis://cache:6379/0") == "redis://cache:6379/0"
    with pytest.raises(ValueError, match="PARLOUR_REDIS_URL") as bad:
        await RedisRegistry.connect("http://user:s3cret@cache")
    assert "s3cret" not in str(bad.value)
    with pytest.raises(ValueError, match="cannot reach Redis") as down:
        await RedisRegistry.connect("redis://:s3cret@127.0.0.1:1/0")
    assert "s3cret" not in str(down.value)


class FakeLive:
    """What the cluster service uses of `LiveRoomService`."""

    def __init__(self, sessions: int = 0, held: tuple[str, ...] = ()) -> None:
        self.session_count = sessions
        self.held = set(held)
        self.calls: list[tuple[str, str]] = []

    def holds_participant(self, sid: str) -> bool:
        return sid in self.held

    def live_room_sids(self) -> list[RoomSid]:
        return [ROOM] if self.held else []

    async def disconnect_participant(self, sid: str, code: int) -> None:
        self.calls.append(("disconnect", sid))

    async def end_room(self, sid: str, code: int) -> None:
        self.calls.append(("end", sid))

    async def subscribe_rules_changed(self, sid: str) -> None:
        self.calls.append(("rules", sid))


class FakeMonitor:
    def __init__(self) -> None:
        self.recovered: list[str] = []

    async def recover_node(self, node: str) -> int:
        self.recovered.append(node)
        return 0


def service(reg: RedisRegistry, node: str, live: FakeLive, monitor: Any = None) -> ClusterService:
    return ClusterService(
        reg,
        live,  # type: ignore[arg-type]
        monitor or FakeMonitor(),
        node_id=node,
        url=f"http://{node}",
        heartbeat=0.05,
        stale_after=0.2,
    )


async def test_placement_picks_the_least_loaded_live_node(reg: RedisRegistry) -> None:
    busy, idle = service(reg, N1, FakeLive(sessions=5)), service(reg, N2, FakeLive(sessions=1))
    for s in (busy, idle):
        await reg.beat(s.me, 30)
    hosts = await asyncio.gather(*(s.host_of(ROOM) for s in (busy, idle) * 4))
    assert {h.node_id for h in hosts} == {N2}
    # The next room goes to the node with fewer rooms when the sessions are equal.
    busy_live = FakeLive(sessions=1)
    await reg.beat(service(reg, N1, busy_live).me, 30)
    second = await busy.host_of(RoomSid("RM" + "c" * 32))
    assert second.node_id == N1


async def test_control_messages_reach_the_session_holder(reg: RedisRegistry) -> None:
    holder_live, other_live = FakeLive(held=("PA1",)), FakeLive()
    holder, other = service(reg, N1, holder_live), service(reg, N2, other_live)
    for s in (holder, other):
        await s.start()
    try:
        await other.disconnect_participant(ParticipantSid("PA1"), 53204)
        await other.subscribe_rules_changed(ParticipantSid("PA1"))
        assert await reg.claim_room(ROOM, N1, None) == N1
        await other.end_room(ROOM, 53118)
        expected = [("disconnect", "PA1"), ("rules", "PA1"), ("end", ROOM)]
        deadline = asyncio.get_running_loop().time() + 5
        while holder_live.calls != expected:
            assert asyncio.get_running_loop().time() < deadline, holder_live.calls
            await asyncio.sleep(0.02)
        assert other_live.calls == [("end", ROOM)]  # tried locally first, then sent
        # Garbage on the channel is dropped, and the channel keeps working.
        for junk in ("not json", json.dumps({"op": "explode", "sid": "x"}), "[]", "{}"):
            await holder.apply(junk)
        await holder.apply(json.dumps({"op": "end_room", "sid": "RMx", "code": "53118"}))
        assert holder_live.calls[-1] == ("end", "RMx")
    finally:
        for s in (holder, other):
            await s.stop()


async def test_a_silent_node_is_recovered_by_one_survivor(reg: RedisRegistry) -> None:
    monitors = [FakeMonitor(), FakeMonitor()]
    survivors = [service(reg, n, FakeLive(), m) for n, m in zip((N1, N2), monitors, strict=True)]
    await reg.beat(NodeInfo(N3, "http://dead"), ttl=0.1)
    assert await reg.claim_room(ROOM, N3, None) == N3
    await asyncio.sleep(0.15)
    done = await asyncio.gather(*(s.recover_gone() for s in survivors))
    assert sorted(done) == [[], [N3]]
    assert [m.recovered for m in monitors].count([N3]) == 1
    assert await reg.room_host(ROOM) is None
    assert await reg.gone_nodes() == []


def test_session_tokens_name_their_node() -> None:
    assert node_of_session("SE" + N1 + "ab" * 16) == N1
    assert node_of_session("SE" + "ab" * 16) is None
    assert node_of_session("SEND12") is None
    assert signaling_url("http://10.0.0.1:8080/") == "ws://10.0.0.1:8080/signaling"
    assert signaling_url("https://node-1.internal") == "wss://node-1.internal/signaling"


async def test_a_node_claims_back_its_live_rooms(reg: RedisRegistry) -> None:
    """After a Redis that restarted empty (here: a released claim), the node holding a
    room's sessions claims it again at its next heartbeat."""
    node = service(reg, N1, FakeLive(held=("PA1",)))
    await node.reclaim()
    assert await reg.room_host(ROOM) == N1
    await reg.release_room(ROOM)
    await node.start()
    try:
        deadline = asyncio.get_running_loop().time() + 5
        while await reg.room_host(ROOM) != N1:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.02)
    finally:
        await node.stop()
    assert await reg.room_host(ROOM) is None  # a clean stop releases it


async def test_an_unreachable_host_is_a_relay_error() -> None:
    from parlour.signaling.relay import RelayError, relay

    async def never() -> str:
        raise AssertionError("nothing is read from the client before the node answers")

    async def nothing(_: object) -> None:
        raise AssertionError("nothing is sent to the client")

    with pytest.raises(RelayError):
        await relay(
            "ws://127.0.0.1:1/signaling",
            "{}",
            headers={},
            receive=never,
            send=nothing,
            close=nothing,
            client_code=lambda exc: None,
        )
