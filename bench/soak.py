"""`make soak`: seeded churn against a real server for an hour, watching for what leaks.

    .venv/bin/python -m bench.soak [--minutes 60] [--seed 1] [--participants 20]

A `parlour serve` process (its own data dir, SQLite, short session and room timeouts) and,
in this process, 20 participant slots that join, publish, mute, unpublish, switch tracks,
leave and rejoin at random: most are the benchmark's lean endpoints (pre-encoded VP8 and
Opus, real ICE/DTLS/SRTP), a few are the Python SDK with aiortc (Opus and a data track). A
few vanish without saying goodbye (the socket just closes) and a few never finish ICE. A
controller completes and re-creates rooms over REST (with a status callback to a receiver
here, recording on or off) and switches recordings with RecordingRules.

Every few seconds it samples the server: RSS, threads, open file descriptors, UDP and TCP
sockets, asyncio tasks, signaling sessions, recordings in progress, pending callbacks and
the media gauges (`/metrics`), the database's size and its live rows, and spool files.
Before the churn, two minutes of it at full size and a settle give the baseline; after it, everyone
leaves, the rooms are completed, the timeouts pass, and each series must be back at the
baseline (`TOLERANCES`). Every callback must have been delivered with a valid signature,
and every completed recording must decode. Results: `bench/results/<date>-soak.json`, a
Markdown summary and a plot of every series (`.png`).

The same churn, two minutes long, runs in `make test` (tests/integration/test_soak_short.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import random
import re
import sqlite3
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import av
import httpx
from aiortc import AudioStreamTrack
from twilio.request_validator import RequestValidator

from bench.lean import LeanEndpoint
from bench.media_loop import EncodedLoop
from bench.parlour_adapter import ParlourCredentials
from bench.parlour_adapter import join as lean_join
from bench.run import ParlourServer
from parlour.client.video import LocalTrackInfo, Room, connect
from parlour.media.dtls import Certificate

log = logging.getLogger("bench.soak")

RESULTS = Path(__file__).parent / "results"

#: How far above its baseline each series may end. Counts of things (sockets, tasks,
#: sessions, live rows) must come back exactly; memory gets the allocator's slack; threads
#: the default executor's idle workers (they are reused, not leaked); descriptors the
#: database pool's idle connections (up to its size, each with its files).
TOLERANCES: dict[str, float] = {
    "rss_mib": 48.0,
    "threads": 12,
    "fds": 16,
    "udp_sockets": 0,
    "tcp_sockets": 2,
    "asyncio_tasks": 0,
    "sessions": 0,
    "recordings_in_progress": 0,
    "webhook_pending": 0,
    "media_rooms": 0,
    "media_participants": 0,
    "media_published": 0,
    "media_subscribed": 0,
    "db_rooms_in_progress": 0,
    "db_participants_connected": 0,
    "db_published_open": 0,
    "db_subscribed_open": 0,
    "db_recordings_processing": 0,
    "db_callbacks_pending": 0,
    "spool_files": 0,
}
#: Series that only grow (history kept by design); plotted, not checked.
GROWING = ("db_bytes", "db_rooms", "db_participants", "db_recordings", "db_callbacks")

GAUGES = {
    "parlour_asyncio_tasks": "asyncio_tasks",
    "parlour_signaling_sessions": "sessions",
    "parlour_recordings_in_progress": "recordings_in_progress",
    "parlour_webhook_pending_deliveries": "webhook_pending",
    "parlour_rooms": "media_rooms",
    "parlour_participants": "media_participants",
    "parlour_published_tracks": "media_published",
    "parlour_subscribed_tracks": "media_subscribed",
}

SERVER_ENV = {
    "PARLOUR_WEBHOOK_ALLOW_PRIVATE": "true",
    # The SFU in the sampled process (its sockets, tasks and memory are what is checked).
    "PARLOUR_MEDIA_WORKERS": "0",
    "PARLOUR_SESSION_TIMEOUT_SECONDS": "5",
    "PARLOUR_IDLE_SWEEP_SECONDS": "1",
    "PARLOUR_TIMEOUT_MINUTE_SECONDS": "1",  # a room's "5 minutes" empty timeout: 5 s
    "PARLOUR_AUTO_CREATE_ROOMS": "false",
}


@dataclass
class SoakConfig:
    minutes: float = 60.0
    seed: int = 1
    participants: int = 20
    sdk_participants: int = 4
    rooms: int = 4
    sample_seconds: float = 5.0
    settle_limit_seconds: float = 90.0
    out: Path | None = RESULTS
    #: Check RSS against the baseline (`TOLERANCES["rss_mib"]`); a two-minute run
    #: reports it only, as its memory is still growing into the allocator's arenas.
    check_memory: bool = True
    #: Seconds of churn at full size before the baseline.
    warmup_seconds: float = 120.0


# -- a status callback receiver ------------------------------------------------------------


class CallbackReceiver:
    """Counts status callbacks and checks each one's `X-Twilio-Signature`."""

    def __init__(self, auth_token: str) -> None:
        validator = RequestValidator(auth_token)
        self.valid = 0
        self.invalid = 0
        self.events: dict[str, int] = {}
        lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                params = dict(parse_qsl(self.rfile.read(length).decode(), keep_blank_values=True))
                url = f"http://{self.headers['Host']}{self.path}"
                ok = validator.validate(url, params, self.headers.get("X-Twilio-Signature", ""))
                with lock:
                    if ok:
                        receiver.valid += 1
                    else:
                        receiver.invalid += 1
                    event = params.get("StatusCallbackEvent", "?")
                    receiver.events[event] = receiver.events.get(event, 0) + 1
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/cb"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


# -- sampling the server --------------------------------------------------------------------


def _socket_inodes(pid: int) -> set[str]:
    inodes: set[str] = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    return inodes


def _proto_inodes(pid: int, *tables: str) -> set[str]:
    found: set[str] = set()
    for table in tables:
        with contextlib.suppress(OSError), open(f"/proc/{pid}/net/{table}") as f:
            next(f)
            for line in f:
                cols = line.split()
                if len(cols) > 9:
                    found.add(cols[9])
    return found


def _status(pid: int) -> dict[str, int]:
    values: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "Threads"):
                values[key] = int(rest.split()[0])
    return values


_METRIC_LINE = re.compile(r"^([a-z_]+)(?:\{[^}]*\})? ([0-9.eE+-]+)$", re.M)


def _db_counts(db: Path) -> dict[str, float]:
    queries = {
        "db_rooms": "SELECT count(*) FROM rooms",
        "db_rooms_in_progress": "SELECT count(*) FROM rooms WHERE status = 'in-progress'",
        "db_participants": "SELECT count(*) FROM participants",
        "db_participants_connected": (
            "SELECT count(*) FROM participants WHERE status = 'connected'"
        ),
        "db_published_open": "SELECT count(*) FROM published_tracks WHERE ended_at IS NULL",
        "db_subscribed_open": "SELECT count(*) FROM subscribed_tracks WHERE ended_at IS NULL",
        "db_recordings": "SELECT count(*) FROM recordings",
        "db_recordings_processing": (
            "SELECT count(*) FROM recordings WHERE status IN ('processing', 'enqueued')"
        ),
        "db_callbacks": "SELECT count(*) FROM callback_deliveries",
        "db_callbacks_pending": (
            "SELECT count(*) FROM callback_deliveries WHERE status = 'pending'"
        ),
    }
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return {name: float(conn.execute(sql).fetchone()[0]) for name, sql in queries.items()}
    finally:
        conn.close()


class Probe:
    """Samples one `parlour serve` process from outside: /proc, /metrics, its database."""

    def __init__(self, server: ParlourServer) -> None:
        self.server = server
        self.http = httpx.AsyncClient(timeout=10)

    async def sample(self) -> dict[str, float]:
        pid = self.server.pid
        status = _status(pid)
        sockets = _socket_inodes(pid)
        values: dict[str, float] = {
            "rss_mib": status.get("VmRSS", 0) / 1024,
            "threads": status.get("Threads", 0),
            "fds": len(os.listdir(f"/proc/{pid}/fd")),
            "udp_sockets": len(sockets & _proto_inodes(pid, "udp", "udp6")),
            "tcp_sockets": len(sockets & _proto_inodes(pid, "tcp", "tcp6")),
        }
        r = await self.http.get(
            f"http://127.0.0.1:{self.server.port}/metrics",
            headers={"Authorization": f"Bearer {self.server.metrics_token}"},
        )
        r.raise_for_status()
        for name in GAUGES.values():
            values[name] = 0.0
        for match in _METRIC_LINE.finditer(r.text):
            key = GAUGES.get(match.group(1))
            if key is not None:
                values[key] += float(match.group(2))
        db = self.server.dir / "parlour.db"
        values["db_bytes"] = sum(
            p.stat().st_size for p in (db, db.with_name("parlour.db-wal")) if p.exists()
        )
        values.update(await asyncio.to_thread(_db_counts, db))
        spool = self.server.dir / "media" / "spool"
        values["spool_files"] = (
            sum(1 for p in spool.glob("*") if p.is_file()) if spool.exists() else 0
        )
        return values

    async def close(self) -> None:
        await self.http.aclose()


# -- the churn ------------------------------------------------------------------------------


@dataclass
class Counters:
    joins: int = 0
    join_errors: int = 0
    leaves: int = 0
    vanished: int = 0
    no_ice: int = 0
    mutes: int = 0
    unpublishes: int = 0
    publishes: int = 0
    rooms_completed: int = 0
    rooms_created: int = 0
    rule_changes: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    def error(self, what: str, exc: BaseException) -> None:
        key = f"{what}: {type(exc).__name__}"
        code = getattr(exc, "code", None)  # a Twilio error code says why the server refused
        if isinstance(code, int):
            key += f" {code}"
        self.errors[key] = self.errors.get(key, 0) + 1


class Churn:
    def __init__(
        self,
        server: ParlourServer,
        receiver: CallbackReceiver,
        config: SoakConfig,
        media: EncodedLoop,
    ) -> None:
        self.server = server
        self.receiver = receiver
        self.config = config
        self.media = media
        self.certificate = Certificate.generate()
        self.creds = ParlourCredentials(**server.creds)
        self.ws_url = f"ws://127.0.0.1:{server.port}/signaling"
        self.rooms = [f"soak-{i}" for i in range(config.rooms)]
        self.counters = Counters()
        self.stop = asyncio.Event()
        self.http = httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{server.port}",
            auth=(server.creds["account_sid"], server.auth_token),
            timeout=30,
        )

    async def create_room(self, name: str, rng: random.Random) -> None:
        r = await self.http.post(
            "/v1/Rooms",
            data={
                "UniqueName": name,
                "Type": "group",
                "StatusCallback": self.receiver.url,
                "RecordParticipantsOnConnect": "true" if rng.random() < 0.5 else "false",
                "EmptyRoomTimeout": "5",
                "UnusedRoomTimeout": "5",
            },
        )
        if r.status_code == 201:
            self.counters.rooms_created += 1
        elif r.status_code != 400:  # 53113: the room exists (still in progress)
            r.raise_for_status()

    async def complete_room(self, name: str) -> None:
        r = await self.http.post(f"/v1/Rooms/{name}", data={"Status": "completed"})
        if r.status_code == 202:  # Twilio's status for a Room update
            self.counters.rooms_completed += 1

    async def controller(self, rng: random.Random) -> None:
        """Completes and re-creates rooms, and switches recordings, at random."""
        while not self.stop.is_set():
            await self._sleep(rng.uniform(4, 12))
            if self.stop.is_set():
                return
            name = rng.choice(self.rooms)
            try:
                roll = rng.random()
                if roll < 0.3:
                    await self.complete_room(name)
                    await self.create_room(name, rng)
                elif roll < 0.7:
                    rules = [{"type": "include" if rng.random() < 0.5 else "exclude", "all": True}]
                    r = await self.http.post(
                        f"/v1/Rooms/{name}/RecordingRules", data={"Rules": json.dumps(rules)}
                    )
                    if r.status_code == 200:
                        self.counters.rule_changes += 1
                else:
                    await self.create_room(name, rng)  # in case it timed out empty
            except httpx.HTTPError as exc:
                self.counters.error("controller", exc)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)

    async def slot(self, index: int, sdk: bool, rng: random.Random) -> None:
        identity = f"soak-{'sdk' if sdk else 'lean'}-{index}"
        while not self.stop.is_set():
            room_name = rng.choice(self.rooms)
            try:
                if sdk:
                    await self._sdk_visit(identity, room_name, rng)
                else:
                    await self._lean_visit(identity, room_name, rng)
            except Exception as exc:  # counted; the soak goes on
                self.counters.error("visit", exc)
            await self._sleep(rng.uniform(0.5, 5))

    async def _lean_visit(self, identity: str, room_name: str, rng: random.Random) -> None:
        roll = rng.random()
        endpoint = LeanEndpoint(
            self.media,
            self.certificate,
            send_audio=roll < 0.9,
            send_video=roll < 0.6,
            label=identity,
        )
        await endpoint.open()
        room: Room | None = None
        try:
            never_ice = rng.random() < 0.05
            if never_ice:
                endpoint.close()  # the socket is gone: no connectivity check ever comes
            try:
                room = await lean_join(self.ws_url, self.creds, identity, room_name, endpoint)
            except Exception as exc:
                self.counters.join_errors += 1
                self.counters.error("join", exc)
                return
            self.counters.joins += 1
            if never_ice:
                self.counters.no_ice += 1
                await self._sleep(rng.uniform(5, 20))  # the server gives up on ICE
                return
            await self._sleep(rng.uniform(5, 40))
            if rng.random() < 0.1:
                self.counters.vanished += 1
                await room.vanish()
                room = None
        finally:
            if room is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(room.disconnect(), 10)
                self.counters.leaves += 1
            endpoint.close()

    async def _sdk_visit(self, identity: str, room_name: str, rng: random.Random) -> None:
        mic = LocalTrackInfo.from_track(AudioStreamTrack(), "mic")
        token = self.creds.token(identity, room_name)
        try:
            room = await asyncio.wait_for(
                connect(self.ws_url, token, name=room_name, tracks=(mic,)), 30
            )
        except Exception as exc:
            self.counters.join_errors += 1
            self.counters.error("join", exc)
            if mic.media is not None:
                mic.media.stop()
            return
        self.counters.joins += 1
        gone = False
        try:
            deadline = time.monotonic() + rng.uniform(5, 40)
            published = True
            while time.monotonic() < deadline and not self.stop.is_set():
                await self._sleep(rng.uniform(1, 5))
                roll = rng.random()
                if roll < 0.4 and published:
                    await room.set_track_enabled(mic.id, rng.random() < 0.5)
                    self.counters.mutes += 1
                elif roll < 0.6 and published:
                    await room.unpublish_track(mic.id)
                    published = False
                    self.counters.unpublishes += 1
                elif roll < 0.8 and not published:
                    mic = LocalTrackInfo.from_track(AudioStreamTrack(), f"mic-{rng.randrange(99)}")
                    await room.publish_track(mic)
                    published = True
                    self.counters.publishes += 1
                elif roll < 0.9:
                    data = LocalTrackInfo(name=f"chat-{rng.randrange(99)}", kind="data")
                    await room.publish_track(data)
                    self.counters.publishes += 1
            if rng.random() < 0.1:
                self.counters.vanished += 1
                gone = True
                await room.vanish()
        finally:
            if not gone:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(room.disconnect(), 10)
                self.counters.leaves += 1

    async def run(self, seconds: float) -> None:
        rng = random.Random(self.config.seed)
        for name in self.rooms:
            await self.create_room(name, rng)
        tasks = [asyncio.create_task(self.controller(random.Random(rng.random())))]
        for i in range(self.config.participants):
            sdk = i < self.config.sdk_participants
            tasks.append(asyncio.create_task(self.slot(i, sdk, random.Random(rng.random()))))
        await self._sleep(seconds)
        self.stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        for name in self.rooms:
            with contextlib.suppress(httpx.HTTPError):
                await self.complete_room(name)

    async def close(self) -> None:
        await self.http.aclose()


# -- checks ---------------------------------------------------------------------------------


def check_recordings(data_dir: Path) -> dict[str, Any]:
    """Every completed recording's file decodes (its first packets, at least)."""
    db = data_dir / "parlour.db"
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT sid, container_format, status, codec, size, duration FROM recordings"
        ).fetchall()
    finally:
        conn.close()
    statuses: dict[str, int] = {}
    unplayable: list[str] = []
    why: dict[str, str] = {}
    for sid, container, status, codec, size, duration in rows:
        statuses[status] = statuses.get(status, 0) + 1
        if status != "completed":
            continue
        path = data_dir / "media" / "recordings" / f"{sid}.{container}"
        if not size:
            statuses["completed (no media)"] = statuses.get("completed (no media)", 0) + 1
            continue  # a track that never sent media: no file, as `has_media` says
        try:
            with av.open(str(path)) as media:
                frames = 0
                for _frame in media.decode(media.streams[0]):
                    frames += 1
                    if frames >= 10:
                        break
            if frames == 0:
                unplayable.append(sid)
                why[sid] = f"{codec}, {size} bytes, {duration} s: no frame decodes"
        except (OSError, av.error.FFmpegError) as exc:
            unplayable.append(sid)
            why[sid] = f"{codec}, {size} bytes, {duration} s: {exc}"
    return {"statuses": statuses, "unplayable": unplayable, "why": why}


def leftovers(data_dir: Path) -> list[dict[str, Any]]:
    """The live rows left after everyone left (for the report: what leaked, and whose)."""
    conn = sqlite3.connect(f"file:{data_dir / 'parlour.db'}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        queries = {
            "published_track": (
                "SELECT t.sid, t.kind, t.name, t.date_created, t.enabled, p.sid AS participant,"
                " p.status AS participant_status, p.end_time FROM published_tracks t"
                " JOIN participants p ON p.sid = t.participant_sid WHERE t.ended_at IS NULL"
            ),
            "subscribed_track": (
                "SELECT sid, kind, name, participant_sid, publisher_sid, date_created"
                " FROM subscribed_tracks WHERE ended_at IS NULL"
            ),
            "participant": (
                "SELECT sid, room_sid, status FROM participants WHERE status = 'connected'"
            ),
            "room": "SELECT sid, status FROM rooms WHERE status = 'in-progress'",
            "recording": (
                "SELECT r.sid, r.room_sid, r.source_sid, r.participant_sid, r.date_created,"
                " p.status AS"
                " participant_status FROM recordings r LEFT JOIN participants p"
                " ON p.sid = r.participant_sid WHERE r.status = 'processing'"
            ),
        }
        return [
            {"kind": kind, **dict(row)}
            for kind, sql in queries.items()
            for row in conn.execute(sql).fetchall()
        ]
    finally:
        conn.close()


def leftover_log(log: Path, rows: list[dict[str, Any]], limit: int = 400) -> list[str]:
    """The server's log lines about what was left over (its SIDs: the recording, its track
    and participant), to tell how it came to be left; at most ``limit`` lines."""
    ids = {
        str(row[key])
        for row in rows
        for key in ("sid", "source_sid", "participant_sid", "participant")
        if row.get(key)
    }
    if not ids or not log.exists():
        return []
    lines: list[str] = []
    with log.open(errors="replace") as f:
        for line in f:
            if any(i in line for i in ids):
                lines.append(line.rstrip()[:500])
                if len(lines) >= limit:
                    break
    return lines


def verdict(
    baseline: dict[str, float], final: dict[str, float], *, check_memory: bool = True
) -> list[str]:
    """What did not come back to its baseline (empty: nothing leaked)."""
    failures = []
    for key, slack in TOLERANCES.items():
        if key == "rss_mib" and not check_memory:
            continue
        if final[key] > baseline[key] + slack:
            failures.append(f"{key}: {baseline[key]:g} at baseline, {final[key]:g} at the end")
    return failures


def _slope_per_hour(samples: list[dict[str, Any]], key: str) -> float | None:
    points = [(s["t"], s["values"][key]) for s in samples if s["phase"] == "churn"]
    points = points[len(points) // 2 :]
    if len(points) < 3:
        return None
    xs, ys = zip(*points, strict=True)
    slope = statistics.linear_regression(xs, ys).slope
    return slope * 3600


# -- the run --------------------------------------------------------------------------------


async def soak(config: SoakConfig, progress: Callable[[str], None] = print) -> dict[str, Any]:
    # INFO: the lines about anything left over go with the results (`leftover_log`).
    server = ParlourServer(env=SERVER_ENV, log_level="info")
    await server.start()
    receiver = CallbackReceiver(server.auth_token)
    probe = Probe(server)
    media = EncodedLoop.build(seconds=2.0, width=320, height=180, video_kbps=300)
    samples: list[dict[str, Any]] = []
    started = time.monotonic()
    phase = "warmup"
    stop_sampling = asyncio.Event()

    async def sampler() -> None:
        while not stop_sampling.is_set():
            try:
                values = await probe.sample()
                samples.append({"t": time.monotonic() - started, "phase": phase, "values": values})
            except (OSError, httpx.HTTPError, sqlite3.Error) as exc:
                log.warning("sample failed: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop_sampling.wait(), config.sample_seconds)

    async def settle(limit: float, baseline: dict[str, float] | None = None) -> dict[str, float]:
        """Samples until the checked series are still for three samples in a row and, with
        a ``baseline``, back at it (what is still finishing, such as recordings completing
        after a mass leave, gets up to ``limit`` seconds; what leaked is still there then)."""
        deadline = time.monotonic() + limit
        last: list[dict[str, float]] = []
        while True:
            await asyncio.sleep(2.0)
            values = await probe.sample()
            samples.append({"t": time.monotonic() - started, "phase": phase, "values": values})
            last = [*last[-2:], values]
            quiet = values["sessions"] == 0 and values["webhook_pending"] == 0
            steady = len(last) == 3 and all(
                last[0][k] == v[k] for v in last[1:] for k in TOLERANCES if k != "rss_mib"
            )
            back = baseline is None or not verdict(baseline, values, check_memory=False)
            if (quiet and steady and back) or time.monotonic() > deadline:
                return values

    sampling = asyncio.create_task(sampler())
    churn = Churn(server, receiver, config, media)
    try:
        # The baseline is taken after a warm-up at full size: memory then holds what the
        # allocator and the caches keep for that many participants (the first 60-minute
        # run, warmed up with 3, put 54 MiB of that on the churn).
        progress(f"soak: warm-up ({config.warmup_seconds:g} s at full size), then the baseline")
        warm = Churn(
            server,
            receiver,
            SoakConfig(
                participants=config.participants,
                sdk_participants=config.sdk_participants,
                rooms=config.rooms,
                seed=config.seed + 1,
            ),
            media,
        )
        await warm.run(config.warmup_seconds)
        await warm.close()
        phase = "baseline"
        baseline = await settle(config.settle_limit_seconds)
        progress(f"soak: baseline {json.dumps({k: baseline[k] for k in TOLERANCES})}")
        phase = "churn"
        progress(f"soak: {config.minutes:g} minutes of churn, {config.participants} participants")
        await churn.run(config.minutes * 60)
        phase = "settle"
        progress("soak: everyone left; waiting for the timeouts")
        final = await settle(config.settle_limit_seconds, baseline)
        phase = "final"
        stop_sampling.set()
        await sampling
        recordings = await asyncio.to_thread(check_recordings, server.dir)
        failures = verdict(baseline, final, check_memory=config.check_memory)
        delivered = _db_counts(server.dir / "parlour.db")
        if receiver.invalid:
            failures.append(f"{receiver.invalid} callbacks with a bad signature")
        if delivered["db_callbacks_pending"]:
            failures.append(f"{delivered['db_callbacks_pending']:g} callbacks not delivered")
        if receiver.valid < delivered["db_callbacks"]:
            failures.append(
                f"{receiver.valid} callbacks received of {delivered['db_callbacks']:g} sent"
            )
        if recordings["unplayable"]:
            failures.append(f"unplayable recordings: {recordings['unplayable']}")
        if recordings["statuses"].get("failed"):
            failures.append(f"{recordings['statuses']['failed']} failed recordings")
        if churn.counters.joins == 0:
            failures.append("nobody joined: the churn did not run")
        left = await asyncio.to_thread(leftovers, server.dir)
        result = {
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(config).items()},
            "tolerances": TOLERANCES,
            "baseline": baseline,
            "final": final,
            "peak": {k: max(s["values"][k] for s in samples) for k in samples[0]["values"]},
            "rss_slope_mib_per_hour": _slope_per_hour(samples, "rss_mib"),
            "counters": vars(churn.counters),
            "callbacks": {
                "valid": receiver.valid,
                "invalid": receiver.invalid,
                "events": receiver.events,
            },  # fmt: skip
            "recordings": recordings,
            "leftovers": left,
            "leftover_log": await asyncio.to_thread(leftover_log, server.dir / "server.log", left),
            "failures": failures,
            "samples": samples,
        }
        if config.out is not None:
            write_results(result, config.out)
        return result
    finally:
        stop_sampling.set()
        if not sampling.done():
            sampling.cancel()
        await churn.close()
        await probe.close()
        receiver.close()
        await server.stop()


def write_results(result: dict[str, Any], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"{result['date'][:10]}-soak"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1))
    lines = [
        f"# Soak of {result['date']}",
        "",
        f"{result['config']['minutes']:g} minutes, seed {result['config']['seed']}, "
        f"{result['config']['participants']} participants "
        f"({result['config']['sdk_participants']} Python SDK, the rest lean endpoints).",
        "",
        "Verdict: " + ("**nothing leaked**" if not result["failures"] else "**FAILED**"),
        *(f"- {f}" for f in result["failures"]),
        "",
        "| series | baseline | peak | end | allowed |",
        "|---|---|---|---|---|",
    ]
    for key, slack in TOLERANCES.items():
        lines.append(
            f"| {key} | {result['baseline'][key]:g} | {result['peak'][key]:g} "
            f"| {result['final'][key]:g} | +{slack:g} |"
        )
    slope = result["rss_slope_mib_per_hour"]
    lines += [
        "",
        f"RSS trend over the second half of the churn: "
        f"{'n/a' if slope is None else f'{slope:+.1f} MiB/hour'}.",
        "",
        "Churn: " + ", ".join(f"{k} {v}" for k, v in result["counters"].items() if k != "errors"),
        f"Client-side errors (counted, not failures): {result['counters']['errors'] or 'none'}",
        f"Callbacks: {result['callbacks']['valid']} received with a valid signature, "
        f"{result['callbacks']['invalid']} invalid.",
        f"Recordings: {result['recordings']['statuses']}, "
        f"unplayable: {result['recordings']['unplayable'] or 'none'}.",
    ]
    if result.get("leftovers"):
        lines += ["", "## Left over", ""]
        lines += [f"- {json.dumps(row)}" for row in result["leftovers"]]
        if result.get("leftover_log"):
            lines += ["", "The server's log lines about them:", "", "```"]
            lines += result["leftover_log"]
            lines += ["```"]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    plot(result, stem.with_suffix(".png"))
    return stem


def plot(result: dict[str, Any], path: Path) -> None:
    from matplotlib.figure import Figure  # an Agg canvas of its own; no global state

    keys = [k for k in TOLERANCES if any(s["values"][k] for s in result["samples"])]
    keys += [k for k in GROWING if k in result["samples"][0]["values"]]
    cols = 3
    rows = (len(keys) + cols - 1) // cols
    fig = Figure(figsize=(cols * 4.2, rows * 2.4))
    axes = fig.subplots(rows, cols, squeeze=False)
    ts = [s["t"] / 60 for s in result["samples"]]
    churn = [s["t"] / 60 for s in result["samples"] if s["phase"] == "churn"]
    for ax, key in zip(axes.flat, keys, strict=False):
        ax.plot(ts, [s["values"][key] for s in result["samples"]], linewidth=1)
        if churn:
            ax.axvspan(churn[0], churn[-1], color="tab:orange", alpha=0.08)
        ax.axhline(result["baseline"][key], color="grey", linewidth=0.6, linestyle="--")
        ax.set_title(key, fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(keys) :]:
        ax.axis("off")
    fig.suptitle(
        f"Parlour soak {result['date']}: {result['config']['minutes']:g} min "
        "(shaded: churn; dashed: baseline; x: minutes)",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--minutes", type=float, default=float(os.environ.get("SOAK_MINUTES", 60)))
    parser.add_argument("--seed", type=int, default=int(os.environ.get("SOAK_SEED", 1)))
    parser.add_argument("--participants", type=int, default=20)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    config = SoakConfig(
        minutes=args.minutes, seed=args.seed, participants=args.participants, out=args.out
    )
    result = asyncio.run(soak(config))
    print("\n".join(result["failures"]) or "soak: nothing leaked")
    return 1 if result["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
