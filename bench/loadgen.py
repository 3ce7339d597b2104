"""A load-generator process: joins participants to one room and reports what they received.

Started by `bench.run` with `multiprocessing` (spawn), separate from the server's processes,
and driven over a pipe with small commands:

    ("join", [participant, ...])  → ("joined", {"ok": n, "errors": [...]})
    ("switch", seconds)           → ("switching", None) simulcast: every subscriber changes
                                                        its render size every `seconds`
    ("reset",)                    → ("reset", None)     start of the steady window
    ("report",)                   → ("report", {...})   counts since the reset
    ("leave",)                    → ("left", None)
    ("stop",)                     → process exits

A participant is a dict: identity, publish ("av", "audio" or ""), subscribe (bool),
expect_media (bool: others already publish when it joins, so its join time is measured),
and optionally render ("small", "medium" or "large": the size it shows others' video at).
All media is pre-encoded once per process (`EncodedLoop`) and replayed; receivers never decode.

With ``config["simulcast"]`` (the layers' loops, `build_layers`) publishers send VP8
simulcast as Chrome does (three SSRCs in an ``a=ssrc-group:SIM``, `SIMULCAST_LAYERS`), and
each subscriber asks every server for the layer that fits its render size, the way an
application does on each: Parlour through the ``bandwidthProfile`` render dimensions of
`connect`, Janus with ``substream``, mediasoup with ``preferredLayers``. Reports then add
the video each render size received (`render_bytes`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bench.lean import LeanEndpoint, set_process_name
from bench.media_loop import EncodedLoop
from parlour.media.dtls import Certificate

log = logging.getLogger(__name__)

MAX_DELAY_SAMPLES = 40_000  # per process and report

#: Simulcast layers, smallest first: (width, height, kbps), Chrome's for a 720p camera.
SIMULCAST_LAYERS = ((320, 180, 150), (640, 360, 500), (1280, 720, 1500))
#: Render sizes of subscribers in a simulcast meeting → the layer that fits each.
RENDER_SIZES = {"small": (320, 180), "medium": (640, 360), "large": (1280, 720)}
RENDER_LAYER = {"small": 0, "medium": 1, "large": 2}


def render_profile(render: str) -> dict[str, Any]:
    """The ``bandwidth_profile`` twilio-video sends for ``bandwidthProfile: {video:
    {renderDimensions}}`` with every priority shown at this render size."""
    width, height = RENDER_SIZES[render]
    dims = {"width": width, "height": height}
    return {"video": {"render_dimensions": {p: dims for p in ("low", "standard", "high")}}}


@dataclass
class Participant:
    identity: str
    publish: str
    subscribe: bool
    expect_media: bool
    render: str | None = None  # simulcast: "small", "medium" or "large"
    endpoints: list[LeanEndpoint] = field(default_factory=list)
    connect_ns: int = 0
    joined_ns: int = 0
    room: Any = None  # parlour Room or janus session
    error: str | None = None

    def first_media_ns(self) -> int | None:
        """When the first video keyframe (or, with no video, the first audio) arrived."""
        video: list[int] = []
        audio: list[int] = []
        for endpoint in self.endpoints:
            for ssrc, stream in endpoint.stats.streams.items():
                kind = endpoint.stats.kinds.get(ssrc)
                summary = stream.summary()
                if kind == "video" and summary.get("first_keyframe_ns"):
                    video.append(summary["first_keyframe_ns"])
                elif kind == "audio" and summary.get("first_packet_ns"):
                    audio.append(summary["first_packet_ns"])
        if video:
            return min(video)
        return min(audio) if audio else None


async def open_publisher(
    p: Any,
    media: EncodedLoop,
    certificate: Certificate,
    send_audio: bool,
    send_video: bool,
    layers: tuple[EncodedLoop, ...] = (),
) -> LeanEndpoint:
    """A publishing endpoint of participant `p` (its video simulcast when ``layers``),
    opened and added to ``p.endpoints``."""
    endpoint = LeanEndpoint(
        media,
        certificate,
        send_audio=send_audio,
        send_video=send_video,
        simulcast=layers if send_video else (),
        label=p.identity,
    )
    await endpoint.open()
    p.endpoints.append(endpoint)
    return endpoint


def build_layers(
    directory: Path,
    seconds: float = 4.0,
    layers: tuple[tuple[int, int, int], ...] = SIMULCAST_LAYERS,
) -> list[str]:
    """Encode the loops of ``layers`` ((width, height, kbps), smallest first) into
    ``directory``; returns their paths. Once per
    benchmark run, so every server gets the same media. The realtime encoder misses its rate
    now and then on a busy machine (refused by `EncodedLoop.build`): a few seeds are tried."""
    paths: list[str] = []
    for width, height, kbps in layers:
        for seed in range(1, 5):
            try:
                loop = EncodedLoop.build(
                    seconds=seconds, width=width, height=height, video_kbps=kbps, seed=seed
                )
                break
            except RuntimeError:
                if seed == 4:
                    raise
        path = directory / f"layer-{width}x{height}.loop"
        loop.save(path)
        paths.append(str(path))
    return paths


class LoadGenerator:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.server = config["server"]
        self.participants: list[Participant] = []
        self.media: EncodedLoop | None = None
        self.layers: tuple[EncodedLoop, ...] = ()  # simulcast layers, smallest first
        self.certificate = Certificate.generate()
        self.janus: Any = None
        self.window_start = time.monotonic()
        self.switches = 0  # render-size changes asked since the reset
        self._switching: list[asyncio.Task[None]] = []

    async def setup(self) -> None:
        self.media = EncodedLoop.build(**self.config.get("loop", {}))
        # Simulcast: the layers' loops, encoded once by the orchestrator (`build_layers`).
        self.layers = tuple(EncodedLoop.load(path) for path in self.config.get("simulcast", ()))
        if self.server == "janus":
            from bench import janus_adapter

            self.janus = janus_adapter.JanusRoomClient(
                self.config["janus_url"], int(self.config["janus_room"])
            )
        elif self.server == "mediasoup":
            from bench import mediasoup_room

            self.janus = mediasoup_room.MediasoupRoomClient(
                int(self.config["mediasoup_port"]), str(self.config["mediasoup_room"])
            )

    async def join(self, specs: list[dict[str, Any]]) -> dict[str, Any]:
        """Join participants one after another (as people arrive in a meeting)."""
        errors: list[str] = []
        ok = 0
        for spec in specs:
            p = Participant(
                spec["identity"],
                spec["publish"],
                spec["subscribe"],
                spec["expect_media"],
                spec.get("render"),
            )
            self.participants.append(p)
            try:
                await self._join_one(p)
                ok += 1
            except Exception as exc:  # reported to the orchestrator
                p.error = f"{type(exc).__name__}: {exc}"
                errors.append(f"{p.identity}: {p.error}")
                log.debug("join failed: %s", traceback.format_exc())
        return {"ok": ok, "errors": errors}

    async def _join_one(self, p: Participant) -> None:
        assert self.media is not None
        p.connect_ns = time.monotonic_ns()
        send_audio = "a" in p.publish
        send_video = p.publish == "av"
        if self.server == "parlour":
            from bench import parlour_adapter

            endpoint = await open_publisher(
                p, self.media, self.certificate, send_audio, send_video, self.layers
            )
            creds = parlour_adapter.ParlourCredentials(**self.config["creds"])
            p.room = await parlour_adapter.join(
                self.config["ws_url"],
                creds,
                p.identity,
                self.config["room"],
                endpoint,
                subscribe=p.subscribe,
                bandwidth_profile=render_profile(p.render) if p.render else None,
            )
            await asyncio.wait_for(endpoint.dtls_connected.wait(), 20)
        else:
            await self.janus.join(
                p, self.media, self.certificate, send_audio, send_video, self.layers
            )
        p.joined_ns = time.monotonic_ns()

    def start_switching(self, period: float) -> None:
        """Every subscriber with a render size moves to the next one (small, medium, large,
        small…) every ``period`` seconds, staggered so that a third show each size at any
        time, as in the steady simulcast meeting."""
        viewers = [p for p in self.participants if p.render and p.error is None]
        for i, p in enumerate(viewers):
            delay = period * (i + 1) / (len(viewers) + 1)
            self._switching.append(asyncio.create_task(self._switch_loop(p, period, delay)))

    async def _switch_loop(self, p: Participant, period: float, delay: float) -> None:
        renders = list(RENDER_SIZES)
        await asyncio.sleep(delay)
        while True:
            assert p.render is not None
            p.render = renders[(renders.index(p.render) + 1) % len(renders)]
            try:
                if self.server == "parlour":
                    await p.room.set_bandwidth_profile(render_profile(p.render))
                else:
                    await self.janus.set_render(p, p.render)
                self.switches += 1
            except Exception:  # counted only when asked for; the next one tries again
                log.debug("switch failed: %s", traceback.format_exc())
            await asyncio.sleep(period)

    def reset(self) -> None:
        self.switches = 0
        self.window_start = time.monotonic()
        for p in self.participants:
            for endpoint in p.endpoints:
                for stream in endpoint.stats.streams.values():
                    stream.reset_window()
                endpoint.sent_packets = 0

    def report(self) -> dict[str, Any]:
        packets = bytes_ = expected = lost = keyframes = sent = 0
        delays: list[int] = []
        streams = 0
        render: dict[str, list[int]] = {}  # render size → [video bytes, video streams]
        joins: list[float] = []
        missing_media: list[str] = []
        for p in self.participants:
            got_any = False
            for endpoint in p.endpoints:
                sent += endpoint.sent_packets
                for stream in endpoint.stats.streams.values():
                    s = stream.summary()
                    streams += 1
                    packets += s["packets"]
                    bytes_ += s["bytes"]
                    expected += s["expected"]
                    lost += s["lost"]
                    keyframes += s.get("keyframes", 0)
                    if s["packets"]:
                        got_any = True
                    delays.extend(stream.delays_ns.tolist())
                    if p.render and stream.kind == "video":
                        entry = render.setdefault(p.render, [0, 0])
                        entry[0] += s["bytes"]
                        entry[1] += 1
            if p.subscribe and p.expect_media:
                first = p.first_media_ns()
                if first is not None:
                    joins.append((first - p.connect_ns) / 1e6)
            if p.subscribe and not got_any and p.error is None:
                missing_media.append(p.identity)
        if len(delays) > MAX_DELAY_SAMPLES:
            delays = random.sample(delays, MAX_DELAY_SAMPLES)
        return {
            "packets": packets,
            "bytes": bytes_,
            "expected": expected,
            "lost": lost,
            "keyframes": keyframes,
            "sent": sent,
            # What the publishers should have sent since the reset, by this process's clock.
            "nominal_sent": self._nominal_send_pps() * (time.monotonic() - self.window_start),
            "streams": streams,
            "render_bytes": render,
            "switches": self.switches,
            "delays_ns": delays,
            "join_ms": joins,
            "no_media": missing_media,
            "errors": [f"{p.identity}: {p.error}" for p in self.participants if p.error],
            "failed_transports": sum(
                1 for p in self.participants for e in p.endpoints if e.failed is not None
            ),
        }

    def _nominal_send_pps(self) -> float:
        """Packets per second the publishers of this process should send (the media loop's
        rates): what `sent` falls short of when this process cannot keep up."""
        assert self.media is not None
        video = self.media.video_packets_per_second()
        if self.layers:
            video = sum(layer.video_packets_per_second() for layer in self.layers)
        audio = 1e9 / 20_000_000  # one Opus packet per 20 ms
        total = 0.0
        for p in self.participants:
            if p.error is None and p.publish:
                total += audio + (video if p.publish == "av" else 0.0)
        return total

    async def leave(self) -> None:
        for task in self._switching:
            task.cancel()
        self._switching.clear()
        for p in self.participants:
            with contextlib.suppress(Exception):
                if self.server == "parlour" and p.room is not None:
                    await asyncio.wait_for(p.room.disconnect(), 5)
                elif self.janus is not None:
                    await asyncio.wait_for(self.janus.leave(p), 5)
            for endpoint in p.endpoints:
                endpoint.close()
        self.participants.clear()


def main(conn: Connection, config: dict[str, Any]) -> None:
    """Process entry point (multiprocessing target)."""
    set_process_name("parlour-loadgen")
    logging.basicConfig(level=logging.WARNING)
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    asyncio.run(_serve(conn, config))


async def _serve(conn: Connection, config: dict[str, Any]) -> None:
    loop = asyncio.get_running_loop()
    commands: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()

    def reader() -> None:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                message = ("stop",)
            loop.call_soon_threadsafe(commands.put_nowait, message)
            if message[0] == "stop":
                return

    threading.Thread(target=reader, daemon=True).start()
    gen = LoadGenerator(config)
    try:
        await gen.setup()
        conn.send(("ready", None))
    except Exception as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    while True:
        command = await commands.get()
        name = command[0]
        try:
            if name == "join":
                conn.send(("joined", await gen.join(command[1])))
            elif name == "switch":
                gen.start_switching(float(command[1]))
                conn.send(("switching", None))
            elif name == "reset":
                gen.reset()
                conn.send(("reset", None))
            elif name == "report":
                conn.send(("report", gen.report()))
            elif name == "leave":
                await gen.leave()
                conn.send(("left", None))
            elif name == "stop":
                await gen.leave()
                if gen.janus is not None:
                    await gen.janus.close()
                return
        except Exception as exc:
            conn.send(("error", f"{name}: {type(exc).__name__}: {exc}"))
