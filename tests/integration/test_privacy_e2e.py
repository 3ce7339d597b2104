"""Export and erasure end to end, while the server runs: a room with two participants
(each publishing, one subscribed to the other), a recording and status callbacks; then
`parlour export` (the archive is opened and checked) and `parlour erase` in another
process, first for one identity, then for the whole account; after each, the database
file, its WAL and every file of the data dir are scanned for what was erased."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from parlour.domain.sids import AccountSid, ParticipantSid
from parlour.domain.tracks import SubscribedTrack
from parlour.testing import ServerThread
from tests.helpers import Account, new_account
from tests.integration.recording_support import Receiver, feed, media_packets, publish, wait_until
from tests.privacy_inventory import inventory

pytestmark = [pytest.mark.integration]

ERIN = "erin-7Q4zK@private.example"
BOB = "bob-9XvT2@private.example"
ROOM = "privacy-room-Jm3pW"
SRC = str(Path(__file__).resolve().parents[2] / "src")


def parlour(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`parlour …` in a process of its own, on the server's data dir."""
    env = {**os.environ, "PYTHONPATH": SRC, "PARLOUR_DATA_DIR": str(data_dir)}
    env.pop("PARLOUR_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "parlour", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


_SCAN = """
import json, pathlib, sys
root, needles = pathlib.Path(sys.argv[1]), json.loads(sys.argv[2])
found = {}
for path in sorted(p for p in root.rglob("*") if p.is_file()):
    blob = path.read_bytes()
    codecs = ("utf-8", "utf-16-le", "utf-16-be")
    hits = [n for n in needles if any(n.encode(c) in blob for c in codecs)]
    if hits:
        found[str(path.relative_to(root))] = hits
print(json.dumps(found))
"""


def files_holding(data_dir: Path, needles: list[str]) -> dict[str, list[str]]:
    """Which files of the data dir contain which needles (UTF-8 and UTF-16).

    Read by another process: closing a descriptor of the database file in the server's
    own process would drop the server's SQLite (POSIX) locks on it.
    """
    scan = subprocess.run(
        [sys.executable, "-c", _SCAN, str(data_dir), json.dumps(needles)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    found: dict[str, list[str]] = json.loads(scan.stdout)
    return found


def unlisted_files(data_dir: Path) -> list[str]:
    inv = inventory()
    return [
        rel
        for rel in (str(p.relative_to(data_dir)) for p in data_dir.rglob("*") if p.is_file())
        if inv.file_kind(rel) is None
    ]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("privacy-data")


@pytest.fixture(scope="module")
def server(data_dir: Path) -> Iterator[ServerThread]:
    srv = ServerThread(data_dir, idle_sweep_seconds=0.05, webhook_allow_private=True)
    srv.__enter__()
    yield srv
    if srv._thread.is_alive():  # the last test stops it itself
        srv.__exit__(None, None, None)


def pending_callbacks(server: ServerThread) -> int:
    return len(server.call(server.parlour.store.pending_callback_deliveries()))


def test_export_and_erase_while_the_server_runs(
    server: ServerThread, data_dir: Path, tmp_path: Path
) -> None:
    started = time.monotonic()
    account: Account = new_account(server)
    auth = (account.sid, account.auth_token)
    # No pooled connection outlives a request: the server is stopped in the next test.
    http = httpx.Client(
        base_url=server.base_url,
        auth=auth,
        timeout=30,
        limits=httpx.Limits(max_keepalive_connections=0),
    )
    with Receiver(account.auth_token) as receiver:
        room = http.post(
            "/v1/Rooms",
            data={
                "UniqueName": ROOM,
                "RecordParticipantsOnConnect": "true",
                "StatusCallback": receiver.url,
            },
        ).json()
        erin_tracks = publish(server, account.sid, room["sid"], ERIN, [("erin-mic", "OPUS")])
        bob_tracks = publish(server, account.sid, room["sid"], BOB, [("bob-mic", "OPUS")])
        erin, bob = erin_tracks[0], bob_tracks[0]

        async def subscribe() -> None:
            store = server.parlour.store
            track = await store.get_published_track(
                ParticipantSid(erin.participant_sid), "erin-mic"
            )
            assert track is not None
            now = dt.datetime.now(dt.UTC)
            sub = SubscribedTrack.of(track, ParticipantSid(bob.participant_sid), now)
            assert await store.insert_subscribed_track(sub)

        server.call(subscribe())
        feed(
            server,
            [(t.tap, media_packets("OPUS", 1.0, ssrc=7000 + i)) for i, t in enumerate((erin, bob))],  # type: ignore[misc]
            realtime=False,
        )

        # Erin is connected: her erasure is refused, and nothing is erased.
        refused = parlour(data_dir, "erase", "--account", account.sid, "--identity", ERIN, "--yes")
        assert refused.returncode == 1
        assert refused.stderr.startswith("parlour: nothing erased: participant PA")
        assert refused.stderr.count("\n") == 1

        # She leaves; her recording completes and its callbacks are delivered.
        left = http.post(
            f"/v1/Rooms/{room['sid']}/Participants/{erin.participant_sid}",
            data={"Status": "disconnected"},
        )
        assert left.status_code == 202
        wait_until(lambda: len(receiver.events("recording-completed")) == 1)
        wait_until(lambda: pending_callbacks(server) == 0)
        erin_rec = receiver.events("recording-completed")[0]["RecordingSid"]
        assert receiver.events("recording-completed")[0]["ParticipantIdentity"] == ERIN

        # Export: one archive with her records and her recording.
        archive = tmp_path / "erin.zip"
        export = parlour(
            data_dir,
            "export",
            "--account",
            account.sid,
            "--identity",
            ERIN,
            "--out",
            str(archive),
            "--json",
        )
        assert export.returncode == 0, export.stderr
        assert json.loads(export.stdout)["media"] == [f"media/{erin_rec}.mka"]
        assert archive.stat().st_mode & 0o777 == 0o600
        with zipfile.ZipFile(archive) as z:
            manifest = json.loads(z.read("manifest.json"))
            records: dict[str, Any] = {
                name: json.loads(z.read(f"records/{name}.json")) for name in manifest["records"]
            }
            media = z.read(f"media/{erin_rec}.mka")
        assert manifest["format"] == "parlour-export/1"
        assert (manifest["account_sid"], manifest["identity"]) == (account.sid, ERIN)
        assert [p["identity"] for p in records["participants"]] == [ERIN]
        assert [r["unique_name"] for r in records["rooms"]] == [ROOM]
        assert [t["name"] for t in records["published_tracks"]] == ["erin-mic"]
        assert [(s["participant_sid"], s["name"]) for s in records["subscribed_tracks"]] == [
            (bob.participant_sid, "erin-mic")
        ]
        assert [r["sid"] for r in records["recordings"]] == [erin_rec]
        events = {d["event"] for d in records["callback_deliveries"]}
        assert {"participant-connected", "participant-disconnected"} <= events
        assert all(d["status"] == "delivered" for d in records["callback_deliveries"])
        assert not any(BOB in json.dumps(d) for d in records["callback_deliveries"])
        assert media[:4] == b"\x1a\x45\xdf\xa3"  # EBML: a Matroska file
        assert len(media) == records["recordings"][0]["size"]
        assert manifest["records"]["participants"] == 1

        before = [ERIN, erin.participant_sid, erin.track_sid, erin_rec]
        assert files_holding(data_dir, before)  # the scan finds what is there
        assert unlisted_files(data_dir) == [], "a file kind missing from docs/privacy.md"

        # Erase Erin, in another process, while the server runs.
        erased = parlour(
            data_dir, "erase", "--account", account.sid, "--identity", ERIN, "--yes", "--json"
        )
        assert erased.returncode == 0, erased.stderr
        summary = json.loads(erased.stdout)
        assert summary["erased"]["participants"] == 1
        assert summary["erased"]["subscribed_tracks"] == 1
        assert summary["media_deleted"] == [erin_rec]
        assert files_holding(data_dir, before) == {}
        wal = data_dir / "parlour.db-wal"
        assert not wal.exists() or wal.stat().st_size == 0  # truncated (or removed)
        # Bob and the room are untouched and the server serves them.
        assert files_holding(data_dir, [BOB, ROOM])
        gone = http.get(f"/v1/Rooms/{room['sid']}/Participants/{erin.participant_sid}")
        assert gone.status_code == 404
        assert http.get(f"/v1/Recordings/{erin_rec}").status_code == 404
        listed = http.get(f"/v1/Rooms/{room['sid']}/Participants").json()["participants"]
        assert [p["identity"] for p in listed] == [BOB]

        # The whole account: refused while the room is in progress, then done.
        refused = parlour(data_dir, "erase", "--account", account.sid, "--yes")
        assert refused.returncode == 1 and "in progress" in refused.stderr
        done = http.post(f"/v1/Rooms/{room['sid']}", data={"Status": "completed"})
        assert done.json()["status"] == "completed", done.text
        assert http.get(f"/v1/Rooms/{room['sid']}").json()["status"] == "completed"
        wait_until(lambda: len(receiver.events("recording-completed")) == 2)
        wait_until(lambda: pending_callbacks(server) == 0)
        bob_rec = receiver.events("recording-completed")[1]["RecordingSid"]
        everything = [BOB, ROOM, room["sid"], bob.participant_sid, bob.track_sid, bob_rec]
        erased = parlour(data_dir, "erase", "--account", account.sid, "--yes")
        assert erased.returncode == 0, erased.stderr
        assert files_holding(data_dir, everything + before) == {}
        assert http.get(f"/v1/Rooms/{room['sid']}").status_code == 404
        assert http.get("/v1/Rooms").json()["rooms"] == []
        assert server.call(server.parlour.store.get_account(AccountSid(account.sid))) is not None
    http.close()
    print(f"privacy e2e: {time.monotonic() - started:.1f} s")


def test_nothing_comes_back_after_the_server_stops(server: ServerThread, data_dir: Path) -> None:
    """The server keeps running after the erasures and then stops (ending its sessions):
    nothing erased is written back."""
    server.__exit__(None, None, None)
    assert files_holding(data_dir, [ERIN, BOB, ROOM]) == {}
