"""The SFU in worker processes (`media_workers=2`): Python SDK clients on a real server whose
media plane is two `python -m parlour.media.worker_main` processes.

Two rooms land on different workers and exchange media; `kill -9` on one worker tells its
participants (53405), who reconnect to the restarted plane and get media again, while the
room on the other worker never notices; `/metrics` adds the workers up; a recording of a
track on a worker is a playable file.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import av
import httpx
import pytest
from aiortc import AudioStreamTrack
from twilio.rest import Client

from parlour.client.video import LocalTrackInfo, Room
from parlour.config import load_metrics_token
from parlour.media.workers import WorkerMediaPlane
from parlour.testing import ServerThread
from tests.helpers import Account, eventually, join, server_fixture
from tests.integration.media.test_sfu_rooms import CountingVideo, decoded_video, luma

pytestmark = pytest.mark.integration

server = server_fixture("media-workers", media_workers=2)


def tracks(name: str) -> tuple[LocalTrackInfo, ...]:
    return (
        LocalTrackInfo.from_track(AudioStreamTrack(), f"{name}-mic"),
        LocalTrackInfo.from_track(CountingVideo(), f"{name}-cam"),
    )


async def pair(
    server: ServerThread, account: Account, names: tuple[str, str], room: str
) -> list[Room]:
    """Two publishers in `room`, each receiving the other's audio and video."""
    rooms = [await join(server, account, n, room, tracks=tracks(n)) for n in names]
    for r in rooms:
        await r.wait_for(lambda r=r: len(r.remote_media) == 2, 20)
    return rooms


async def sees_video(rooms: list[Room], names: tuple[str, str]) -> None:
    """Each decodes the other's camera: frames of the right size whose pixels change."""
    for room, other in zip(rooms, reversed(names), strict=True):
        frames = await decoded_video(room, other)
        assert frames[0].width == 320
        assert len({luma(f) for f in frames}) > 1, f"{room.local_identity} sees {other} frozen"


def metrics(server: ServerThread) -> dict[str, float]:
    token = load_metrics_token(server.config)
    text = httpx.get(
        f"{server.base_url}/metrics", headers={"Authorization": f"Bearer {token}"}
    ).text
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("parlour_") and " " in line:
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


async def test_rooms_on_two_workers_and_a_killed_worker(
    server: ServerThread, account: Account
) -> None:
    plane: WorkerMediaPlane = server.parlour.media_workers
    assert plane is not None and len(plane.workers) == 2
    one, two = ("ann", "ben"), ("cat", "dan")
    first = await pair(server, account, one, "w-one")
    second = await pair(server, account, two, "w-two")
    again: list[Room] = []
    try:
        await sees_video(first, one)
        await sees_video(second, two)
        workers = {r.name: plane.worker_of(r.sid) for r in (first[0], second[0])}
        assert None not in workers.values()
        assert workers["w-one"] is not workers["w-two"], "both rooms on one worker"
        doomed, spared = workers["w-one"], workers["w-two"]
        assert doomed is not None and spared is not None
        pid, spared_pid = doomed.pid, spared.pid
        assert pid is not None

        def sent() -> float:
            return metrics(server).get("parlour_rtp_sent_packets_total", 0)

        await eventually(lambda: metrics(server).get("parlour_participants") == 4, 5)
        assert metrics(server)["parlour_media_workers"] == 2
        assert metrics(server)["parlour_media_worker_exits_total"] == 0
        before = sent()
        assert before > 0

        os.kill(pid, signal.SIGKILL)
        # Its participants are told (MediaConnectionError) and leave.
        for room in first:
            await room.wait_for(lambda room=room: room.state == "disconnected", 10)
            assert room.disconnect_error is not None
            assert room.disconnect_error.code == 53405
        # The other room never noticed: still connected, video still moving.
        assert all(r.state == "connected" for r in second)
        await sees_video(second, two)
        assert spared.pid == spared_pid and spared.restarts == 0

        # The worker is back, under a new pid; the participants reconnect and get media.
        await eventually(lambda: doomed.up and doomed.pid not in (None, pid), 15)
        assert doomed.restarts == 1
        await eventually(lambda: metrics(server).get("parlour_media_workers") == 2, 5)
        assert metrics(server)["parlour_media_worker_exits_total"] == 1
        again = await pair(server, account, one, "w-one")
        await sees_video(again, one)
        # The counters of the dead worker stay in the totals.
        await eventually(lambda: metrics(server).get("parlour_participants") == 4, 5)
        assert sent() >= before
        assert all(r.state == "connected" for r in second)
    finally:
        for room in (*first, *second, *again):
            await room.disconnect()


async def test_a_recording_of_a_track_on_a_worker_plays(
    server: ServerThread, account: Account, tmp_path: Path
) -> None:
    client = Client(account.key_sid, account.key_secret, account_sid=account.sid)
    client.video.base_url = server.base_url
    created = client.video.v1.rooms.create(unique_name="w-rec", record_participants_on_connect=True)
    room = await join(server, account, "eve", "w-rec", tracks=tracks("eve"))
    try:
        plane: WorkerMediaPlane = server.parlour.media_workers
        assert plane.worker_of(room.sid) is not None

        def listed() -> bool:
            return len(client.video.v1.rooms(created.sid).recordings.list()) == 2

        await eventually(listed, 20)
        started = time.monotonic()
        await asyncio.sleep(2.0)
    finally:
        await room.disconnect()
    elapsed = time.monotonic() - started

    def completed() -> bool:
        recs = client.video.v1.recordings.list(grouping_sid=[created.sid])
        return len(recs) == 2 and all(r.status == "completed" for r in recs)

    await eventually(completed, 20)
    auth = (account.sid, account.auth_token)
    for rec in client.video.v1.recordings.list(grouping_sid=[created.sid]):
        media = httpx.get(f"{server.base_url}/v1/Recordings/{rec.sid}/Media", auth=auth)
        download = httpx.get(media.json()["redirect_to"])
        path = tmp_path / f"{rec.sid}.{rec.container_format}"
        path.write_bytes(download.content)
        with av.open(str(path)) as container:
            stream = container.streams[0]
            assert stream.codec_context.name == ("opus" if rec.type == "audio" else "vp8")
            seconds = float(container.duration or 0) / av.time_base
            # Recording starts at the first keyframe after the tap opens (a loaded machine
            # may take a while): at least half of what was sent, all of it decodable.
            assert seconds >= elapsed * 0.5, (rec.type, seconds, elapsed)
            decoded = sum(1 for _ in container.decode(stream))
            assert decoded > (10 if rec.type == "video" else 50), (rec.type, decoded, seconds)
