"""Bad signaling input: the sender gets a protocol error or a clean close with a Twilio code,
the server logs one line for it, and every other participant keeps going."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import websockets

from parlour.client.video import LocalTrackInfo, Room, connect
from parlour.testing import ServerThread
from tests.helpers import Account, server_fixture
from tests.helpers import access_token as token
from tests.helpers import ws_url as url

pytestmark = pytest.mark.integration


server = server_fixture("bad-input")


@pytest.fixture
async def bystanders(server: ServerThread, account: Account) -> AsyncIterator[tuple[Room, Room]]:
    chat = LocalTrackInfo(name="chat", kind="data")
    a = await connect(url(server), token(account, "a"), name="bad", tracks=(chat,), media=False)
    b = await connect(url(server), token(account, "b"), name="bad", media=False)
    yield a, b
    await a.disconnect()
    await b.disconnect()


async def still_fine(a: Room, b: Room) -> None:
    """Both bystanders still work: a publishes a track, b sees it."""
    before = sum(len(p.tracks) for p in b.participants.values())
    await a.publish_track(LocalTrackInfo(name=f"mic{before}", kind="audio"))
    await b.wait_for(lambda: sum(len(p.tracks) for p in b.participants.values()) == before + 1)
    assert a.state == b.state == "connected"


async def recv(ws: Any) -> dict[str, Any]:
    frame: dict[str, Any] = json.loads(await ws.recv())
    while frame["type"] == "heartbeat":
        frame = json.loads(await ws.recv())
    return frame


async def opened(server: ServerThread) -> Any:
    ws = await websockets.connect(url(server))
    await ws.send(json.dumps({"type": "hello", "id": "x", "timeout": 5000, "version": 2}))
    assert (await recv(ws))["type"] == "welcome"
    return ws


def protocol_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("parlour.signaling") and "protocol error" in r.getMessage()
    ]


async def test_malformed_json(
    server: ServerThread, bystanders: tuple[Room, Room], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    ws = await opened(server)
    await ws.send("{not json")
    frame = await recv(ws)
    assert frame["body"]["type"] == "error" and frame["body"]["code"] == 53004
    with pytest.raises(websockets.ConnectionClosed):
        await recv(ws)
    assert len(protocol_lines(caplog)) == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    await still_fine(*bystanders)


async def test_unknown_message_types_are_ignored(
    server: ServerThread, account: Account, bystanders: tuple[Room, Room]
) -> None:
    ws = await opened(server)
    await ws.send(json.dumps({"type": "surprise", "x": 1}))
    await ws.send(json.dumps({"type": "msg", "body": {"type": "teleport", "version": 2}}))
    # The socket still works: a connect goes through.
    connect_msg = {
        "type": "msg",
        "body": {
            "type": "connect",
            "version": 2,
            "token": token(account, "c"),
            "name": "bad",
            "participant": {"revision": 1, "tracks": []},
        },
    }
    await ws.send(json.dumps(connect_msg))
    frame = await recv(ws)
    assert frame["body"]["type"] == "connected"
    await ws.close()
    await still_fine(*bystanders)


async def test_out_of_order_revisions_are_ignored(
    server: ServerThread, account: Account, bystanders: tuple[Room, Room]
) -> None:
    a, b = bystanders
    ws = await opened(server)
    track = {"id": "t1", "kind": "audio", "name": "mic", "enabled": True, "priority": "standard"}
    await ws.send(
        json.dumps(
            {
                "type": "msg",
                "body": {
                    "type": "connect",
                    "version": 2,
                    "token": token(account, "d"),
                    "name": "bad",
                    "participant": {"revision": 5, "tracks": [track]},
                },
            }
        )
    )
    connected = (await recv(ws))["body"]
    session = connected["session"]
    await b.wait_for(lambda: any(p.identity == "d" and p.tracks for p in b.participants.values()))
    # An older revision that drops the track must not unpublish it.
    stale = {"revision": 4, "tracks": []}
    msg = {"type": "update", "version": 2, "session": session, "participant": stale}
    await ws.send(json.dumps({"type": "msg", "body": msg}))
    newer = {"revision": 6, "tracks": [track | {"enabled": False}]}
    msg = {"type": "update", "version": 2, "session": session, "participant": newer}
    await ws.send(json.dumps({"type": "msg", "body": msg}))
    await b.wait_for(
        lambda: any(
            p.identity == "d" and len(p.tracks) == 1 and not next(iter(p.tracks.values())).enabled
            for p in b.participants.values()
        )
    )
    await ws.close()
    await still_fine(a, b)


async def test_garbage_sdp_gets_53403_and_the_room_goes_on(
    server: ServerThread, account: Account, bystanders: tuple[Room, Room]
) -> None:
    ws = await opened(server)
    pcs = [{"id": "pc1", "description": {"type": "offer", "revision": 1, "sdp": "v=0\r\ngarbage"}}]
    body = {
        "type": "connect",
        "version": 2,
        "token": token(account, "e"),
        "name": "bad",
        "participant": {"revision": 1, "tracks": []},
        "peer_connections": pcs,
    }
    await ws.send(json.dumps({"type": "msg", "body": body}))
    frame = await recv(ws)
    assert frame["body"]["type"] == "error" and frame["body"]["code"] == 53403
    with pytest.raises(websockets.ConnectionClosed):
        await recv(ws)
    auth = (account.sid, account.auth_token)
    with httpx.Client(base_url=server.base_url, auth=auth) as rest:
        parts = rest.get("/v1/Rooms/bad/Participants").json()["participants"]
        assert {p["identity"] for p in parts} == {"a", "b"}
    await still_fine(*bystanders)


async def test_garbage_sdp_in_an_update_ends_only_that_session(
    server: ServerThread, account: Account, bystanders: tuple[Room, Room]
) -> None:
    a, b = bystanders
    f = await connect(url(server), token(account, "f"), name="bad", media=False)
    await b.wait_for(lambda: any(p.identity == "f" for p in b.participants.values()))
    pcs = [{"id": "pc1", "description": {"type": "offer", "revision": 1, "sdp": "nonsense"}}]
    body = {"type": "update", "version": 2, "session": f.session, "peer_connections": pcs}
    assert f._ws is not None
    await f._ws.send(json.dumps({"type": "msg", "body": body}))
    await f.wait_for(lambda: f.state == "disconnected")
    assert f.disconnect_error is not None and f.disconnect_error.code == 53403
    await b.wait_for(lambda: all(p.identity != "f" for p in b.participants.values()))
    await f.disconnect()
    await still_fine(a, b)


async def test_oversized_message(
    server: ServerThread, bystanders: tuple[Room, Room], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    ws = await opened(server)
    await ws.send(json.dumps({"type": "msg", "body": {"type": "update", "pad": "x" * 1_500_000}}))
    frame = await recv(ws)
    assert frame["body"]["type"] == "error" and frame["body"]["code"] == 53004
    assert len(protocol_lines(caplog)) == 1
    await still_fine(*bystanders)
