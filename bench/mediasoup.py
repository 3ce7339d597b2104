"""mediasoup for the side-by-side benchmark: a throwaway server, its control channel, its SDP.

mediasoup is a library, not a server: an application (Node.js) creates workers (the C++
processes that forward media), routers, transports, producers and consumers, and does its own
signaling. `bench/mediasoup_adapter.mjs` is that application, as small as mediasoup apps
get: one worker per core, a router per meeting on the least loaded worker, WebRTC transports
on 127.0.0.1, producers and consumers on request. This module is the Python side:

- `MediasoupServer` starts the Node adapter (``MEDIASOUP_WORKER_BIN`` pointing at the worker
  build in ``../shared/peers/mediasoup/``, mediasoup's npm package from
  ``bench/mediasoup_node/node_modules``) and stops it; ``pid`` is the Node process, whose
  process tree holds every worker (what `bench.procstat.ProcessTree` measures).
- `MediasoupControl` speaks the adapter's JSON-lines protocol over its local TCP socket:
  requests with ids, and ``newProducer`` events pushed to every connection in the room.
- The ORTC ↔ SDP mapping the load generator's `LeanEndpoint` needs (it speaks SDP, mediasoup
  speaks parameters), done the way mediasoup-client's handlers do it: `producer_parameters`
  turns a section of the endpoint's offer into a producer's ``rtpParameters``;
  `publish_answer` is the answer the endpoint gets for its offer (mediasoup's ICE-lite
  candidates, its DTLS fingerprint, ``setup:passive``); `subscribe_offer` is the offer that
  describes a receive transport's consumers (``setup:actpass``; the endpoint answers
  ``active``). The endpoint's DTLS role is always client, so transports are connected with
  ``role: client`` and the endpoint's fingerprint before any media section is handed to it.

`unavailable` says why mediasoup cannot run here (no ``node``, no worker build, npm package not
installed), for the benchmark to skip it with that message.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import random
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parlour.media import sdp as sdplib

ROOT = Path(__file__).resolve().parent.parent
ADAPTER = ROOT / "bench" / "mediasoup_adapter.mjs"
NODE_PACKAGE_DIR = ROOT / "bench" / "mediasoup_node"
DEFAULT_WORKER_BIN = ROOT.parent / "shared" / "peers" / "mediasoup" / "mediasoup-worker"

Json = dict[str, Any]

#: What every load-generator endpoint can receive: the two codecs `bench.lean` offers, with
#: its payload types (the router's preferred ones too), no RTX and no header extensions.
RTP_CAPABILITIES: Json = {
    "codecs": [
        {
            "kind": "audio",
            "mimeType": "audio/opus",
            "preferredPayloadType": 111,
            "clockRate": 48000,
            "channels": 2,
            "parameters": {},
            "rtcpFeedback": [],
        },
        {
            "kind": "video",
            "mimeType": "video/VP8",
            "preferredPayloadType": 96,
            "clockRate": 90000,
            "parameters": {},
            "rtcpFeedback": [
                {"type": "nack", "parameter": ""},
                {"type": "nack", "parameter": "pli"},
                {"type": "ccm", "parameter": "fir"},
                {"type": "goog-remb", "parameter": ""},
            ],
        },
    ],
    "headerExtensions": [],
}


class MediasoupError(RuntimeError):
    """The adapter refused a request, exited, or could not be started."""


def worker_binary() -> Path:
    """The mediasoup worker build: ``MEDIASOUP_WORKER_BIN``, else the shared peer build."""
    configured = os.environ.get("MEDIASOUP_WORKER_BIN")
    return Path(configured) if configured else DEFAULT_WORKER_BIN


def node_modules() -> Path:
    """Where mediasoup's npm package is: ``MEDIASOUP_NODE_MODULES`` or bench/mediasoup_node."""
    configured = os.environ.get("MEDIASOUP_NODE_MODULES")
    return Path(configured) if configured else NODE_PACKAGE_DIR / "node_modules"


def unavailable() -> str | None:
    """Why mediasoup cannot run on this machine, or None when it can."""
    if shutil.which("node") is None:
        return "no `node` on PATH (mediasoup's control API is Node.js)"
    binary = worker_binary()
    if not binary.is_file() or not os.access(binary, os.X_OK):
        return (
            f"no mediasoup worker build at {binary} (the peer build of "
            "../shared/peers/mediasoup/, or set MEDIASOUP_WORKER_BIN)"
        )
    package = node_modules() / "mediasoup" / "package.json"
    if not package.is_file():
        return (
            f"mediasoup's npm package is not installed ({package} is missing): run "
            f"`npm ci --ignore-scripts` in {NODE_PACKAGE_DIR}"
        )
    return None


# -- the server -------------------------------------------------------------------------------


class MediasoupServer:
    """The Node adapter and its workers, for the duration of a benchmark.

    ``async with MediasoupServer(workers=2) as ms:`` or `start` / `stop`. ``port`` is the
    control socket on 127.0.0.1, ``pid`` the Node process (the workers are its children),
    ``worker_pids`` the workers, ``version`` mediasoup's.
    """

    def __init__(
        self, *, workers: int | None = None, startup_timeout: float = 20.0, log_level: str = "warn"
    ) -> None:
        self.workers = workers or os.cpu_count() or 1
        self.startup_timeout = startup_timeout
        self.log_level = log_level
        self.port = 0
        self.worker_pids: list[int] = []
        self.version = ""
        self._proc: asyncio.subprocess.Process | None = None
        self._dir: Path | None = None

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise MediasoupError("mediasoup is not running")
        return self._proc.pid

    @property
    def log_file(self) -> Path | None:
        return self._dir / "mediasoup.log" if self._dir else None

    def log_tail(self, lines: int = 30) -> str:
        path = self.log_file
        if path is None or not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    async def start(self) -> None:
        reason = unavailable()
        if reason is not None:
            raise MediasoupError(reason)
        node = shutil.which("node")
        assert node is not None
        self._dir = Path(tempfile.mkdtemp(prefix="mediasoup-bench-"))
        env = dict(
            os.environ,
            MEDIASOUP_WORKER_BIN=str(worker_binary()),
            MEDIASOUP_NODE_MODULES=str(node_modules()),
        )
        assert self.log_file is not None
        with self.log_file.open("wb") as log:
            self._proc = await asyncio.create_subprocess_exec(
                node,
                str(ADAPTER),
                "--workers",
                str(self.workers),
                "--log-level",
                self.log_level,
                stdin=subprocess.PIPE,  # the adapter exits when this closes
                stdout=subprocess.PIPE,
                stderr=log,
                env=env,
                cwd=self._dir,
                start_new_session=True,  # no terminal signals from the benchmark's console
            )
        assert self._proc.stdout is not None
        try:
            line = await asyncio.wait_for(self._proc.stdout.readline(), self.startup_timeout)
            ready = json.loads(line) if line else {}
        except (TimeoutError, ValueError):
            ready = {}
        if ready.get("event") != "ready":
            await self.stop()
            raise MediasoupError(f"the mediasoup adapter did not start\n{self.log_tail()}")
        self.port = int(ready["port"])
        self.worker_pids = [int(p) for p in ready["workers"]]
        self.version = str(ready.get("version", ""))

    async def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            if proc.stdin is not None:
                proc.stdin.close()  # the adapter closes its workers and exits
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        await self._reap_workers()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    async def _reap_workers(self, timeout: float = 5.0) -> None:
        """Wait until the workers have exited (the adapter closes them as it exits; they are
        then reparented and reaped); kill the ones still there after ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.worker_pids:
            self.worker_pids = [pid for pid in self.worker_pids if process_running(pid)]
            if not self.worker_pids:
                return
            if loop.time() > deadline:
                for pid in self.worker_pids:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, signal.SIGKILL)
                deadline = loop.time() + timeout
            await asyncio.sleep(0.05)

    async def __aenter__(self) -> MediasoupServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def process_running(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie waiting to be reaped does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3] != b"Z"


# -- the control channel ----------------------------------------------------------------------


class MediasoupControl:
    """One connection to the adapter: `request` and the events it pushes (``on_event``)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self.on_event: Callable[[Json], None] | None = None
        self._task = asyncio.get_running_loop().create_task(self._read_loop())

    @classmethod
    async def connect(cls, port: int, host: str = "127.0.0.1") -> MediasoupControl:
        reader, writer = await asyncio.open_connection(host, port, limit=1 << 22)
        return cls(reader, writer)

    async def request(self, method: str, timeout: float = 20.0, **params: Any) -> Json:
        """Call ``method``; returns its result or raises `MediasoupError` with its error."""
        if self._task.done():
            raise MediasoupError("the mediasoup control connection is closed")
        request_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        line = json.dumps({"id": request_id, "method": method, "params": params})
        self._writer.write(line.encode() + b"\n")
        try:
            await self._writer.drain()
            reply = await asyncio.wait_for(future, timeout)
        finally:
            self._pending.pop(request_id, None)
        if "error" in reply:
            raise MediasoupError(f"{method}: {reply['error']}")
        result: Json = reply.get("result") or {}
        return result

    async def _read_loop(self) -> None:
        try:
            while line := await self._reader.readline():
                with contextlib.suppress(ValueError):
                    message = json.loads(line)
                    if "event" in message:
                        if self.on_event is not None:
                            self.on_event(message)
                        continue
                    future = self._pending.get(message.get("id"))
                    if future is not None and not future.done():
                        future.set_result(message)
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(MediasoupError("the mediasoup adapter went away"))

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError, ConnectionError):
            await self._writer.wait_closed()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


# -- ORTC ↔ SDP ---------------------------------------------------------------------------------


def client_dtls_parameters(fingerprint: str) -> Json:
    """``transport.connect()``'s argument for an endpoint that is the DTLS client.

    ``fingerprint`` is ``"sha-256 AB:CD:…"`` (`Certificate.fingerprint`).
    """
    algorithm, _, value = fingerprint.partition(" ")
    return {"role": "client", "fingerprints": [{"algorithm": algorithm.lower(), "value": value}]}


def _codec_value(value: str | None) -> int | str:
    if value is not None and value.isdigit():
        return int(value)
    return value or ""


def producer_parameters(media: sdplib.MediaSection) -> Json:
    """A producer's ``rtpParameters`` from one section of the endpoint's offer: its mid, its
    (first) codec with its fmtp and rtcp-fb, its SSRC and CNAME; with an ``a=ssrc-group:SIM``,
    one encoding per simulcast layer (smallest first, as mediasoup-client sends them)."""
    if not media.codecs:
        raise ValueError(f"section {media.mid!r} has no codec")
    if not media.ssrc_ids:
        raise ValueError(f"section {media.mid!r} has no a=ssrc")
    codec = media.codecs[0]
    ssrc = media.ssrc_ids[0]
    feedback = []
    for line in codec.feedback:
        kind, _, parameter = line.partition(" ")
        feedback.append({"type": kind, "parameter": parameter})
    rtp_codec: Json = {
        "mimeType": f"{media.kind}/{codec.name}",
        "payloadType": codec.payload_type,
        "clockRate": codec.clock_rate,
        "parameters": {name: _codec_value(value) for name, value in codec.parameters},
        "rtcpFeedback": feedback,
    }
    if media.kind == "audio":
        rtp_codec["channels"] = codec.channels or 2
    return {
        "mid": media.mid,
        "codecs": [rtp_codec],
        "headerExtensions": [],
        "encodings": [{"ssrc": s} for s in _layers(media) or (ssrc,)],
        "rtcp": {"cname": media.ssrc_attribute(ssrc, "cname") or "", "reducedSize": True},
    }


def _layers(media: sdplib.MediaSection) -> tuple[int, ...]:
    for group in media.ssrc_groups:
        if group.semantics == "SIM":
            return tuple(group.ssrcs)
    return ()


@dataclass(frozen=True)
class TransportInfo:
    """What the endpoint must know of a mediasoup WebRTC transport (`createTransport`)."""

    id: str
    ufrag: str
    pwd: str
    candidates: tuple[tuple[str, int, int, str], ...]  # (address, port, priority, foundation)
    fingerprints: tuple[tuple[str, str], ...]  # (algorithm, value)

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> TransportInfo:
        ice = data["iceParameters"]
        candidates = tuple(
            (
                str(c.get("address") or c.get("ip")),
                int(c["port"]),
                int(c["priority"]),
                str(c["foundation"]),
            )
            for c in data["iceCandidates"]
            if str(c.get("protocol", "udp")).lower() == "udp"
        )
        fingerprints = tuple(
            (str(f["algorithm"]), str(f["value"])) for f in data["dtlsParameters"]["fingerprints"]
        )
        return cls(
            str(data["id"]), ice["usernameFragment"], ice["password"], candidates, fingerprints
        )

    def lines(self, setup: str) -> list[str]:
        """The transport lines of every media section (BUNDLE: all share one transport)."""
        out = ["c=IN IP4 127.0.0.1"]
        for address, port, priority, foundation in self.candidates:
            out.append(f"a=candidate:{foundation} 1 udp {priority} {address} {port} typ host")
        out += ["a=end-of-candidates", f"a=ice-ufrag:{self.ufrag}", f"a=ice-pwd:{self.pwd}"]
        # sha-256 only: what the endpoint checks, and what browsers use.
        for algorithm, value in self.fingerprints:
            if algorithm.lower() == "sha-256":
                out.append(f"a=fingerprint:{algorithm} {value}")
        out.append(f"a=setup:{setup}")
        return out


def _session(mids: Iterable[str]) -> list[str]:
    return [
        "v=0",
        f"o=mediasoup-bench {random.getrandbits(62)} 1 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=ice-lite",
        f"a=group:BUNDLE {' '.join(mids)}",
        "a=msid-semantic: WMS *",
    ]


def _codec_lines(codec: Mapping[str, Any]) -> list[str]:
    pt = int(codec["payloadType"])
    name = str(codec["mimeType"]).split("/", 1)[1]
    rtpmap = f"a=rtpmap:{pt} {name}/{codec['clockRate']}"
    if codec.get("channels"):
        rtpmap += f"/{codec['channels']}"
    out = [rtpmap]
    for fb in codec.get("rtcpFeedback") or []:
        parameter = fb.get("parameter") or ""
        out.append(f"a=rtcp-fb:{pt} {fb['type']}" + (f" {parameter}" if parameter else ""))
    parameters = codec.get("parameters") or {}
    if parameters:
        fmtp = ";".join(f"{k}={v}" for k, v in parameters.items())
        out.append(f"a=fmtp:{pt} {fmtp}")
    return out


def publish_answer(
    offer: sdplib.SessionDescription, transport: TransportInfo, produced: Mapping[str, Json]
) -> str:
    """mediasoup's answer to the endpoint's send-only offer: every section it produced
    (``produced``: mid → rtpParameters) received (``recvonly``), the rest rejected."""
    mids: list[str] = []
    lines: list[str] = []
    for media in offer.media:
        mid = media.mid or ""
        params = produced.get(mid)
        if params is None:
            lines += [f"m={media.kind} 0 {media.proto} {' '.join(media.formats)}", f"a=mid:{mid}"]
            continue
        codec = params["codecs"][0]
        mids.append(mid)
        lines += [
            f"m={media.kind} 9 UDP/TLS/RTP/SAVPF {codec['payloadType']}",
            *transport.lines("passive"),
            f"a=mid:{mid}",
            "a=recvonly",
            "a=rtcp-mux",
            "a=rtcp-rsize",
            *_codec_lines(codec),
        ]
    return "\r\n".join([*_session(mids), *lines]) + "\r\n"


@dataclass(frozen=True)
class ConsumerInfo:
    """A consumer as the subscriber's offer describes it."""

    id: str
    kind: str
    peer: str
    rtp_parameters: Json

    @property
    def mid(self) -> str:
        return str(self.rtp_parameters["mid"])

    @property
    def ssrc(self) -> int:
        return int(self.rtp_parameters["encodings"][0]["ssrc"])


def subscribe_offer(transport: TransportInfo, consumers: Iterable[ConsumerInfo]) -> str:
    """The offer describing every consumer of a receive transport, in the order they were
    made (a later offer repeats the earlier sections: m-lines are never removed)."""
    mids: list[str] = []
    lines: list[str] = []
    for consumer in consumers:
        params = consumer.rtp_parameters
        codec = params["codecs"][0]
        cname = (params.get("rtcp") or {}).get("cname") or consumer.peer
        stream = f"{consumer.peer}"
        mids.append(consumer.mid)
        lines += [
            f"m={consumer.kind} 9 UDP/TLS/RTP/SAVPF {codec['payloadType']}",
            *transport.lines("actpass"),
            f"a=mid:{consumer.mid}",
            "a=sendonly",
            f"a=msid:{stream} {consumer.id}",
            "a=rtcp-mux",
            "a=rtcp-rsize",
            *_codec_lines(codec),
            f"a=ssrc:{consumer.ssrc} cname:{cname}",
            f"a=ssrc:{consumer.ssrc} msid:{stream} {consumer.id}",
        ]
    return "\r\n".join([*_session(mids), *lines]) + "\r\n"
