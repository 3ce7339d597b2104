"""`make bench`: Parlour's SFU, Janus VideoRoom and mediasoup, side by side, with the same load.

    .venv/bin/python -m bench.run [--quick] [--servers parlour,janus,mediasoup] [--sizes 2,4,8,...]

For each server (started here, on loopback, with its own config) and each scenario and
room size, load-generator processes (`bench.loadgen`, separate from the server's processes)
join the participants with pre-encoded media, let the room settle, then measure a steady
window: the server's CPU seconds (its whole process tree, from /proc), what every subscriber
received (packets, bytes, loss from sequence gaps, keyframes, one-way delay from timestamps in
the payloads), the server's own egress counter (Parlour's /metrics), time from `connect()` to
the first keyframe, and server memory. Results go to `bench/results/<date>.json`, a Markdown
table and PNG plots; the last line printed is the headline (`bench.report.headline`), the
line before it Parlour beside mediasoup (`bench.report.mediasoup_line`). mediasoup
(`bench.mediasoup`: its Node adapter and the worker build of ../shared/peers/mediasoup/) is
skipped, with the reason printed and noted in the results, where it cannot run.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import datetime as dt
import json
import multiprocessing
import os
import platform
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench import loadgen, report
from bench.procstat import CLK_TCK, ProcessTree, read_stat
from bench.progress import Progress

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent

FULL_SIZES = (2, 4, 8, 12, 16, 20, 24, 28, 32)
QUICK_SIZES = (8,)
SIMULCAST_SIZES = (8, 16)  # simulcast meetings (not in quick runs)
AUDIO_ONLY = (4, 40)  # (audio publishers, room size)
BROADCAST = 33  # 1 publisher, 32 subscribers


RENDERS = tuple(loadgen.RENDER_SIZES)
SIMULCAST = ("simulcast", "simulcast_switching")
MEETINGS = ("meeting", *SIMULCAST)  # everyone publishes and subscribes
SWITCH_PERIOD = 2.0  # simulcast_switching: each subscriber changes render size this often
WORKER_MEETING = 16  # the media-worker scaling runs: one meeting of 16 per core, at once


@dataclass
class Case:
    scenario: str
    size: int
    publishers: int
    rooms: int = 1  # that many such rooms at once, each with its own load generators

    @property
    def subscribers(self) -> int:
        if self.scenario in MEETINGS:
            return self.size
        return self.size - self.publishers if self.scenario == "broadcast" else self.size

    def participants(self) -> list[dict[str, Any]]:
        out = []
        for i in range(self.size):
            if self.scenario in MEETINGS:
                publish, subscribe = "av", True
            elif self.scenario == "audio_only":
                publish, subscribe = ("audio" if i < self.publishers else ""), True
            else:  # broadcast
                publish, subscribe = ("av" if i < self.publishers else ""), i >= self.publishers
            spec = {
                "identity": f"{self.scenario[:1]}{self.size}-{i}",
                "publish": publish,
                "subscribe": subscribe,
                "expect_media": i >= self.publishers or (i > 0 and self.scenario in MEETINGS),
            }
            if self.scenario in SIMULCAST:  # render sizes mixed: a third each
                spec["render"] = RENDERS[i % len(RENDERS)]
            out.append(spec)
        return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while True:
            try:
                await client.get(url, timeout=2)
                return
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)


class ParlourServer:
    name = "parlour"

    def __init__(self, env: dict[str, str] | None = None, log_level: str = "warning") -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="parlour-bench-"))
        self.log_level = log_level
        self.port = _free_port()
        self.metrics_token = secrets.token_hex(16)
        self.proc: subprocess.Popen[bytes] | None = None
        self.creds: dict[str, str] = {}
        self.auth_token = ""
        self.env = env or {}

    def _cli(self, *args: str) -> Any:
        out = subprocess.run(
            [str(VENV_BIN / "parlour"), *args, "--data-dir", str(self.dir), "--json"],
            check=True,
            capture_output=True,
        )
        return json.loads(out.stdout)

    async def start(self) -> None:
        account = self._cli("account")
        key = self._cli("keys", "create")
        self.creds = {
            "account_sid": account.get("account_sid") or account.get("sid"),
            "key_sid": key.get("sid") or key.get("key_sid"),
            "key_secret": key["secret"],
        }
        self.auth_token = account.get("auth_token", "")
        # One process unless asked (PARLOUR_MEDIA_WORKERS=N): the figures stay comparable
        # with earlier runs; worker scaling is measured on its own.
        env = {"PARLOUR_MEDIA_WORKERS": "0", **os.environ}
        env.update(PARLOUR_METRICS_TOKEN=self.metrics_token, **self.env)
        self.log = open(self.dir / "server.log", "wb")
        self.proc = subprocess.Popen(
            [
                str(VENV_BIN / "parlour"),
                "serve",
                "--data-dir",
                str(self.dir),
                "--port",
                str(self.port),
                "--log-level",
                self.log_level,
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        await _wait_http(f"http://127.0.0.1:{self.port}/v1/Rooms")
        self.pid = self.proc.pid

    def loadgen_config(self, room: str) -> dict[str, Any]:
        return {
            "server": "parlour",
            "ws_url": f"ws://127.0.0.1:{self.port}/signaling",
            "creds": self.creds,
            "room": room,
        }

    async def egress_packets(self) -> int | None:
        try:
            async with httpx.AsyncClient() as client:
                r = await client.get(
                    f"http://127.0.0.1:{self.port}/metrics",
                    headers={"Authorization": f"Bearer {self.metrics_token}"},
                    timeout=5,
                )
        except httpx.HTTPError:
            return None
        if r.status_code != 200:
            return None
        return _metric_sum(r.text, EGRESS_METRIC)

    async def version(self) -> str:
        out = subprocess.run(
            [str(VENV_BIN / "parlour"), "--version"], capture_output=True, text=True
        )
        return out.stdout.strip()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "log", None) is not None:
            self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


EGRESS_METRIC = "parlour_rtp_sent_packets_total"


def _metric_sum(text: str, name: str) -> int | None:
    total = 0.0
    found = False
    pattern = re.compile(rf"^{re.escape(name)}(?:{{[^}}]*}})? ([0-9.eE+-]+)$", re.M)
    for match in pattern.finditer(text):
        total += float(match.group(1))
        found = True
    return int(total) if found else None


class JanusServerAdapter:
    name = "janus"

    def __init__(self) -> None:
        from bench.janus import JanusServer

        self.server = JanusServer()
        self.room_ids = iter(range(1000, 100000))

    async def start(self) -> None:
        await self.server.start()
        self.pid = self.server.pid

    def loadgen_config(self, room: str) -> dict[str, Any]:
        return {"server": "janus", "janus_url": self.server.url, "janus_room": next(self.room_ids)}

    async def egress_packets(self) -> int | None:
        return None

    async def version(self) -> str:
        out = subprocess.run(["janus", "--version"], capture_output=True, text=True)
        first = (out.stdout or out.stderr).strip().splitlines()
        return first[0] if first else "janus"

    async def stop(self) -> None:
        await self.server.stop()


class MediasoupServerAdapter:
    """mediasoup as mediasoup apps run it: one worker per core, a router per meeting."""

    name = "mediasoup"

    def __init__(self, workers: int | None = None) -> None:
        from bench.mediasoup import MediasoupServer

        self.server = MediasoupServer(workers=workers)
        self.control: Any = None

    async def start(self) -> None:
        from bench.mediasoup import MediasoupControl

        await self.server.start()
        self.pid = self.server.pid  # the Node process; its tree holds every worker
        self.control = await MediasoupControl.connect(self.server.port)

    def loadgen_config(self, room: str) -> dict[str, Any]:
        return {"server": "mediasoup", "mediasoup_port": self.server.port, "mediasoup_room": room}

    async def egress_packets(self) -> int | None:
        """RTP packets mediasoup's consumers have sent (their stats), as Parlour's counter."""
        from bench.mediasoup import MediasoupError

        try:
            reply = await self.control.request("egress")
        except (MediasoupError, OSError, TimeoutError):
            return None
        return int(reply["packets"])

    async def version(self) -> str:
        return f"{self.server.version} ({len(self.server.worker_pids)} workers)"

    async def stop(self) -> None:
        if self.control is not None:
            await self.control.close()
        await self.server.stop()


def make_server(name: str, args: argparse.Namespace) -> Any:
    if name == "parlour":
        return ParlourServer()
    if name == "janus":
        return JanusServerAdapter()
    if name == "mediasoup":
        return MediasoupServerAdapter(args.mediasoup_workers)
    raise ValueError(f"unknown server {name!r}: parlour, janus or mediasoup")


def skip_reason(name: str) -> str | None:
    """Why a server cannot run on this machine (only mediasoup's peer build may be absent)."""
    if name == "mediasoup":
        from bench import mediasoup

        return mediasoup.unavailable()
    return None


class LoadGen:
    """One load-generator process and its pipe."""

    def __init__(self, config: dict[str, Any]) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=loadgen.main, args=(child, config), daemon=True)
        self.proc.start()
        child.close()

    async def request(self, *command: Any, timeout: float = 120) -> Any:
        if command:
            self.conn.send(command)
        loop = asyncio.get_running_loop()
        ready = await loop.run_in_executor(None, self.conn.poll, timeout)
        if not ready:
            raise TimeoutError(f"load generator did not answer {command[:1]}")
        kind, value = self.conn.recv()
        if kind == "error":
            raise RuntimeError(f"load generator: {value}")
        return value

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.send(("stop",))
        await asyncio.get_running_loop().run_in_executor(None, self.proc.join, 10)
        if self.proc.is_alive():
            self.proc.kill()


MIN_SEND_RATIO = 0.97  # below this the load generator could not publish the nominal load
MAX_MACHINE_LOAD = 0.9  # server + load generator CPU above this share of all cores: saturated


def _saturation(result: dict[str, Any], wall: float) -> str | None:
    """Why a run measured the machine's limit rather than the server's, or None.

    Its figures are kept and shown (marked), but it counts neither for the headline nor for
    the largest meeting under 1 % loss.
    """
    ratio = result.get("send_ratio")
    if ratio is not None and ratio < MIN_SEND_RATIO:
        return f"the load generator published only {ratio:.0%} of the nominal packet rate"
    cores = os.cpu_count() or 1
    used = (result["server_cpu_s"] + result["loadgen_cpu_s"]) / wall
    if used > MAX_MACHINE_LOAD * cores:
        return f"server and load generator used {used:.2f} of the machine's {cores} cores"
    return None


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole > 0 else None


def _pct(values: list[float], p: float) -> float | None:
    return report.percentile(values, p) if values else None


async def run_case(
    server: Any, case: Case, args: argparse.Namespace, progress: Progress, index: int
) -> dict[str, Any]:
    room = f"bench-{case.scenario}-{case.size}-{index}"
    result: dict[str, Any] = {
        "server": server.name,
        "scenario": case.scenario,
        "size": case.size,
        "publishers": case.publishers,
        "subscribers": case.subscribers,
        "error": None,
    }
    if case.rooms > 1:
        result["rooms"] = case.rooms
    tree = ProcessTree(server.pid)
    rss_idle = tree.rss_bytes()
    gens: list[LoadGen] = []
    joins: list[tuple[LoadGen, dict[str, Any]]] = []  # in join order, room after room
    for r in range(case.rooms):
        config = server.loadgen_config(room if case.rooms == 1 else f"{room}-r{r}")
        config["loop"] = {"seconds": 4.0}
        if case.scenario in SIMULCAST:
            config["simulcast"] = simulcast_loops(args)
        participants = case.participants()
        if case.rooms > 1:
            for spec in participants:
                spec["identity"] = f"r{r}-{spec['identity']}"
        n = max(1, min(args.loadgen_procs, len(participants)))
        room_gens = [LoadGen(config) for _ in range(n)]
        gens += room_gens
        joins += [(room_gens[i % n], spec) for i, spec in enumerate(participants)]
    try:
        progress.status("starting load generators")
        await asyncio.gather(*(g.request(timeout=60) for g in gens))
        progress.status(f"joining {len(joins)} participants")
        errors: list[str] = []
        for gen, spec in joins:
            joined = await gen.request("join", [spec], timeout=60)
            errors.extend(joined["errors"])
        if errors:
            result["error"] = "; ".join(errors[:3])
        if case.scenario == "simulcast_switching":
            await asyncio.gather(*(g.request("switch", SWITCH_PERIOD) for g in gens))
        progress.status(f"warming up {args.warmup:.0f} s")
        await asyncio.sleep(args.warmup)
        lg_trees = [ProcessTree(g.proc.pid) for g in gens]
        cpu0 = tree.cpu_seconds()
        per_pid0 = _cpu_by_pid(tree)
        lg0 = sum(t.cpu_seconds() for t in lg_trees)
        egress0 = await server.egress_packets()
        await asyncio.gather(*(g.request("reset") for g in gens))
        t0 = time.monotonic()
        progress.status(f"measuring {args.duration:.0f} s")
        await asyncio.sleep(args.duration)
        reports = await asyncio.gather(*(g.request("report") for g in gens))
        t1 = time.monotonic()
        cpu1 = tree.cpu_seconds()
        per_pid1 = _cpu_by_pid(tree)
        lg1 = sum(t.cpu_seconds() for t in lg_trees)
        egress1 = await server.egress_packets()
        rss = tree.rss_bytes()
        wall = t1 - t0
        packets = sum(r["packets"] for r in reports)
        bytes_ = sum(r["bytes"] for r in reports)
        expected = sum(r["expected"] for r in reports)
        lost = sum(r["lost"] for r in reports)
        delays = [d / 1e6 for r in reports for d in r["delays_ns"]]
        join_ms = [j for r in reports for j in r["join_ms"]]
        no_media = [x for r in reports for x in r["no_media"]]
        render_bytes: dict[str, list[int]] = {}
        for r in reports:
            for size, (nbytes, nstreams) in r["render_bytes"].items():
                entry = render_bytes.setdefault(size, [0, 0])
                entry[0] += nbytes
                entry[1] += nstreams
        server_cpu = cpu1 - cpu0
        result.update(
            {
                "duration_s": wall,
                "server_cpu_s": server_cpu,
                "loadgen_cpu_s": lg1 - lg0,
                "egress_pkts": packets,
                "server_egress_pkts": (
                    egress1 - egress0 if egress0 is not None and egress1 is not None else None
                ),
                "egress_pkts_per_s": packets / wall,
                "egress_bits_per_s": bytes_ * 8 / wall,
                "egress_pkts_per_cpu_s": packets / server_cpu if server_cpu > 0 else None,
                "expected_pkts": expected,
                "lost_pkts": lost,
                "loss_pct": 100.0 * lost / expected if expected else None,
                "delay_ms_p50": _pct(delays, 50),
                "delay_ms_p99": _pct(delays, 99),
                "join_ms_p50": _pct(join_ms, 50),
                "join_ms_p95": _pct(join_ms, 95),
                # the busiest server process (one SFU worker, or the server itself): a figure
                # near 100 % means one core was that process's ceiling
                "server_busiest_cpu_pct": 100.0
                * max((per_pid1[p] - per_pid0.get(p, 0.0) for p in per_pid1), default=0.0)
                / wall,
                "server_rss_bytes": rss,
                "rss_per_participant_bytes": max(0, rss - rss_idle) / case.size,
                "keyframes": sum(r["keyframes"] for r in reports),
                "sent_pkts": sum(r["sent"] for r in reports),
                "send_ratio": _ratio(
                    sum(r["sent"] for r in reports), sum(r["nominal_sent"] for r in reports)
                ),
                "streams": sum(r["streams"] for r in reports),
            }
        )
        if case.scenario == "simulcast_switching":
            result["switches_per_s"] = sum(r["switches"] for r in reports) / wall
        elif render_bytes:
            # Video each render size received, per stream: the layer each server forwarded.
            result["render_kbps"] = {
                size: nbytes * 8 / wall / nstreams / 1000 if nstreams else None
                for size, (nbytes, nstreams) in render_bytes.items()
            }
        if no_media and not result["error"]:
            result["error"] = f"no media at {len(no_media)} subscribers"
        result["saturated"] = _saturation(result, wall)
        progress.log(
            f"{server.name} {case.scenario} size={case.size}: "
            f"{result['egress_pkts_per_s']:.0f} pkt/s, cpu {server_cpu / wall:.0%}, "
            f"{result['egress_pkts_per_cpu_s'] or 0:.0f} pkt/cpu-s, "
            f"loss {result['loss_pct'] or 0:.2f}%"
        )
        progress.status("leaving")
        await asyncio.gather(*(g.request("leave", timeout=60) for g in gens))
    except Exception as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
        progress.log(f"{server.name} {case.scenario} size={case.size} failed: {result['error']}")
    finally:
        await asyncio.gather(*(g.stop() for g in gens))
    await asyncio.sleep(1.0)
    return result


def _cpu_by_pid(tree: ProcessTree) -> dict[int, float]:
    """CPU seconds of each live process of the tree (children not reaped: their own)."""
    out: dict[int, float] = {}
    for pid in tree.pids():
        with contextlib.suppress(ProcessLookupError, FileNotFoundError):
            st = read_stat(pid)
            out[pid] = (st.utime + st.stime) / CLK_TCK
    return out


def worker_counts() -> list[int]:
    """The media-worker configurations measured: in the server process (0), one worker, and
    one per core."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return sorted({0, 1, max(1, cores or 1)})


async def run_workers(
    args: argparse.Namespace, progress: Progress
) -> tuple[list[dict[str, Any]], str]:
    """The same load (one meeting of `WORKER_MEETING` per core) on 0, 1 and N media workers."""
    counts = worker_counts()
    case = Case("meeting", WORKER_MEETING, WORKER_MEETING, rooms=max(counts))
    runs = []
    version = ""
    for i, workers in enumerate(counts):
        progress.step(f"parlour media workers={workers}: {case.rooms} meetings of {case.size}")
        server = ParlourServer(env={"PARLOUR_MEDIA_WORKERS": str(workers)})
        await server.start()
        try:
            version = version or await server.version()
            result = await run_case(server, case, args, progress, 100 + i)
        finally:
            await server.stop()
        result["media_workers"] = workers
        runs.append(result)
    return runs, version


def simulcast_loops(args: argparse.Namespace) -> list[str]:
    """The simulcast layers' encoded loops, made once per run (the same media for every
    server) in a directory removed at exit."""
    paths: list[str] | None = getattr(args, "simulcast_paths", None)
    if paths is None:
        directory = Path(tempfile.mkdtemp(prefix="parlour-bench-layers-"))
        atexit.register(shutil.rmtree, directory, True)
        paths = args.simulcast_paths = loadgen.build_layers(directory)
    return paths


def plan(args: argparse.Namespace) -> list[Case]:
    cases = [Case("meeting", size, size) for size in args.sizes]
    if not args.quick:
        if "audio_only" in args.scenarios:
            cases.append(Case("audio_only", AUDIO_ONLY[1], AUDIO_ONLY[0]))
        if "broadcast" in args.scenarios:
            cases.append(Case("broadcast", BROADCAST, 1))
        if "simulcast" in args.scenarios:
            cases += [Case("simulcast", size, size) for size in args.simulcast_sizes]
            cases += [Case("simulcast_switching", size, size) for size in args.simulcast_sizes]
    return cases


async def amain(args: argparse.Namespace) -> int:
    started_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    cases = plan(args)
    notes: list[str] = []
    servers = []
    for name in args.servers:
        reason = skip_reason(name)
        if reason is None:
            servers.append(name)
        else:
            print(f"skipping {name}: {reason}", flush=True)
            notes.append(f"{name} not measured: {reason}")
    measure_workers = "workers" in args.scenarios and "parlour" in servers
    progress = Progress(
        total_steps=len(cases) * len(servers) + (len(worker_counts()) if measure_workers else 0)
    )
    runs: list[dict[str, Any]] = []
    versions: dict[str, str] = {}
    for name in servers:
        server: Any = make_server(name, args)
        progress.log(f"starting {name}")
        try:
            await server.start()
        except Exception as exc:
            if name != "mediasoup":
                raise
            # A peer that does not start is reported, not fatal: Parlour and Janus still count.
            progress.log(f"mediasoup did not start: {exc}")
            notes.append(f"mediasoup not measured: it did not start ({_first_line(exc)})")
            continue
        versions[name] = await server.version()
        try:
            stop_growing = False
            for i, case in enumerate(cases):
                progress.step(f"{name} {case.scenario} size={case.size}")
                if stop_growing and case.scenario == "meeting":
                    runs.append(
                        {
                            "server": name,
                            "scenario": case.scenario,
                            "size": case.size,
                            "error": "skipped: a smaller meeting lost over 5% or saturated "
                            "the machine",
                        }
                    )
                    continue
                result = await run_case(server, case, args, progress, i)
                runs.append(result)
                if case.scenario == "meeting" and (
                    (result.get("loss_pct") or 0) > 5 or result.get("saturated")
                ):
                    stop_growing = True
        finally:
            await server.stop()
    worker_runs: list[dict[str, Any]] = []
    if measure_workers:
        worker_runs, _ = await run_workers(args, progress)
    progress.done()
    doc: dict[str, Any] = {
        "date": dt.date.today().isoformat(),
        "started_at": started_at,
        "machine": {
            "cpus": os.cpu_count(),
            "model": _cpu_model(),
            "python": platform.python_version(),
            "janus_version": versions.get("janus"),
            "parlour_version": versions.get("parlour"),
            "mediasoup_version": versions.get("mediasoup"),
        },
        "quick": args.quick,
        "settings": {
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "loadgen_procs": args.loadgen_procs,
        },
        "runs": runs,
        "workers": worker_runs,
        "notes": notes,
    }
    doc["max_meeting_under_1pct"] = {
        s: report.max_size_under(doc, s, "meeting", 1.0) for s in servers
    }
    paths = report.write_results(doc, Path(args.out))
    print(report.markdown(doc))
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    if worker_runs:
        print(report.workers_line(doc))
    print(report.mediasoup_line(doc))
    print(report.headline(doc))
    return 0


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one meeting size, every server")
    parser.add_argument(
        "--servers",
        default="parlour,janus,mediasoup",
        help="servers to measure, in order (mediasoup is skipped where it cannot run)",
    )
    parser.add_argument(
        "--mediasoup-workers",
        type=int,
        help="mediasoup workers (default: one per core, as mediasoup apps run it)",
    )
    parser.add_argument("--sizes", help="meeting sizes, e.g. 2,4,8")
    parser.add_argument(
        "--scenarios",
        default="meeting,audio_only,broadcast,simulcast,workers",
        help="meeting, audio_only, broadcast, simulcast (meetings of 8 and 16 publishing three "
        "VP8 layers, subscribers rendering small, medium or large; then the same with each "
        "subscriber changing size every 2 s; none of these in quick runs), workers (Parlour "
        "on 0, 1 and one media worker per core, a meeting of 16 per core)",
    )
    parser.add_argument(
        "--simulcast-sizes",
        default=",".join(map(str, SIMULCAST_SIZES)),
        help="sizes of the simulcast meetings (default %(default)s)",
    )
    parser.add_argument("--duration", type=float, help="steady window in seconds")
    parser.add_argument("--warmup", type=float, default=4.0)
    parser.add_argument("--loadgen-procs", type=int, default=1)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args(argv)
    args.servers = [s for s in args.servers.split(",") if s]
    unknown = sorted(set(args.servers) - {"parlour", "janus", "mediasoup"})
    if unknown:
        parser.error(f"unknown servers {', '.join(unknown)}: parlour, janus or mediasoup")
    if args.mediasoup_workers is not None and args.mediasoup_workers < 1:
        parser.error("--mediasoup-workers must be at least 1")
    args.scenarios = [s for s in args.scenarios.split(",") if s]
    args.simulcast_sizes = [int(s) for s in args.simulcast_sizes.split(",") if s]
    if args.sizes:
        args.sizes = [int(s) for s in args.sizes.split(",")]
    else:
        args.sizes = list(QUICK_SIZES if args.quick else FULL_SIZES)
    if args.duration is None:
        args.duration = 10.0 if args.quick else 15.0
    if "meeting" not in args.scenarios:
        args.sizes = []
    return asyncio.run(amain(args))


if __name__ == "__main__":
    sys.exit(main())
