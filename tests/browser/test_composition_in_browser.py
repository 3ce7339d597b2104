"""Done-when of compositions: two real browsers (the unmodified `twilio-video` SDK in
headless Chromium or Firefox, fake camera and microphone) in a room recorded on connect; the
room ends; an enabled CompositionHook's composition becomes `available`; ffprobe plays its
file with the expected duration, resolution and streams; and a frame from the middle shows
both participants' tiles where the grid puts them (Chromium's fake camera is a moving
pattern, Firefox's a solid colour; the letterbox around each tile is black)."""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.browser.harness import OpenParticipant, joined_pages, poll
from tests.helpers import Account

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]

ROOM = "composed-in-browser"
SECONDS = 6.0
WIDTH, HEIGHT = 640, 480


def ffprobe(path: Path) -> dict[str, object]:
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
            str(path),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    probed: dict[str, object] = json.loads(out.stdout)
    return probed


def frame_at(path: Path, seconds: float) -> np.ndarray:
    """One decoded frame (grey levels) at `seconds`, by ffmpeg."""
    out = subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-ss",
            f"{seconds:.2f}",
            "-i",
            str(path),
            "-frames:v",
            "1",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "gray",
            "-",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return np.frombuffer(out.stdout, dtype=np.uint8).reshape(HEIGHT, WIDTH)


async def test_two_browsers_hook_composition_plays_with_both_tiles(
    open_page: OpenParticipant,
    browser_account: Account,
    browser_rest: httpx.AsyncClient,
    browser_verify: ssl.SSLContext | bool,
    tmp_path: Path,
) -> None:
    rest = browser_rest
    async with asyncio.timeout(240):
        hook = await rest.post(
            "/v1/CompositionHooks",
            data={
                "FriendlyName": "grid of everyone",
                "Enabled": "true",
                "VideoLayout": json.dumps({"grid": {"video_sources": ["*"], "max_rows": 1}}),
                "AudioSources": "*",
                "Format": "mp4",
                "Resolution": f"{WIDTH}x{HEIGHT}",
            },
        )
        assert hook.status_code == 201, hook.text
        created = await rest.post(
            "/v1/Rooms", data={"UniqueName": ROOM, "RecordParticipantsOnConnect": "true"}
        )
        assert created.status_code == 201, created.text
        room_sid = created.json()["sid"]
        alice, bob = await joined_pages(open_page, browser_account, ROOM, "alice", "bob")
        for page in (alice, bob):
            await page.wait_for_events("trackSubscribed", count=2)

        async def video_recordings() -> int:
            r = await rest.get(f"/v1/Rooms/{room_sid}/Recordings")
            return len([x for x in r.json()["recordings"] if x["type"] == "video"])

        await poll(video_recordings, lambda n: n == 2, within=30, what="two video recordings")
        await asyncio.sleep(SECONDS)
        ended = await rest.post(f"/v1/Rooms/{room_sid}", data={"Status": "completed"})
        assert ended.status_code == 202, ended.text

        async def composed() -> dict[str, object] | None:
            r = await rest.get("/v1/Compositions", params={"RoomSid": room_sid})
            items = r.json()["compositions"]
            return dict(items[0]) if items else None

        composition = await poll(
            composed,
            lambda c: c is not None and c["status"] in ("completed", "failed"),
            within=180,
            what="the hook's composition",
        )
        assert composition is not None
        assert composition["status"] == "completed", composition
        media = await rest.get(f"/v1/Compositions/{composition['sid']}/Media")
        assert media.status_code == 302
        async with httpx.AsyncClient(verify=browser_verify) as plain:
            body = await plain.get(media.headers["location"])
        assert body.status_code == 200 and body.headers["content-type"] == "video/mp4"
        path = tmp_path / "composition.mp4"
        path.write_bytes(body.content)

    probed = ffprobe(path)
    streams = probed["streams"]
    assert isinstance(streams, list)
    kinds = {s["codec_type"]: s for s in streams}
    assert kinds["video"]["codec_name"] == "h264" and kinds["audio"]["codec_name"] == "aac"
    assert (kinds["video"]["width"], kinds["video"]["height"]) == (WIDTH, HEIGHT)
    fmt = probed["format"]
    assert isinstance(fmt, dict)
    duration = float(fmt["duration"])
    assert SECONDS - 1 <= duration <= SECONDS + 30
    assert composition["duration"] == pytest.approx(duration, abs=1.5)

    middle = frame_at(path, duration / 2).astype(np.float64)
    # max_rows 1: two 320x480 cells side by side; each 4:3 picture letterboxed to 320x240
    # in the middle band (rows 120-360); the bands above and below are black.
    for left in (0, 320):
        tile = middle[130:350, left + 10 : left + 310]
        # Chromium's fake camera is a pattern; Firefox's a solid colour at luma 128: either
        # way a picture, not the black (luma 16) the composer leaves where no source is.
        picture = tile.std() > 8 or tile.min() > 60
        assert picture, f"the tile at x={left} is black: no picture ({tile.mean():.0f})"
        assert middle[0:110, left : left + 320].max() < 40, "the gap above the tile is black"
        assert middle[370:480, left : left + 320].max() < 40, "the gap below the tile is black"
