"""Recordings of a live room: the SFU taps forwarded packets into the Matroska writers.

Two Python SDK participants publish audio and video for a few seconds in a room created
with RecordParticipantsOnConnect; four recordings complete with the right codecs,
containers and durations, and their media downloads and decodes.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from pathlib import Path

import av
import httpx
import pytest
from aiortc import AudioStreamTrack
from twilio.rest import Client

from parlour.client.video import LocalTrackInfo
from parlour.testing import ServerThread
from tests.helpers import Account, eventually, join, server_fixture
from tests.integration.media.test_sfu_rooms import CountingVideo

pytestmark = pytest.mark.integration

SECONDS = 3.0


server = server_fixture("rec-live")


async def test_two_participants_make_four_playable_recordings(
    server: ServerThread, account: Account, tmp_path: Path
) -> None:
    client = Client(account.key_sid, account.key_secret, account_sid=account.sid)
    client.video.base_url = server.base_url
    room = client.video.v1.rooms.create(unique_name="rec", record_participants_on_connect=True)
    rooms = []
    joined_at = time.monotonic()
    for name in ("ann", "ben"):
        tracks = (
            LocalTrackInfo.from_track(AudioStreamTrack(), f"{name}-mic"),
            LocalTrackInfo.from_track(CountingVideo(), f"{name}-cam"),
        )
        rooms.append(await join(server, account, name, "rec", tracks=tracks))
    try:
        await eventually(lambda: len(client.video.v1.rooms(room.sid).recordings.list()) == 4, 20)
        recording_at = time.monotonic()
        await asyncio.sleep(SECONDS)
    finally:
        for r in rooms:
            await r.disconnect()
    left_at = time.monotonic()
    # Each recording started between joining and the moment all four were listed, and ended
    # when its publisher left: its media duration must fall in that window, within 10% above;
    # below, aiortc's senders stamp frames by the frames they managed to encode, so a starved
    # CPU makes less media than wall time (never less than half of it, though).
    shortest, longest = (left_at - recording_at) * 0.5, (left_at - joined_at) * 1.1

    def completed() -> bool:
        recs = client.video.v1.recordings.list(grouping_sid=[room.sid])
        return len(recs) == 4 and all(r.status == "completed" for r in recs)

    await eventually(completed, 20)
    recordings = client.video.v1.recordings.list(grouping_sid=[room.sid])
    assert sorted((r.type, r.container_format, r.codec) for r in recordings) == [
        ("audio", "mka", "OPUS"),
        ("audio", "mka", "OPUS"),
        ("video", "mkv", "VP8"),
        ("video", "mkv", "VP8"),
    ]
    assert {r.track_name for r in recordings} == {"ann-mic", "ann-cam", "ben-mic", "ben-cam"}
    auth = (account.sid, account.auth_token)
    for rec in recordings:
        assert rec.duration is not None and rec.duration >= 1
        assert rec.size and rec.size > 0
        media = httpx.get(f"{server.base_url}/v1/Recordings/{rec.sid}/Media", auth=auth)
        assert media.status_code == 302
        download = httpx.get(media.json()["redirect_to"])
        assert download.status_code == 200 and len(download.content) == rec.size
        path = tmp_path / f"{rec.sid}.{rec.container_format}"
        path.write_bytes(download.content)
        if shutil.which("ffprobe"):
            probe = json.loads(
                subprocess.run(
                    [
                        "ffprobe",
                        "-v",
                        "error",
                        "-show_format",
                        "-show_streams",
                        "-of",
                        "json",
                        str(path),
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                    timeout=30,
                ).stdout
            )
            assert probe["format"]["format_name"].startswith("matroska")
            [stream_info] = probe["streams"]
            assert stream_info["codec_name"] == ("opus" if rec.type == "audio" else "vp8")
            assert shortest <= float(probe["format"]["duration"]) <= longest, rec.sid
        with av.open(str(path)) as container:
            stream = container.streams[0]
            assert stream.codec_context.name == ("opus" if rec.type == "audio" else "vp8")
            seconds = float(container.duration or 0) / av.time_base
            assert shortest <= seconds <= longest, (rec.sid, seconds, shortest, longest)
            assert abs(rec.duration - seconds) <= max(1.0, seconds * 0.1)  # REST agrees
            decoded = sum(1 for _ in container.decode(stream))
            assert decoded > (10 if rec.type == "video" else 50)
