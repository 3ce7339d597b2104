"""Compositions end to end on a real server, without browsers: two participants publish
audio and video (VP8 and H.264) through the recording seam, the room ends, an enabled
CompositionHook's composition and REST-created ones are composed by the worker pool from
the real recordings, and the official `twilio` package, plain HTTP and PyAV check the
resources, the callbacks and the files."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from parlour.domain.compositions import CompositionStatus
from parlour.domain.sids import AccountSid
from parlour.testing import ServerThread
from tests.helpers import Account, new_account
from tests.integration.recording_support import (
    LiveTrack,
    Receiver,
    feed,
    media_packets,
    publish,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SECONDS = 3.0
GRID = {"grid": {"video_sources": ["*"], "max_rows": 1}}


def client_for(server: ServerThread, account: Account) -> Client:
    client = Client(account.key_sid, account.key_secret, account_sid=account.sid)
    client.video.base_url = server.base_url
    return client


@dataclass
class Composed:
    account: Account
    client: Client
    room_sid: str
    tracks: list[LiveTrack]
    receiver: Receiver
    hook_sid: str


def compositions(server: ServerThread) -> Any:
    return server.parlour.asgi.state.api.compositions


@pytest.fixture(scope="module")
def composed(server: ServerThread) -> Iterator[Composed]:
    account = new_account(server)
    client = client_for(server, account)
    with Receiver(account.auth_token) as receiver:
        hook = client.video.v1.composition_hooks.create(
            friendly_name="every room",
            enabled=True,
            video_layout=GRID,
            audio_sources=["*"],
            format="mp4",
            status_callback=receiver.url,
        )
        room = client.video.v1.rooms.create(
            unique_name="composed", record_participants_on_connect=True
        )
        tracks = publish(server, account.sid, room.sid, "alice", [("mic", "OPUS"), ("cam", "VP8")])
        tracks += publish(server, account.sid, room.sid, "bob", [("mic", "OPUS"), ("cam", "H264")])
        streams = [
            (t.tap, media_packets(t.codec, SECONDS, ssrc=2000 + i)) for i, t in enumerate(tracks)
        ]
        feed(server, streams)  # type: ignore[arg-type]
        client.video.v1.rooms(room.sid).update(status="completed")
        yield Composed(account, client, room.sid, tracks, receiver, hook.sid)


def wait_status(client: Client, sid: str, *statuses: str, timeout: float = 120) -> Any:
    def check() -> Any:
        c = client.video.v1.compositions(sid).fetch()
        return c if c.status in statuses else None

    return wait_until(check, timeout=timeout)


def download(server: ServerThread, account: Account, sid: str, path: Path) -> Path:
    with httpx.Client(base_url=server.base_url, auth=(account.sid, account.auth_token)) as http:
        redirect = http.get(f"/v1/Compositions/{sid}/Media")
        assert redirect.status_code == 302
        assert redirect.json()["redirect_to"] == redirect.headers["location"]
        media = httpx.get(redirect.headers["location"])  # signed: no credentials
        assert media.status_code == 200
        path.write_bytes(media.content)
        return path


def test_hook_composes_the_ended_room(
    composed: Composed, server: ServerThread, tmp_path: Path
) -> None:
    client = composed.client
    listed = wait_until(
        lambda: client.video.v1.compositions.list(room_sid=composed.room_sid), timeout=30
    )
    assert len(listed) == 1
    done = wait_status(client, listed[0].sid, "completed", "failed")
    assert done.status == "completed", done
    assert done.format == "mp4" and done.resolution == "640x480"
    assert done.duration == 3 and done.size > 0 and done.bitrate > 0
    assert isinstance(done.date_completed, dt.datetime)
    assert done.video_layout["grid"]["max_rows"] == 1
    assert done.video_layout["grid"]["width"] == 0
    assert done.links["media"].endswith(f"/v1/Compositions/{done.sid}/Media")

    events = wait_until(
        lambda: (
            (e := composed.receiver.events("composition-"))
            and e[-1]["StatusCallbackEvent"] == "composition-available"
            and e
        ),
        timeout=30,
    )
    names = [e["StatusCallbackEvent"] for e in events]
    assert names[0] == "composition-enqueued" and names[1] == "composition-started"
    assert names[-1] == "composition-available"
    assert all(valid for _, valid in composed.receiver.received)
    assert events[0]["HookSid"] == composed.hook_sid
    assert events[0]["HookFriendlyName"] == "every room"
    assert events[-1]["MediaUri"] == f"/v1/Compositions/{done.sid}/Media"
    assert events[-1]["Duration"] == "3" and int(events[-1]["Size"]) == done.size

    path = download(server, composed.account, done.sid, tmp_path / "hook.mp4")
    with av.open(str(path)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert video.codec_context.name == "h264" and audio.codec_context.name == "aac"
        assert (video.codec_context.width, video.codec_context.height) == (640, 480)
        assert container.duration is not None
        assert 2.5 < container.duration / av.time_base < 3.6
        frames = [f.to_ndarray(format="gray") for f in container.decode(video)]
    middle = frames[len(frames) // 2]
    left, right = middle[:, :320], middle[:, 320:]
    # two tiles side by side (max_rows 1), each letterboxed in its 320x480 half
    for half in (left, right):
        band = half[120:360]
        assert band.std() > 5, "a tile shows a moving test picture, not a flat colour"
        assert half[:100].max() < 40, "black above the letterboxed tile"


def test_rest_composition_webm_lifecycle(
    composed: Composed, server: ServerThread, tmp_path: Path
) -> None:
    client = composed.client
    created = client.video.v1.compositions.create(
        room_sid=composed.room_sid,
        video_layout={
            "main": {"video_sources": ["cam"], "video_sources_excluded": ["RT*"], "z_pos": 1},
            "pip": {
                "x_pos": 240,
                "y_pos": 180,
                "width": 80,
                "height": 60,
                "video_sources": [composed.tracks[1].track_sid],
                "z_pos": 2,
            },
        },
        audio_sources=["mic"],
        resolution="320x240",
        format="webm",
        trim=True,
        status_callback=composed.receiver.url,
    )
    assert created.sid.startswith("CJ") and created.status in ("enqueued", "processing")
    assert created.room_sid == composed.room_sid and created.trim is True
    assert created.audio_sources == ["mic"] and created.audio_sources_excluded == []
    assert created.media_external_location is None
    done = wait_status(client, created.sid, "completed", "failed")
    assert done.status == "completed"
    path = download(server, composed.account, done.sid, tmp_path / "c.webm")
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.name == "vp8"
        assert container.streams.audio[0].codec_context.name == "opus"
        assert container.streams.video[0].codec_context.width == 320

    by_status = client.video.v1.compositions.list(status="completed", room_sid=composed.room_sid)
    assert created.sid in [c.sid for c in by_status]
    client.video.v1.compositions(created.sid).delete()
    gone = client.video.v1.compositions(created.sid).fetch()
    assert gone.status == "deleted" and isinstance(gone.date_deleted, dt.datetime)
    with pytest.raises(TwilioRestException) as err:
        _media_status(server, composed.account, created.sid)
    assert err.value.status == 404
    stored = server.parlour.config.data_dir / "media" / "compositions" / f"{created.sid}.webm"
    assert not stored.exists()


def _media_status(server: ServerThread, account: Account, sid: str) -> None:
    with httpx.Client(base_url=server.base_url, auth=(account.sid, account.auth_token)) as http:
        r = http.get(f"/v1/Compositions/{sid}/Media")
    raise TwilioRestException(r.status_code, "", r.json().get("message", ""), r.json()["code"])


def test_errors_as_twilio(composed: Composed, server: ServerThread) -> None:
    client = composed.client
    with pytest.raises(TwilioRestException) as err:
        client.video.v1.compositions.create(
            room_sid=composed.room_sid, video_layout={"grid": {"x_pos": 9999}}
        )
    assert err.value.status == 400 and err.value.code == 20001
    with pytest.raises(TwilioRestException) as err:
        client.video.v1.compositions.create(room_sid=composed.room_sid)
    assert err.value.status == 400
    with pytest.raises(TwilioRestException) as err:
        client.video.v1.compositions.create(room_sid="RM" + "0" * 32, audio_sources=["*"])
    assert err.value.status == 404
    empty = client.video.v1.rooms.create(unique_name="never-recorded")
    # in progress: accepted, composed once it ends
    pending = client.video.v1.compositions.create(room_sid=empty.sid, audio_sources=["*"])
    assert pending.status == "enqueued"
    client.video.v1.rooms(empty.sid).update(status="completed")
    with pytest.raises(TwilioRestException) as err:
        client.video.v1.compositions.create(room_sid=empty.sid, audio_sources=["*"])
    assert err.value.status == 400  # completed with nothing recorded
    # sources that match nothing: the composition fails, and a failed one cannot be deleted
    failing = client.video.v1.compositions.create(
        room_sid=composed.room_sid, audio_sources=["nobody*"]
    )
    assert wait_status(client, failing.sid, "completed", "failed").status == "failed"
    with pytest.raises(TwilioRestException) as err:
        client.video.v1.compositions(failing.sid).delete()
    assert err.value.status == 400
    other = client_for(server, new_account(server))
    with pytest.raises(TwilioRestException) as err:
        other.video.v1.compositions(failing.sid).fetch()
    assert err.value.status == 404


def test_hooks_crud(composed: Composed) -> None:
    hooks = composed.client.video.v1.composition_hooks
    created = hooks.create(
        friendly_name="Audio Only", audio_sources=["*"], enabled=False, resolution="1280x720"
    )
    assert created.sid.startswith("HK") and created.enabled is False
    assert created.video_layout == {} and created.date_updated is None
    assert created.format == "webm" and created.trim is True
    with pytest.raises(TwilioRestException) as err:
        hooks.create(friendly_name="Audio Only", audio_sources=["*"])
    assert err.value.status == 400
    updated = hooks(created.sid).update(friendly_name="Audio Only 2", enabled=True, format="mp4")
    assert updated.enabled is True and updated.format == "mp4"
    assert updated.audio_sources == ["*"] and updated.resolution == "1280x720"
    assert isinstance(updated.date_updated, dt.datetime)
    names = [h.friendly_name for h in hooks.list(friendly_name="audio*")]
    assert names == ["Audio Only 2"]
    assert [h.sid for h in hooks.list(enabled=False)] == []
    hooks(created.sid).delete()
    with pytest.raises(TwilioRestException) as err:
        hooks(created.sid).fetch()
    assert err.value.status == 404


def test_a_composition_left_processing_is_composed_again_at_start(
    composed: Composed, server: ServerThread
) -> None:
    """What a killed server leaves: a `processing` row nobody works on. `recover()` (run at
    every start) puts it back in the queue and it is composed, once."""
    service = compositions(server)
    first = composed.client.video.v1.compositions.create(
        room_sid=composed.room_sid, audio_sources=["*"], format="mp4"
    )
    wait_status(composed.client, first.sid, "completed", "failed")
    store = server.parlour.store
    account = AccountSid(composed.account.sid)

    async def orphan() -> str:
        done = await store.get_composition(account, first.sid)
        assert done is not None
        stuck = replace(
            done, sid="CJ" + "f" * 32, status=CompositionStatus.PROCESSING, size=0, duration=0
        )
        await store.insert_composition(stuck)
        await service.recover()
        return stuck.sid

    sid = server.call(orphan())
    done = wait_status(composed.client, sid, "completed", "failed")
    assert done.status == "completed" and done.duration == 3
    started = [
        e for e in composed.receiver.events("composition-started") if e["CompositionSid"] == sid
    ]
    assert started == []  # no StatusCallback on the copy: nothing sent, nothing twice
    assert json.dumps(done.video_layout) == "{}"
    assert np.isfinite(time.time())


def test_cli_lists_compositions_with_their_status(composed: Composed, server: ServerThread) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src"),
        "PARLOUR_DATA_DIR": str(server.parlour.config.data_dir),
        "PARLOUR_DATABASE_URL": server.parlour.config.db_url,
    }
    args = [
        sys.executable, "-m", "parlour", "compositions", "progress",
        "--account", composed.account.sid,
    ]  # fmt: skip
    listed = subprocess.run(
        [*args, "--room", composed.room_sid, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert rows and {r["room_sid"] for r in rows} == {composed.room_sid}
    assert "completed" in {r["status"] for r in rows}
    text = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert text.returncode == 0 and "completed" in text.stdout
    unknown = subprocess.run(
        [sys.executable, "-m", "parlour", "compositions", "progress", "--account", "AC" + "0" * 32],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert unknown.returncode == 1 and "no account" in unknown.stderr


#: `video.v1.composition` and `video.v1.composition_hook` of Twilio's OpenAPI description.
COMPOSITION_FIELDS = {
    "account_sid", "status", "date_created", "date_completed", "date_deleted", "sid",
    "room_sid", "audio_sources", "audio_sources_excluded", "video_layout", "resolution",
    "trim", "format", "bitrate", "size", "duration", "media_external_location",
    "status_callback", "status_callback_method", "url", "links",
}  # fmt: skip
HOOK_FIELDS = {
    "account_sid", "friendly_name", "enabled", "date_created", "date_updated", "sid",
    "audio_sources", "audio_sources_excluded", "video_layout", "resolution", "trim", "format",
    "status_callback", "status_callback_method", "url",
}  # fmt: skip


def test_http_shapes_and_errors(composed: Composed, server: ServerThread) -> None:
    acct = composed.account
    with httpx.Client(base_url=server.base_url, auth=(acct.sid, acct.auth_token)) as http:
        page = http.get("/v1/Compositions", params={"RoomSid": composed.room_sid, "PageSize": 1})
        assert page.status_code == 200
        body = page.json()
        assert set(body) == {"compositions", "meta"} and body["meta"]["key"] == "compositions"
        [item] = body["compositions"]
        assert set(item) == COMPOSITION_FIELDS
        assert item["url"] == f"{server.base_url}/v1/Compositions/{item['sid']}"
        hooks = http.get("/v1/CompositionHooks").json()
        assert hooks["meta"]["key"] == "composition_hooks"
        assert set(hooks["composition_hooks"][0]) == HOOK_FIELDS
        for method, path, data, status in (
            ("POST", "/v1/Compositions", {}, 400),
            ("POST", "/v1/Compositions", {"RoomSid": "nope", "AudioSources": "*"}, 400),
            ("POST", "/v1/Compositions", {"RoomSid": composed.room_sid, "Format": "avi"}, 400),
            ("POST", "/v1/Compositions", {"RoomSid": composed.room_sid, "VideoLayout": "{"}, 400),
            (
                "POST",
                "/v1/Compositions",
                {"RoomSid": composed.room_sid, "AudioSources": "*", "Resolution": "4000x10"},
                400,
            ),
            ("POST", "/v1/CompositionHooks", {"AudioSources": "*"}, 400),
            ("POST", "/v1/CompositionHooks", {"FriendlyName": "x" * 101, "AudioSources": "*"}, 400),
            ("GET", "/v1/Compositions/CJ" + "0" * 32, None, 404),
            ("GET", "/v1/Compositions/CJ" + "0" * 32 + "/Media", None, 404),
            ("DELETE", "/v1/CompositionHooks/HK" + "0" * 32, None, 404),
            ("GET", "/v1/Compositions", {"Status": "lost"}, 400),
        ):
            if method == "GET":
                r = http.get(path, params=data)
            else:
                r = http.request(method, path, data=data)
            assert r.status_code == status, (path, data, r.text)
            assert set(r.json()) == {"code", "message", "more_info", "status"}
    anonymous = httpx.get(f"{server.base_url}/v1/Compositions")
    assert anonymous.status_code == 401 and anonymous.json()["code"] == 20003


def test_cli_manages_compositions_through_the_rest_api(
    composed: Composed, server: ServerThread, tmp_path: Path
) -> None:
    """`parlour compositions list|show|download|delete` against the running server (last in
    the module: it deletes a composition the others look at)."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    auth = ["--url", server.base_url, "--account-sid", composed.account.sid]
    auth += ["--auth-token", composed.account.auth_token]

    def parlour(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "parlour", "compositions", *args, *auth],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    listed = parlour("list", "--room", composed.room_sid, "--status", "completed", "--json")
    assert listed.returncode == 0, listed.stderr
    items = json.loads(listed.stdout)
    assert items and {c["room_sid"] for c in items} == {composed.room_sid}
    sid = items[0]["sid"]
    table = parlour("list", "--room", composed.room_sid)
    assert table.returncode == 0 and sid in table.stdout and "completed" in table.stdout
    shown = parlour("show", sid)
    assert shown.returncode == 0 and "sid " in shown.stdout and "completed" in shown.stdout
    out = tmp_path / "composition"
    got = parlour("download", sid, "--out", str(out), "--json")
    assert got.returncode == 0, got.stderr
    saved = json.loads(got.stdout)
    assert saved["bytes"] == out.stat().st_size == items[0]["size"] > 0
    with av.open(str(out)) as media:
        assert media.streams.video or media.streams.audio
    deleted = parlour("delete", sid)
    assert deleted.returncode == 0 and "deleted" in deleted.stdout
    again = parlour("show", sid, "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["status"] == "deleted"
    missing = parlour("show", "CJ" + "0" * 32)
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1
