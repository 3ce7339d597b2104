"""`/v1/Parlour/Retention` and `parlour retention` on a real server, and the server's
sweeper anonymising a participant of a room that ended days ago."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from parlour.domain.participants import Participant
from parlour.domain.rooms import RoomSpec, validate_room_spec
from parlour.domain.sids import AccountSid, RoomSid, new_sid
from parlour.testing import ServerThread
from tests.helpers import new_account
from tests.integration.recording_support import wait_until

pytestmark = [pytest.mark.integration]

SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("retention-data")


@pytest.fixture(scope="module")
def server(data_dir: Path) -> Iterator[ServerThread]:
    with ServerThread(data_dir, retention_sweep_seconds=0.1) as srv:
        yield srv


def test_the_retention_resource(server: ServerThread, data_dir: Path) -> None:
    a, b = new_account(server), new_account(server)
    with httpx.Client(base_url=server.base_url, auth=(a.key_sid, a.key_secret)) as http:
        url = f"{server.base_url}/v1/Parlour/Retention"
        first = http.get("/v1/Parlour/Retention").json()
        assert first == {
            "account_sid": a.sid,
            "identity_days": 30,
            "recording_days": 30,
            "callback_days": 7,
            "default": True,
            "date_created": None,
            "date_updated": None,
            "url": url,
        }
        set_ = http.post(
            "/v1/Parlour/Retention", data={"RecordingDays": "never", "IdentityDays": "3"}
        )
        assert set_.status_code == 200
        body = set_.json()
        assert (body["identity_days"], body["recording_days"], body["callback_days"]) == (
            3,
            None,
            7,
        )
        assert body["default"] is False and body["date_created"] is not None
        assert http.get(f"/v1/Parlour/Accounts/{a.sid}/Retention").json()["identity_days"] == 3
        other = http.get(f"/v1/Parlour/Accounts/{b.sid}/Retention")
        assert other.status_code == 404 and other.json()["code"] == 20404
        other = http.post(f"/v1/Parlour/Accounts/{b.sid}/Retention", data={"IdentityDays": "1"})
        assert other.status_code == 404
        for bad in ("0", "36501", "soon", ""):
            r = http.post("/v1/Parlour/Retention", data={"CallbackDays": bad})
            assert r.status_code == 400 and r.json()["code"] == 20001, bad
        assert httpx.get(url).status_code == 401
        # The CLI, in another process, reads and sets the same policy.
        env = {**os.environ, "PYTHONPATH": SRC, "PARLOUR_DATA_DIR": str(data_dir)}
        env.pop("PARLOUR_DATABASE_URL", None)
        cli = subprocess.run(
            [
                sys.executable,
                "-m",
                "parlour",
                "retention",
                "--account",
                a.sid,
                "--callback-days",
                "2",
            ]
            + ["--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert cli.returncode == 0, cli.stderr
        shown = json.loads(cli.stdout)
        assert (shown["identity_days"], shown["recording_days"], shown["callback_days"]) == (
            3,
            None,
            2,
        )
        assert http.get("/v1/Parlour/Retention").json()["callback_days"] == 2
        bad = subprocess.run(
            [sys.executable, "-m", "parlour", "retention", "--identity-days", "0"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1


def test_the_server_sweeps(server: ServerThread) -> None:
    account = new_account(server)
    with httpx.Client(base_url=server.base_url, auth=(account.sid, account.auth_token)) as http:
        long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
        old_identity = "frank-Zp5@private.example"

        async def old_room() -> tuple[str, str]:
            store = server.parlour.store
            room = validate_room_spec(
                RoomSpec(unique_name="old"),
                sid=RoomSid(new_sid("RM")),
                account_sid=AccountSid(account.sid),
                now=long_ago,
            )
            await store.insert_room(room)
            p = Participant.joining(room.sid, room.account_sid, old_identity, long_ago)
            await store.insert_participant(replace(p, node_id=None))
            await store.disconnect_participant(p.sid, long_ago)
            await store.complete_room(room.sid, long_ago + dt.timedelta(seconds=5))
            return room.sid, p.sid

        room_sid, participant_sid = server.call(old_room())
        path = f"/v1/Rooms/{room_sid}/Participants/{participant_sid}"
        assert http.get(path).json()["identity"] == old_identity  # 30 days by default
        assert http.post("/v1/Parlour/Retention", data={"IdentityDays": "2"}).is_success
        wait_until(lambda: http.get(path).json()["identity"] == participant_sid, timeout=10)
