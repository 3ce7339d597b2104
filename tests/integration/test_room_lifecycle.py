"""The room lifecycle under races, crashes and silent clients, against real servers.

- REST completion and the last participant's leaving at the same moment: the room stays
  completed, with exactly one `room-ended`.
- `kill -9` of a server and a restart on the same data dir: the dead node's participants
  are disconnected with their callbacks, and the room ends by its empty-room timeout.
- A token whose grant names another room, or a too-long identity: refused, nothing created.
- A client that offers media but never does ICE: disconnected with 53405, its tracks gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from aiortc import RTCPeerConnection

from parlour.client.video import LocalTrackInfo, SignalingClientError, connect
from parlour.protocol import signaling as sig
from parlour.protocol.tokens import encode_token
from parlour.testing import ServerThread
from tests.cli_support import PARLOUR, clean_env, start_serve
from tests.helpers import Account, access_token, new_account, ws_url
from tests.integration.test_webhooks_delivery import Receiver, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    with ServerThread(
        tmp_path_factory.mktemp("lifecycle"),
        idle_sweep_seconds=0.05,
        timeout_minute_seconds=0.05,
        webhook_allow_private=True,
        webhook_retry_initial_seconds=0.05,
        media_connect_timeout_seconds=1.5,
    ) as srv:
        yield srv


@pytest.fixture
def acct(server: ServerThread) -> Account:
    return new_account(server)


def rest(server_url: str, acct: Account) -> httpx.Client:
    return httpx.Client(base_url=server_url, auth=(acct.sid, acct.auth_token), timeout=10)


async def test_completion_racing_the_last_leave_ends_once(
    server: ServerThread, acct: Account
) -> None:
    with Receiver(acct.auth_token) as receiver, rest(server.base_url, acct) as http:
        for attempt in range(12):
            name = f"race-{attempt}"
            created = http.post(
                "/v1/Rooms", data={"UniqueName": name, "StatusCallback": receiver.url()}
            )
            assert created.status_code == 201, created.text
            sid = created.json()["sid"]
            alice = await connect(
                ws_url(server), access_token(acct, "alice"), name=name, media=False
            )
            # Leave and complete at the same moment, with a little jitter either way.
            delay = (attempt % 4) * 0.002

            async def complete(sid: str = sid, delay: float = delay) -> httpx.Response:
                await asyncio.sleep(delay)
                async with httpx.AsyncClient(
                    base_url=server.base_url, auth=(acct.sid, acct.auth_token)
                ) as c:
                    return await c.post(f"/v1/Rooms/{sid}", data={"Status": "completed"})

            _, answer = await asyncio.gather(alice.disconnect(), complete())
            assert answer.status_code in (202, 400), answer.text
            room = http.get(f"/v1/Rooms/{sid}").json()
            assert room["status"] == "completed", room
            assert room["end_time"] is not None
            # The name is free again: a room by that name is a new room.
            again = http.post("/v1/Rooms", data={"UniqueName": name})
            assert again.status_code == 201 and again.json()["sid"] != sid
            http.post(f"/v1/Rooms/{again.json()['sid']}", data={"Status": "completed"})

            def ended_once(sid: str = sid) -> str | None:
                mine = [r for r in receiver.delivered if r.params["RoomSid"] == sid]
                names = [r.params["StatusCallbackEvent"] for r in mine]
                if names.count("room-ended") != 1 or "participant-disconnected" not in names:
                    return f"callbacks so far: {names}"
                return None

            await wait_for(ended_once)
        # Idle sweeps ran meanwhile (every 50 ms): still exactly one room-ended per room.
        await asyncio.sleep(0.3)
        per_room: dict[str, int] = {}
        for r in receiver.delivered:
            if r.params["StatusCallbackEvent"] == "room-ended":
                per_room[r.params["RoomSid"]] = per_room.get(r.params["RoomSid"], 0) + 1
        assert set(per_room.values()) == {1}
        assert all(r.signature_valid for r in receiver.delivered)


async def test_grant_for_another_room_creates_nothing(server: ServerThread, acct: Account) -> None:
    with rest(server.base_url, acct) as http:
        for _ in range(3):
            with pytest.raises(SignalingClientError) as exc:
                await connect(
                    ws_url(server),
                    access_token(acct, "mallory", room="room-x"),
                    name="room-y",
                    media=False,
                )
            assert exc.value.code == 20106
        with pytest.raises(SignalingClientError) as exc:
            await connect(ws_url(server), access_token(acct, "z" * 200), name="room-z")
        assert exc.value.code == 53201
        for name in ("room-x", "room-y", "room-z"):
            listed = http.get("/v1/Rooms", params={"UniqueName": name}).json()["rooms"]
            assert listed == [], name
        # The grant's own room works, by name.
        ok = await connect(
            ws_url(server), access_token(acct, "alice", room="room-x"), name="room-x", media=False
        )
        await ok.disconnect()


async def real_offer() -> tuple[RTCPeerConnection, str]:
    """A real SDP offer from aiortc (audio, video, data), for a client that then never
    answers a connectivity check."""
    pc = RTCPeerConnection()
    pc.addTransceiver("audio", direction="sendrecv")
    pc.addTransceiver("video", direction="sendrecv")
    pc.createDataChannel("chat")
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp


async def test_client_that_never_does_ice_is_disconnected_with_53405(
    server: ServerThread, acct: Account
) -> None:
    watcher = await connect(ws_url(server), access_token(acct, "watcher"), name="ice", media=False)
    pc, offer = await real_offer()
    mic = sig.LocalTrackState(
        id=str(uuid.uuid4()),
        kind=sig.TrackKind.AUDIO,
        name="mic",
        enabled=True,
        priority=sig.TrackPriority.STANDARD,
    )
    hello = sig.Hello(
        id=str(uuid.uuid4()),
        timeout=1000,
        body=sig.Connect(
            token=access_token(acct, "silent"),
            name="ice",
            participant=sig.LocalParticipantState(revision=1, tracks=(mic,)),
            peer_connections=(
                sig.PeerConnectionState(
                    id=str(uuid.uuid4()),
                    description=sig.SessionDescription(
                        type=sig.SdpType.OFFER, revision=1, sdp=offer
                    ),
                ),
            ),
        ),
    )
    started = time.monotonic()
    frames: list[dict[str, Any]] = []
    async with websockets.connect(ws_url(server)) as ws:
        await ws.send(sig.encode_message(hello))
        with contextlib.suppress(websockets.ConnectionClosed):
            while time.monotonic() - started < 20:  # heartbeats keep signaling alive
                frame = json.loads(await asyncio.wait_for(ws.recv(), 20))
                frames.append(frame)
                if frame.get("type") == "heartbeat":
                    await ws.send(json.dumps({"type": "heartbeat"}))
    await pc.close()
    bodies = [f.get("body", {}) for f in frames if f.get("type") == "msg"]
    assert [b["type"] for b in bodies][:1] == ["connected"]
    errors_sent = [b for b in bodies if b.get("type") == "error"]
    assert [e["code"] for e in errors_sent] == [53405]
    assert time.monotonic() - started >= 1.0
    silent_sid = bodies[0]["participant"]["sid"]

    seen: list[str] = []  # what the other participant saw of it
    while "participantDisconnected" not in seen:
        event = await watcher.next_event(within=10)
        if event.participant is not None and event.participant.sid == silent_sid:
            seen.append(event.name)
    assert seen == ["participantConnected", "trackPublished", "trackUnpublished"] + [
        "participantDisconnected"
    ]
    with rest(server.base_url, acct) as http:
        room_sid = bodies[0]["sid"]
        p = http.get(f"/v1/Rooms/{room_sid}/Participants/{silent_sid}").json()
        assert p["status"] == "disconnected"
        tracks = http.get(f"/v1/Rooms/{room_sid}/Participants/{silent_sid}/PublishedTracks")
        assert tracks.json()["published_tracks"] == []
    await watcher.disconnect()


# -- kill -9 -------------------------------------------------------------------------------


def start_server(data_dir: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    proc, url, _ = start_serve("--data-dir", str(data_dir), env=env)
    return proc, url


def cli_json(data_dir: Path, env: dict[str, str], *args: str) -> Any:
    out = subprocess.run(
        [*PARLOUR, *args, "--data-dir", str(data_dir), "--json"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    return json.loads(out.stdout)


async def test_participants_of_a_killed_server_are_disconnected_after_restart(
    tmp_path: Path,
) -> None:
    env = clean_env() | {
        "PARLOUR_WEBHOOK_ALLOW_PRIVATE": "true",
        "PARLOUR_NODE_HEARTBEAT_SECONDS": "0.2",
        "PARLOUR_NODE_STALE_SECONDS": "1.5",
        "PARLOUR_TIMEOUT_MINUTE_SECONDS": "0.2",
        "PARLOUR_IDLE_SWEEP_SECONDS": "0.1",
        "PARLOUR_WEBHOOK_RETRY_INITIAL_SECONDS": "0.05",
    }
    account = cli_json(tmp_path, env, "account")
    key = cli_json(tmp_path, env, "keys", "create")
    acct = Account(account["account_sid"], account["auth_token"], key["sid"], key["secret"])
    with Receiver(acct.auth_token) as receiver:
        first, url = start_server(tmp_path, env)
        try:
            with rest(url, acct) as http:
                created = http.post(
                    "/v1/Rooms",
                    data={
                        "UniqueName": "crash",
                        "StatusCallback": receiver.url(),
                        "EmptyRoomTimeout": "1",
                    },
                )
                assert created.status_code == 201, created.text
                room_sid = created.json()["sid"]
            ws = url.replace("http://", "ws://") + "/signaling"
            token = encode_token(
                account_sid=acct.sid,
                key_sid=acct.key_sid,
                secret=acct.key_secret,
                identity="alice",
                now=int(time.time()),
            )
            chat = LocalTrackInfo(name="chat", kind="data")
            alice = await connect(ws, token, name="crash", tracks=(chat,), media=False)
            bob = await connect(
                ws, access_token(acct, "bob"), name="crash", media=False, heartbeat_ms=1000
            )

            def joined() -> str | None:
                names = [e for e, _ in receiver.events()]
                return None if names.count("participant-connected") == 2 else str(names)

            await wait_for(joined)
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(10)
            assert first.stderr is not None
            first.stderr.close()
        for client in (alice, bob):  # their socket is dead: stop them here
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await client.disconnect()
        # Nothing is sent by a dead server: the records still say connected.
        assert [e for e, _ in receiver.events()].count("participant-disconnected") == 0

        second, url = start_server(tmp_path, env)
        try:

            def all_left() -> str | None:
                names = [e for e, _ in receiver.events()]
                if names.count("participant-disconnected") != 2 or "room-ended" not in names:
                    return str(names)
                return None

            await wait_for(all_left, within=20)
            # A callback the killed server sent but had not marked delivered is sent again
            # (at least once, like Twilio's); by sequence number each is one event.
            by_seq = {int(s): e for e, s in receiver.events()}
            assert sorted(by_seq) == list(range(len(by_seq)))
            names = [by_seq[i] for i in sorted(by_seq)]
            assert names.count("track-removed") == 1
            assert names.count("room-ended") == 1
            assert names.index("room-ended") == len(names) - 1
            assert names.count("participant-disconnected") == 2
            with rest(url, acct) as http:
                room = http.get(f"/v1/Rooms/{room_sid}").json()
                assert room["status"] == "completed"
                left = http.get(
                    f"/v1/Rooms/{room_sid}/Participants", params={"Status": "disconnected"}
                ).json()["participants"]
                assert sorted(p["identity"] for p in left) == ["alice", "bob"]
        finally:
            second.send_signal(signal.SIGINT)
            second.wait(20)
            assert second.stderr is not None
            second.stderr.close()
