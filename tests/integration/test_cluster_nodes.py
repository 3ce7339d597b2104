"""Several nodes: three `parlour serve` processes on loopback sharing a real PostgreSQL
(tests/pg.py) and a real Redis (tests/redis_support.py).

Python SDK clients joining one room through different nodes see each other's media (the
second is relayed to the room's node); REST actions sent to a node that does not host the
room reach its participants; a node killed with SIGKILL is recovered once by a survivor
(participants disconnected, room completed, each callback sent once) while the other nodes
keep serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from aiortc import AudioStreamTrack, VideoStreamTrack

from parlour.client.video import LocalTrackInfo, Room, connect
from parlour.cluster import RedisRegistry
from parlour.domain.clock import SystemClock
from parlour.domain.sids import RoomSid
from parlour.services.accounts import AccountService
from parlour.store.sql import SqlStore
from tests.cli_support import PARLOUR, clean_env
from tests.helpers import Account, access_token, wait_for
from tests.integration.recording_support import Receiver
from tests.pg import PostgresCluster
from tests.pg import missing_reason as pg_missing
from tests.redis_support import RedisServer
from tests.redis_support import missing_reason as redis_missing

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.slow]

SECRET = "cluster-test-secret-" + "0" * 44
STALE = 2.0


@dataclass
class Node:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    url: str = ""
    node_id: str = ""

    @property
    def ws(self) -> str:
        return self.url.replace("http", "ws", 1) + "/signaling"

    def lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()


@dataclass
class Cluster:
    dsn: str
    redis_url: str
    nodes: dict[str, Node]

    def by_id(self, node_id: str) -> Node:
        return next(n for n in self.nodes.values() if n.node_id == node_id)


def _start(name: str, root: Path, env: dict[str, str]) -> Node:
    log = root / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*PARLOUR, "serve", "--port", "0"],
            stdout=subprocess.DEVNULL,
            stderr=out,
            env={**env, "PARLOUR_DATA_DIR": str(root / name)},
        )
    return Node(name, process, log)


def _ready(node: Node, within: float = 60) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        text = node.log.read_text(errors="replace")
        url = re.search(r"listening on (http://\S+)", text)
        ident = re.search(r"cluster node (ND[0-9a-f]{32}) at", text)
        if url and ident:
            node.url, node.node_id = url.group(1), ident.group(1)
            return
        if node.process.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError(f"node {node.name} did not start:\n{node.log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    reason = pg_missing() or redis_missing()
    if reason:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("cluster")
    pg = PostgresCluster.start()
    redis = RedisServer.start()
    nodes: dict[str, Node] = {}
    try:
        dsn = pg.create_database("parlour")
        env = clean_env(
            PARLOUR_DATABASE_URL=dsn,
            PARLOUR_REDIS_URL=redis.url,
            PARLOUR_SECRET_KEY=SECRET,
            PARLOUR_NODE_HEARTBEAT_SECONDS="0.25",
            PARLOUR_NODE_STALE_SECONDS=str(STALE),
            # A "minute" of room timeouts is a second: an ad-hoc room nobody joins ends
            # after 5 s; the test's doomed room (EmptyRoomTimeout=1) a second after it empties.
            PARLOUR_TIMEOUT_MINUTE_SECONDS="1",
            PARLOUR_IDLE_SWEEP_SECONDS="0.2",
            PARLOUR_WEBHOOK_ALLOW_PRIVATE="true",
            PARLOUR_WEBHOOK_RETRY_INITIAL_SECONDS="0.1",
        )
        # All three at once: they migrate the empty database one after the other.
        for name in ("a", "b", "c"):
            nodes[name] = _start(name, root, env)
        for node in nodes.values():
            _ready(node)
        yield Cluster(dsn, redis.url, nodes)
    finally:
        for node in nodes.values():
            if node.process.poll() is None:
                node.process.send_signal(signal.SIGINT)
        for node in nodes.values():
            try:
                node.process.wait(20)
            except subprocess.TimeoutExpired:
                node.process.kill()
                node.process.wait(10)
        redis.stop()
        pg.stop()


@pytest.fixture
async def account(cluster: Cluster) -> Account:
    store = await SqlStore.open(cluster.dsn)
    try:
        accounts = AccountService(store, SystemClock(), SECRET.encode())
        creds = await accounts.create_account("cluster test")
        key = await accounts.create_key(creds.account_sid, "test key")
        return Account(creds.account_sid, creds.auth_token, key.key.sid, key.secret)
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def registry(cluster: Cluster) -> AsyncIterator[RedisRegistry]:
    reg = await RedisRegistry.connect(cluster.redis_url)
    try:
        yield reg
    finally:
        await reg.close()


def rest(node: Node, account: Account) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=node.url, auth=(account.sid, account.auth_token))


async def join(node: Node, account: Account, identity: str, room: str, **options) -> Room:
    return await connect(node.ws, access_token(account, identity), name=room, **options)


async def events_until(room: Room, name: str) -> list[str]:
    seen = []
    while not seen or seen[-1] != name:
        seen.append((await room.next_event(10)).name)
    return seen


async def host_of(cluster: Cluster, room_sid: str) -> Node:
    async with registry(cluster) as reg:
        host = await reg.room_host(RoomSid(room_sid))
    assert host is not None, f"room {room_sid} has no host"
    return cluster.by_id(host)


async def test_clients_on_different_nodes_see_each_others_media(
    cluster: Cluster, account: Account
) -> None:
    a, b = cluster.nodes["a"], cluster.nodes["b"]
    a_mic, a_cam, b_mic = AudioStreamTrack(), VideoStreamTrack(), AudioStreamTrack()
    alice = await join(
        a,
        account,
        "alice",
        "media",
        tracks=(LocalTrackInfo.from_track(a_mic, "mic"), LocalTrackInfo.from_track(a_cam, "cam")),
    )
    bob = await join(b, account, "bob", "media", tracks=(LocalTrackInfo.from_track(b_mic, "mic"),))
    try:
        assert alice.sid == bob.sid
        host = await host_of(cluster, alice.sid)
        assert host.name in ("a", "b")  # one of them came through a relay
        await bob.wait_for(lambda: len(bob.remote_media) == 2, 20)
        await alice.wait_for(lambda: len(alice.remote_media) == 1, 20)
        for room in (alice, bob):
            for track in room.remote_media.values():
                frame = await asyncio.wait_for(track.recv(), 10)
                if track.kind == "video":
                    assert (frame.width, frame.height) == (640, 480)
        assert [p.identity for p in bob.participants.values()] == ["alice"]
        # Updates flow through the relay too: bob leaves, alice sees it.
        await bob.disconnect()
        await alice.wait_for(lambda: not alice.participants, 10)
    finally:
        await alice.disconnect()
        await bob.disconnect()


async def test_rest_actions_on_another_node_reach_the_room(
    cluster: Cluster, account: Account
) -> None:
    carol = await join(cluster.nodes["a"], account, "carol", "rest", media=False)
    dave = await join(cluster.nodes["b"], account, "dave", "rest", media=False)
    try:
        host = await host_of(cluster, carol.sid)
        other = next(n for n in cluster.nodes.values() if n is not host)
        # A relayed client's socket drops: it resumes through the node it reached, which
        # relays the `sync` to the host named in its session token.
        relayed, direct = (dave, carol) if host.name == "a" else (carol, dave)
        await relayed.drop_connection()
        assert "reconnecting" in await events_until(relayed, "reconnected")
        assert "participantReconnecting" in await events_until(direct, "participantReconnected")
        async with rest(other, account) as http:
            listed = (await http.get(f"/v1/Rooms/{carol.sid}/Participants")).json()
            assert {p["status"] for p in listed["participants"]} == {"connected"}
        async with rest(other, account) as http:
            r = await http.post(
                "/v1/Rooms/rest/Participants/carol", data={"Status": "disconnected"}
            )
            assert r.status_code == 202 and r.json()["status"] == "disconnected"
            await carol.wait_for(lambda: carol.state == "disconnected", 10)
            assert carol.disconnect_error is not None and carol.disconnect_error.code == 53204
            await dave.wait_for(lambda: not dave.participants, 10)

            r = await http.post("/v1/Rooms/rest", data={"Status": "completed"})
            assert r.status_code == 202 and r.json()["status"] == "completed"
            await dave.wait_for(lambda: dave.state == "disconnected", 10)
            assert dave.disconnect_error is not None and dave.disconnect_error.code == 53118
        async with registry(cluster) as reg:
            assert await reg.room_host(RoomSid(carol.sid)) is None  # released as it ended
    finally:
        await carol.disconnect()
        await dave.disconnect()


async def test_a_killed_node_is_recovered_once_and_the_others_keep_serving(
    cluster: Cluster, account: Account
) -> None:
    a, b, c = cluster.nodes["a"], cluster.nodes["b"], cluster.nodes["c"]
    with Receiver(account.auth_token) as hooks:
        async with rest(a, account) as http:
            r = await http.post(
                "/v1/Rooms",
                data={"UniqueName": "doomed", "StatusCallback": hooks.url, "EmptyRoomTimeout": 1},
            )
            room_sid = r.json()["sid"]
        async with registry(cluster) as reg:  # the room goes live on c
            assert await reg.claim_room(RoomSid(room_sid), c.node_id, None) == c.node_id
        erin = await join(a, account, "erin", "doomed", media=False)  # relayed to c
        frank = await join(c, account, "frank", "doomed", media=False)
        await erin.wait_for(lambda: len(erin.participants) == 1, 10)

        c.process.send_signal(signal.SIGKILL)
        c.process.wait(10)

        async with rest(b, account) as http:

            async def room_status() -> str:
                return (await http.get(f"/v1/Rooms/{room_sid}")).json()["status"]

            deadline = time.monotonic() + 15
            while await room_status() != "completed":
                assert time.monotonic() < deadline, "the dead node's room was not completed"
                await asyncio.sleep(0.1)
            listed = (
                await http.get(
                    f"/v1/Rooms/{room_sid}/Participants", params={"Status": "disconnected"}
                )
            ).json()["participants"]
            assert {p["identity"] for p in listed} == {"erin", "frank"}

        def events() -> list[str]:
            return [p.get("StatusCallbackEvent", repr(p)) for p, _ in hooks.received]

        def callbacks_in() -> str | None:
            got = events()
            if got.count("room-ended") < 1 or got.count("participant-disconnected") < 2:
                return f"callbacks so far: {got}"
            return None

        await wait_for(callbacks_in, 10)
        await asyncio.sleep(1)  # a second recovery would have sent its callbacks by now
        got = events()
        assert got.count("participant-disconnected") == 2, got
        assert got.count("room-ended") == 1, got
        assert all(valid for _, valid in hooks.received)  # signed with the account's token
    recoveries = [line for n in (a, b) for line in n.lines() if f"node={c.node_id} gone" in line]
    assert len(recoveries) == 1, recoveries  # one survivor won the recovery claim
    async with registry(cluster) as reg:
        assert c.node_id not in {n.node_id for n in await reg.live_nodes()}
        assert c.node_id not in await reg.gone_nodes()  # forgotten
        assert await reg.room_host(RoomSid(room_sid)) is None

    # The clients saw their room go; a and b keep serving, a new room included.
    await erin.wait_for(lambda: erin.state == "disconnected", 20)
    for room in (erin, frank):
        await room.disconnect()
    gina = await join(a, account, "gina", "after", media=False)
    hank = await join(b, account, "hank", "after", media=False)
    try:
        await gina.wait_for(lambda: len(gina.participants) == 1, 10)
        assert (await host_of(cluster, gina.sid)).name in ("a", "b")
    finally:
        await gina.disconnect()
        await hank.disconnect()
