"""Signaling end to end: the Python SDK against a real server on 127.0.0.1.

Covers TCMP/RSP connect, participants and track publications seen by others and by REST,
token errors with Twilio's codes, REST kick and room end reaching clients, duplicate
identity, limits, session resume after a dropped socket, and protocol errors.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import pytest
import websockets

from parlour.client.video import LocalTrackInfo, Room, SignalingClientError, connect
from parlour.testing import ServerThread
from tests.helpers import Account, join, new_account, server_fixture, ws_url
from tests.helpers import access_token as token

pytestmark = pytest.mark.integration

SESSION_TIMEOUT = 1.5


server = server_fixture("signaling", session_timeout_seconds=SESSION_TIMEOUT)


async def events_until(room: Room, name: str) -> list[str]:
    seen = []
    while True:
        event = await room.next_event(10)
        seen.append(event.name)
        if event.name == name:
            return seen


async def test_two_participants_see_each_other(
    server: ServerThread, account: Account, http: httpx.Client
) -> None:
    alice = await join(server, account, "alice", "standup")
    assert alice.name == "standup" and alice.sid.startswith("RM")
    assert alice.local_identity == "alice" and alice.local_sid.startswith("PA")
    bob = await join(server, account, "bob", "standup")
    assert [p.identity for p in bob.participants.values()] == ["alice"]
    await alice.wait_for(lambda: any(p.identity == "bob" for p in alice.participants.values()))

    room = http.get("/v1/Rooms/standup").json()
    assert room["sid"] == alice.sid == bob.sid
    listed = http.get(f"/v1/Rooms/{alice.sid}/Participants").json()["participants"]
    assert {(p["identity"], p["status"]) for p in listed} == {
        ("alice", "connected"),
        ("bob", "connected"),
    }

    await bob.disconnect()
    await alice.wait_for(lambda: not alice.participants)
    bob_rest = http.get(f"/v1/Rooms/{alice.sid}/Participants/{bob.local_sid}").json()
    assert bob_rest["status"] == "disconnected" and bob_rest["duration"] is not None
    await alice.disconnect()


async def test_tracks_published_enabled_unpublished(
    server: ServerThread, account: Account, http: httpx.Client
) -> None:
    chat = LocalTrackInfo(name="chat", kind="data")
    alice = await join(server, account, "alice", "tracks", tracks=(chat,))
    await alice.wait_for(lambda: chat.id in alice.published)
    chat_sid = alice.published[chat.id]
    assert chat_sid.startswith("MT")
    bob = await join(server, account, "bob", "tracks")
    [remote] = bob.participants.values()
    assert [(t.sid, t.name, t.kind) for t in remote.tracks.values()] == [(chat_sid, "chat", "data")]

    mic = LocalTrackInfo(name="mic", kind="audio")
    await alice.publish_track(mic)
    await alice.wait_for(lambda: mic.id in alice.published)
    await bob.wait_for(lambda: len(remote.tracks) == 2)
    published = http.get(f"/v1/Rooms/{alice.sid}/Participants/alice/PublishedTracks").json()[
        "published_tracks"
    ]
    assert {(t["name"], t["kind"], t["enabled"]) for t in published} == {
        ("chat", "data", True),
        ("mic", "audio", True),
    }

    await alice.set_track_enabled(mic.id, False)
    await bob.wait_for(lambda: not remote.tracks[alice.published[mic.id]].enabled)
    track = http.get(f"/v1/Rooms/{alice.sid}/Participants/alice/PublishedTracks/mic").json()
    assert track["enabled"] is False

    await alice.unpublish_track(chat.id)
    await bob.wait_for(lambda: chat_sid not in remote.tracks)
    names = [
        t["name"]
        for t in http.get(f"/v1/Rooms/{alice.sid}/Participants/alice/PublishedTracks").json()[
            "published_tracks"
        ]
    ]
    assert names == ["mic"]
    await alice.disconnect()
    await bob.disconnect()


async def test_publication_errors(
    server: ServerThread, account: Account, http: httpx.Client
) -> None:
    http.post("/v1/Rooms", data={"UniqueName": "audio-only", "AudioOnly": "true"})
    a = LocalTrackInfo(name="same", kind="audio")
    b = LocalTrackInfo(name="same", kind="data")
    cam = LocalTrackInfo(name="cam", kind="video")
    room = await join(server, account, "alice", "audio-only", tracks=(a, b, cam))
    await room.wait_for(lambda: len(room.failed) == 2)
    assert room.failed[b.id].code == 53304
    assert room.failed[cam.id].code == 53125
    assert list(room.published) == [a.id]
    await room.disconnect()


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda a: "garbage", 20101),
        (lambda a: token(a, "x", now=int(time.time()) - 7200), 20104),
        (lambda a: token(a, "x", now=int(time.time()) + 3600), 20105),
        (lambda a: token(a, "x", secret="wrong-secret"), 20107),
        (lambda a: token(a, "x", key_sid="SK" + "0" * 32), 20103),
        (lambda a: token(a, ""), 20106),
    ],
)
async def test_token_errors(server: ServerThread, account: Account, make, code: int) -> None:
    with pytest.raises(SignalingClientError) as err:
        await connect(ws_url(server), make(account), name="tokens")
    assert err.value.code == code


async def test_token_room_grant_is_enforced(server: ServerThread, account: Account) -> None:
    with pytest.raises(SignalingClientError) as err:
        await connect(ws_url(server), token(account, "x", room="allowed"), name="other")
    assert err.value.code == 20106
    room = await connect(ws_url(server), token(account, "x", room="allowed"))
    assert room.name == "allowed"
    await room.disconnect()


async def test_rest_kick_and_room_end_reach_clients(
    server: ServerThread, account: Account, http: httpx.Client
) -> None:
    alice = await join(server, account, "alice", "kick")
    bob = await join(server, account, "bob", "kick")
    carol = await join(server, account, "carol", "kick")
    r = http.post("/v1/Rooms/kick/Participants/bob", data={"Status": "disconnected"})
    assert r.status_code == 202 and r.json()["status"] == "disconnected"
    await bob.wait_for(lambda: bob.state == "disconnected")
    assert bob.disconnect_error is not None and bob.disconnect_error.code == 53204
    await alice.wait_for(lambda: len(alice.participants) == 1)

    assert http.post("/v1/Rooms/kick", data={"Status": "completed"}).status_code == 202
    for room in (alice, carol):
        await room.wait_for(lambda room=room: room.state == "disconnected")
        assert room.disconnect_error is not None and room.disconnect_error.code == 53118
    with pytest.raises(SignalingClientError) as err:
        await connect(ws_url(server), token(account, "dave"), name=alice.sid)
    assert err.value.code == 53118
    # The name is free again: a new room starts.
    again = await join(server, account, "dave", "kick")
    assert again.sid != alice.sid
    for ended in (again, alice, bob, carol):  # waits for media the server ended to close
        await ended.disconnect()


async def test_duplicate_identity_disconnects_the_older(
    server: ServerThread, account: Account
) -> None:
    first = await join(server, account, "erin", "dupe")
    watcher = await join(server, account, "watcher", "dupe")
    second = await join(server, account, "erin", "dupe")
    await first.wait_for(lambda: first.state == "disconnected")
    assert first.disconnect_error is not None and first.disconnect_error.code == 53205
    await watcher.wait_for(
        lambda: [p.sid for p in watcher.participants.values()] == [second.local_sid]
    )
    await first.disconnect()  # already disconnected: waits for its media to close
    await second.disconnect()
    await watcher.disconnect()


async def test_max_participants(server: ServerThread, account: Account, http: httpx.Client) -> None:
    http.post("/v1/Rooms", data={"UniqueName": "pair", "MaxParticipants": "2", "Type": "go"})
    a = await join(server, account, "a", "pair")
    b = await join(server, account, "b", "pair")
    with pytest.raises(SignalingClientError) as err:
        await join(server, account, "c", "pair")
    assert err.value.code == 53105
    await a.disconnect()
    await b.disconnect()


async def test_resume_after_dropped_socket(
    server: ServerThread, account: Account, http: httpx.Client
) -> None:
    alice = await join(server, account, "alice", "blip")
    bob = await join(server, account, "bob", "blip")
    await alice.drop_connection()
    seen = await events_until(alice, "reconnected")
    assert "reconnecting" in seen
    names = await events_until(bob, "participantReconnected")
    assert "participantReconnecting" in names
    assert alice.state == "connected"
    participant = http.get(f"/v1/Rooms/blip/Participants/{alice.local_sid}").json()
    assert participant["status"] == "connected"
    # Still fully working after the resume.
    mic = LocalTrackInfo(name="mic", kind="audio")
    await alice.publish_track(mic)
    await bob.wait_for(lambda: any(p.tracks for p in bob.participants.values()))
    await alice.disconnect()
    await bob.disconnect()


async def test_session_expires_when_not_resumed(
    server: ServerThread, account: Account, http: httpx.Client
) -> None:
    watcher = await join(server, account, "watcher", "expire")
    ws = await websockets.connect(ws_url(server))
    hello = {
        "type": "hello",
        "id": "x",
        "timeout": 5000,
        "version": 2,
        "body": {"type": "ice", "token": token(account, "ghost"), "version": 1},
    }
    await ws.send(json.dumps(hello))
    assert json.loads(await ws.recv())["type"] == "welcome"
    assert json.loads(await ws.recv())["body"]["type"] == "iced"
    connect_msg = {
        "type": "msg",
        "body": {
            "type": "connect",
            "version": 2,
            "token": token(account, "ghost"),
            "name": "expire",
            "participant": {"revision": 1, "tracks": []},
        },
    }
    await ws.send(json.dumps(connect_msg))
    connected = json.loads(await ws.recv())["body"]
    assert (
        connected["type"] == "connected"
        and connected["options"]["session_timeout"] == SESSION_TIMEOUT
    )
    await watcher.wait_for(lambda: len(watcher.participants) == 1)
    await ws.close(4000)  # gone without `disconnect`
    ghost = connected["participant"]["sid"]
    await watcher.wait_for(
        lambda: all(p.state == "reconnecting" for p in watcher.participants.values())
    )
    assert http.get(f"/v1/Rooms/expire/Participants/{ghost}").json()["status"] == "reconnecting"
    await watcher.wait_for(lambda: not watcher.participants, within=SESSION_TIMEOUT + 5)
    assert http.get(f"/v1/Rooms/expire/Participants/{ghost}").json()["status"] == "disconnected"
    await watcher.disconnect()


async def test_protocol_errors_do_not_hurt_others(server: ServerThread, account: Account) -> None:
    bystander = await join(server, account, "bystander", "errors")
    async with websockets.connect(ws_url(server)) as ws:
        await ws.send("not json")
        bad = json.loads(await ws.recv())
        assert bad["type"] == "bad" and bad["reason"]
    async with websockets.connect(ws_url(server)) as ws:
        await ws.send(json.dumps({"type": "hello", "id": "x", "timeout": 2000, "version": 2}))
        assert json.loads(await ws.recv()) == {"type": "welcome", "negotiatedTimeout": 2000}
        await ws.send(json.dumps({"type": "msg", "body": {"type": "connect", "token": 5}}))
        error = json.loads(await ws.recv())
        assert error["type"] == "msg" and error["body"]["type"] == "error"
        assert error["body"]["code"] == 53004
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
    other = await join(server, account, "other", "errors")
    await bystander.wait_for(lambda: len(bystander.participants) == 1)
    await other.disconnect()
    await bystander.disconnect()


async def test_server_sends_heartbeats(server: ServerThread, account: Account) -> None:
    async with websockets.connect(ws_url(server)) as ws:
        await ws.send(json.dumps({"type": "hello", "id": "x", "timeout": 1000, "version": 2}))
        assert json.loads(await ws.recv())["negotiatedTimeout"] == 1000
        started = time.monotonic()
        assert json.loads(await asyncio.wait_for(ws.recv(), 3)) == {"type": "heartbeat"}
        assert time.monotonic() - started < 2.5


async def test_auto_create_can_be_disabled(tmp_path: Path) -> None:
    with ServerThread(tmp_path, auto_create_rooms=False) as srv:
        account = new_account(srv)
        with pytest.raises(SignalingClientError) as err:
            await connect(ws_url(srv), token(account, "x"), name="nope")
        assert err.value.code == 53106
        with httpx.Client(base_url=srv.base_url, auth=(account.sid, account.auth_token)) as c:
            c.post("/v1/Rooms", data={"UniqueName": "made"})
        room = await connect(ws_url(srv), token(account, "x"), name="made")
        await room.disconnect()


async def test_synced_names_every_peer_connection_the_client_keeps(
    server: ServerThread, account: Account
) -> None:
    # twilio-video closes every peer connection that `synced` leaves out, so a resume whose
    # `sync` carries a PC without a new description must still get that PC's id back.
    async def hello(ws: websockets.ClientConnection, body: dict[str, object]) -> None:
        await ws.send(
            json.dumps({"type": "hello", "id": "x", "timeout": 5000, "version": 2, "body": body})
        )
        assert json.loads(await ws.recv())["type"] == "welcome"

    participant = {"revision": 1, "tracks": []}
    ws = await websockets.connect(ws_url(server))
    await hello(
        ws,
        {
            "type": "connect",
            "version": 2,
            "token": token(account, "resumer"),
            "name": "resync",
            "participant": participant,
        },
    )
    connected = json.loads(await ws.recv())["body"]
    assert connected["type"] == "connected", connected
    await ws.close(4000)  # a blip

    async with websockets.connect(ws_url(server)) as again:
        ice = {"revision": 1, "ufrag": "abcd", "candidates": [], "complete": True}
        await hello(
            again,
            {
                "type": "sync",
                "version": 2,
                "session": connected["session"],
                "token": token(account, "resumer"),
                "name": "resync",
                "participant": participant,
                "peer_connections": [{"id": "pc-kept", "ice": ice}],
            },
        )
        synced = json.loads(await again.recv())["body"]
        assert synced["type"] == "synced", synced
        assert [pc["id"] for pc in synced["peer_connections"]] == ["pc-kept"]
        await again.send(
            json.dumps(
                {
                    "type": "msg",
                    "body": {"type": "disconnect", "version": 2, "session": connected["session"]},
                }
            )
        )
