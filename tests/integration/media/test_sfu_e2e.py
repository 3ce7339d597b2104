"""The SFU end to end: Python SDK participants (aiortc) publish audio, video and data through
Parlour's own forwarding plane and receive each other's media, decodable."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from aiortc import AudioStreamTrack, VideoStreamTrack

from parlour.client.video import LocalTrackInfo
from parlour.testing import ServerThread
from tests.helpers import Account, eventually, join, server_fixture

pytestmark = pytest.mark.integration


server = server_fixture("sfu")


async def test_audio_video_and_data_flow_between_two_participants(
    server: ServerThread, account: Account
) -> None:
    a_mic, a_cam = AudioStreamTrack(), VideoStreamTrack()
    b_mic, b_cam = AudioStreamTrack(), VideoStreamTrack()
    chat = LocalTrackInfo(name="chat", kind="data")
    alice = await join(
        server,
        account,
        "alice",
        "sfu",
        tracks=(
            LocalTrackInfo.from_track(a_mic, "mic"),
            LocalTrackInfo.from_track(a_cam, "cam"),
            chat,
        ),
    )
    bob = await join(
        server,
        account,
        "bob",
        "sfu",
        tracks=(LocalTrackInfo.from_track(b_mic, "mic"), LocalTrackInfo.from_track(b_cam, "cam")),
    )
    try:
        await bob.wait_for(lambda: len(bob.remote_media) == 2 and len(bob.remote_data) == 1, 20)
        await alice.wait_for(lambda: len(alice.remote_media) == 2, 20)

        for room in (alice, bob):
            kinds = set()
            for track in room.remote_media.values():
                frame = await asyncio.wait_for(track.recv(), 10)
                kinds.add(track.kind)
                if track.kind == "video":
                    assert (frame.width, frame.height) == (640, 480)
            assert kinds == {"audio", "video"}

        received: list[str] = []
        [channel] = bob.remote_data.values()
        channel.on("message", received.append)
        await eventually(lambda: alice.local_channels[chat.id].readyState == "open")
        sender = alice.data_track(chat.id)
        for i in range(20):
            sender.send(f"msg-{i}")
        await eventually(lambda: len(received) == 20)
        assert received == [f"msg-{i}" for i in range(20)]

        with httpx.Client(base_url=server.base_url, auth=(account.sid, account.auth_token)) as rest:
            subs = rest.get("/v1/Rooms/sfu/Participants/bob/SubscribedTracks").json()
            assert {t["name"] for t in subs["subscribed_tracks"]} == {"mic", "cam", "chat"}
    finally:
        await alice.disconnect()
        await bob.disconnect()


async def test_pre_encoded_video_is_forwarded_and_decodes(
    server: ServerThread, account: Account
) -> None:
    from parlour.client.media import PreEncodedVideoTrack, encode_test_clip

    clip = encode_test_clip(width=320, height=240, frames=30, gop=15)
    bot = await join(
        server,
        account,
        "bot",
        "pre",
        tracks=(LocalTrackInfo.from_track(PreEncodedVideoTrack(clip), "loop"),),
    )
    viewer = await join(server, account, "viewer", "pre")
    try:
        await viewer.wait_for(lambda: len(viewer.remote_media) == 1, 20)
        [track] = viewer.remote_media.values()
        frames = [await asyncio.wait_for(track.recv(), 10) for _ in range(10)]
        assert {(f.width, f.height) for f in frames} == {(320, 240)}
    finally:
        await bot.disconnect()
        await viewer.disconnect()
