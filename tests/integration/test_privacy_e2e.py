"""Export and erasure end to end, while the server runs: a room with two participants
(each publishing, one subscribed to the other), a recording and status callbacks; then
`parlour export` (the archive is opened and checked) and `parlour erase` in another
process, first for one identity, then for the whole account; after each, every file of
the data dir is scanned for what was erased, and so is the database: the SQLite file and
its WAL, or, on PostgreSQL, every file of a cluster the test starts (heap and index
files, WAL segments, its log), run as production should be for erasure (full-page
writes on, `wal_recycle = off`: docs/privacy.md)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from parlour.domain.sids import AccountSid, ParticipantSid
from parlour.domain.tracks import SubscribedTrack
from parlour.testing import ServerThread
from tests.helpers import Account, new_account
from tests.integration.recording_support import Receiver, feed, media_packets, publish, wait_until
from tests.pg import PostgresCluster, missing_reason
from tests.privacy_inventory import inventory

pytestmark = [pytest.mark.integration]

ERIN = "erin-7Q4zK@private.example"
BOB = "bob-9XvT2@private.example"
ROOM = "privacy-room-Jm3pW"
SRC = str(Path(__file__).resolve().parents[2] / "src")


@dataclass
class Deployment:
    """The server's data dir and, on PostgreSQL, the cluster holding its database."""

    data_dir: Path
    cluster: PostgresCluster | None = None
    database_url: str | None = None

    def roots(self) -> list[Path]:
        """Every directory the server's data can be in."""
        return [self.data_dir] + ([self.cluster.root] if self.cluster else [])

    def settle(self) -> None:
        """Let PostgreSQL write what it holds in memory to its files (a scan before erasure
        must find the data where it is, not miss it in shared buffers)."""
        if self.cluster is not None:
            self.cluster.psql("CHECKPOINT")


def parlour(deployment: Deployment, *args: str) -> subprocess.CompletedProcess[str]:
    """`parlour …` in a process of its own, on the server's data dir and database."""
    env = {**os.environ, "PYTHONPATH": SRC, "PARLOUR_DATA_DIR": str(deployment.data_dir)}
    env.pop("PARLOUR_DATABASE_URL", None)
    if deployment.database_url is not None:
        env["PARLOUR_DATABASE_URL"] = deployment.database_url
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


def files_holding(deployment: Deployment, needles: list[str]) -> dict[str, list[str]]:
    """Which files of the data dir (and the PostgreSQL cluster) contain which needles
    (UTF-8 and UTF-16).

    Read by another process: closing a descriptor of the database file in the server's
    own process would drop the server's SQLite (POSIX) locks on it.
    """
    found: dict[str, list[str]] = {}
    for root in deployment.roots():
        scan = subprocess.run(
            [sys.executable, "-c", _SCAN, str(root), json.dumps(needles)],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        found.update({f"{root.name}/{k}": v for k, v in json.loads(scan.stdout).items()})
    return found


def unlisted_files(data_dir: Path) -> list[str]:
    inv = inventory()
    return [
        rel
        for rel in (str(p.relative_to(data_dir)) for p in data_dir.rglob("*") if p.is_file())
        if inv.file_kind(rel) is None
    ]


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    data_dir = tmp_path_factory.mktemp(f"privacy-data-{request.param}")
    if request.param == "sqlite":
        yield Deployment(data_dir)
        return
    reason = missing_reason()
    if reason is not None:
        pytest.skip(reason)
    # Durable settings, as in production (tests/pg.py turns them off for speed), and the
    # one erasure needs: WAL segments past a checkpoint are removed, not kept for reuse.
    cluster = PostgresCluster.start("full_page_writes=on", "wal_recycle=off")
    try:
        yield Deployment(data_dir, cluster, cluster.create_database("parlour"))
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def data_dir(deployment: Deployment) -> Path:
    return deployment.data_dir


@pytest.fixture(scope="module")
def server(deployment: Deployment) -> Iterator[ServerThread]:
    srv = ServerThread(
        deployment.data_dir,
        idle_sweep_seconds=0.05,
        webhook_allow_private=True,
        database_url=deployment.database_url,
    )
    srv.__enter__()
    yield srv
    if srv._thread.is_alive():  # the last test stops it itself
        srv.__exit__(None, None, None)


def pending_callbacks(server: ServerThread) -> int:
    return len(server.call(server.parlour.store.pending_callback_deliveries()))


def test_export_and_erase_while_the_server_runs(
    server: ServerThread, deployment: Deployment, data_dir: Path, tmp_path: Path
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
        refused = parlour(
            deployment, "erase", "--account", account.sid, "--identity", ERIN, "--yes"
        )
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
            deployment,
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
        deployment.settle()
        assert files_holding(deployment, before)  # the scan finds what is there
        assert unlisted_files(data_dir) == [], "a file kind missing from docs/privacy.md"

        # Erase Erin, in another process, while the server runs.
        erased = parlour(
            deployment, "erase", "--account", account.sid, "--identity", ERIN, "--yes", "--json"
        )
        assert erased.returncode == 0, erased.stderr
        summary = json.loads(erased.stdout)
        assert summary["erased"]["participants"] == 1
        assert summary["erased"]["subscribed_tracks"] == 1
        assert summary["media_deleted"] == [erin_rec]
        assert files_holding(deployment, before) == {}
        wal = data_dir / "parlour.db-wal"
        assert not wal.exists() or wal.stat().st_size == 0  # truncated (or removed)
        deployment.settle()
        # Bob and the room are untouched and the server serves them.
        assert files_holding(deployment, [BOB, ROOM])
        gone = http.get(f"/v1/Rooms/{room['sid']}/Participants/{erin.participant_sid}")
        assert gone.status_code == 404
        assert http.get(f"/v1/Recordings/{erin_rec}").status_code == 404
        listed = http.get(f"/v1/Rooms/{room['sid']}/Participants").json()["participants"]
        assert [p["identity"] for p in listed] == [BOB]

        # The whole account: refused while the room is in progress, then done.
        refused = parlour(deployment, "erase", "--account", account.sid, "--yes")
        assert refused.returncode == 1 and "in progress" in refused.stderr
        done = http.post(f"/v1/Rooms/{room['sid']}", data={"Status": "completed"})
        assert done.json()["status"] == "completed", done.text
        assert http.get(f"/v1/Rooms/{room['sid']}").json()["status"] == "completed"
        wait_until(lambda: len(receiver.events("recording-completed")) == 2)
        wait_until(lambda: pending_callbacks(server) == 0)
        bob_rec = receiver.events("recording-completed")[1]["RecordingSid"]
        everything = [BOB, ROOM, room["sid"], bob.participant_sid, bob.track_sid, bob_rec]
        erased = parlour(deployment, "erase", "--account", account.sid, "--yes")
        assert erased.returncode == 0, erased.stderr
        assert files_holding(deployment, everything + before) == {}
        assert http.get(f"/v1/Rooms/{room['sid']}").status_code == 404
        assert http.get("/v1/Rooms").json()["rooms"] == []
        assert server.call(server.parlour.store.get_account(AccountSid(account.sid))) is not None
    http.close()
    print(f"privacy e2e: {time.monotonic() - started:.1f} s")


def test_nothing_comes_back_after_the_server_stops(
    server: ServerThread, deployment: Deployment
) -> None:
    """The server keeps running after the erasures and then stops (ending its sessions):
    nothing erased is written back."""
    server.__exit__(None, None, None)
    deployment.settle()
    assert files_holding(deployment, [ERIN, BOB, ROOM]) == {}
