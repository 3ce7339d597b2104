"""Issue 3's room scenario through Parlour's SFU with Python SDK (aiortc) clients.

Three participants publish audio, video and data; each decodes the other two's real video
(right size, pixels that change), data arrives in order, a fourth joins late and decodes a
keyframe within a second (the SFU asks the publisher for one), one leaves and the others see
it, and REST agrees throughout.
"""

from __future__ import annotations

import asyncio
import time

import av
import httpx
import pytest
from aiortc import AudioStreamTrack, VideoStreamTrack

from parlour.client.video import LocalTrackInfo, Room
from parlour.testing import ServerThread
from tests.helpers import Account, eventually, join, server_fixture

pytestmark = pytest.mark.integration

WIDTH, HEIGHT = 320, 240


class CountingVideo(VideoStreamTrack):
    """A 320x240 picture whose brightness steps with every frame, so pixels change."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        luma = 16 + (self.count * 7) % 200
        frame.planes[0].update(bytes([luma]) * frame.planes[0].buffer_size)
        for plane in frame.planes[1:]:
            plane.update(bytes([128]) * plane.buffer_size)
        self.count += 1
        frame.pts, frame.time_base = pts, time_base
        return frame


server = server_fixture("sfu-rooms")


def media_tracks(name: str) -> tuple[LocalTrackInfo, ...]:
    return (
        LocalTrackInfo.from_track(AudioStreamTrack(), f"{name}-mic"),
        LocalTrackInfo.from_track(CountingVideo(), f"{name}-cam"),
        LocalTrackInfo(name=f"{name}-chat", kind="data"),
    )


def luma(frame: av.VideoFrame) -> int:
    plane = frame.planes[0]
    return bytes(plane)[plane.line_size * (frame.height // 2) + frame.width // 2]


async def decoded_video(room: Room, publisher: str) -> list[av.VideoFrame]:
    """A few decoded frames of `publisher`'s camera as received by `room`."""
    [sid] = [
        sid
        for p in room.participants.values()
        if p.identity == publisher
        for sid, t in p.tracks.items()
        if t.kind == "video"
    ]
    track = room.remote_media[sid]
    return [await asyncio.wait_for(track.recv(), 10) for _ in range(4)]


async def test_three_participants_then_a_late_fourth(
    server: ServerThread, account: Account
) -> None:
    tracks = {name: media_tracks(name) for name in ("ann", "ben", "cat")}
    rooms = {
        name: await join(server, account, name, "trio", tracks=tracks[name]) for name in tracks
    }
    late: Room | None = None
    try:
        for room in rooms.values():
            await room.wait_for(
                lambda room=room: len(room.remote_media) == 4 and len(room.remote_data) == 2, 20
            )
        # Everyone decodes the other two's video: right size, pixels changing.
        for name, room in rooms.items():
            for other in rooms:
                if other == name:
                    continue
                frames = await decoded_video(room, other)
                assert {(f.width, f.height) for f in frames} == {(WIDTH, HEIGHT)}
                assert len({luma(f) for f in frames}) > 1, f"{name} sees a frozen {other}"
            audio = [t for t in room.remote_media.values() if t.kind == "audio"]
            assert len(audio) == 2
            for track in audio:
                frame = await asyncio.wait_for(track.recv(), 10)
                assert frame.sample_rate == 48000

        # Data from ann reaches ben and cat in order.
        inbox: dict[str, list[str]] = {"ben": [], "cat": []}
        for name in inbox:
            room = rooms[name]
            [sid] = [
                s
                for p in room.participants.values()
                if p.identity == "ann"
                for s, t in p.tracks.items()
                if t.kind == "data"
            ]
            room.remote_data[sid].on("message", inbox[name].append)
        chat = tracks["ann"][2]
        await eventually(lambda: rooms["ann"].local_channels[chat.id].readyState == "open")
        for i in range(30):
            rooms["ann"].send_data(chat.id, f"m{i}")
        await eventually(lambda: all(len(box) == 30 for box in inbox.values()))
        assert inbox["ben"] == inbox["cat"] == [f"m{i}" for i in range(30)]

        # A late joiner decodes ann's video within seconds: the SFU asked for a keyframe
        # (aiortc's encoder makes one by itself only every 3,000 frames, 100 s). The bound
        # leaves room for a loaded machine (2 s seen beside a soak), not for a missing PLI.
        late = await join(server, account, "dan", "trio")
        await late.wait_for(lambda: len(late.remote_media) == 6, 10)
        subscribed_at = time.monotonic()
        first = await decoded_video(late, "ann")
        elapsed = time.monotonic() - subscribed_at
        assert first[0].width == WIDTH
        assert elapsed < 5.0, f"first decoded frame {elapsed:.2f} s after subscribing"

        # REST shows the four participants and each one's published tracks.
        with httpx.Client(base_url=server.base_url, auth=(account.sid, account.auth_token)) as rest:
            parts = rest.get("/v1/Rooms/trio/Participants").json()["participants"]
            assert {p["identity"] for p in parts} == {"ann", "ben", "cat", "dan"}
            pub = rest.get("/v1/Rooms/trio/Participants/ben/PublishedTracks").json()
            assert {t["name"] for t in pub["published_tracks"]} == {
                "ben-mic",
                "ben-cam",
                "ben-chat",
            }
            subs = rest.get("/v1/Rooms/trio/Participants/dan/SubscribedTracks").json()
            assert len(subs["subscribed_tracks"]) == 9

            # One leaves; the others see it, and lose its tracks.
            await rooms["cat"].disconnect()
            for name in ("ann", "ben"):
                room = rooms[name]
                await room.wait_for(
                    lambda room=room, name=name: (
                        {p.identity for p in room.participants.values()}
                        == {"ann", "ben", "dan"} - {name}
                    ),
                    10,
                )
                # Only the other remaining publisher's mic and camera are left (dan sends none).
                await room.wait_for(
                    lambda room=room: len(room.remote_media) == 2 and len(room.remote_data) == 1,
                    10,
                )
            parts = rest.get("/v1/Rooms/trio/Participants").json()["participants"]
            assert {p["identity"] for p in parts} == {"ann", "ben", "dan"}
    finally:
        for room in (*rooms.values(), late):
            if room is not None:
                await room.disconnect()
