"""Helpers for recording integration tests: drive the recording seam the SFU will call
(`Recorder.track_published` → `TrackTap.feed`) on a real server, and receive callbacks."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qsl

from twilio.request_validator import RequestValidator

from parlour.domain.ports import TrackTap
from parlour.domain.sids import AccountSid
from parlour.domain.tracks import TrackKind
from parlour.testing import ServerThread
from tests.recording_samples import Packet, encode_opus, encode_video, packetize

ROOT = Path(__file__).resolve().parents[2]


def kill_when_fed(script: str, *args: str, after: float, header: bool = False) -> tuple[str, float]:
    """Run `python -c script args…` at the repository's root: read its first line if it prints
    a `header`, then the seconds of media it reports fed, one a line, until `after`; then
    SIGKILL it (no cleanup, no trailer). Returns the header ("" without) and the last seconds
    read."""
    with subprocess.Popen(
        [sys.executable, "-c", script, *args], cwd=ROOT, stdout=subprocess.PIPE, text=True
    ) as child:
        assert child.stdout is not None
        try:
            first = child.stdout.readline() if header else ""
            fed = 0.0
            for line in child.stdout:
                fed = float(line)
                if fed >= after:
                    break
        finally:
            child.kill()
            child.wait(10)
    return first, fed


def recordings_service(server: ServerThread) -> Any:
    return server.parlour.asgi.state.api.recordings


@dataclass
class LiveTrack:
    participant_sid: str
    identity: str
    track_sid: str
    name: str
    codec: str
    tap: TrackTap | None


def publish(
    server: ServerThread, account_sid: str, room: str, identity: str, tracks: list[tuple[str, str]]
) -> list[LiveTrack]:
    """Join `identity` and publish (name, codec) tracks, handing each to the recorder the way
    the SFU's producer will."""

    async def go() -> list[LiveTrack]:
        p = server.parlour
        room_record = await p.rooms.get(AccountSid(account_sid), room)
        participant = await p.participants.join(room_record, identity)
        live = []
        for name, codec in tracks:
            kind = TrackKind.AUDIO if codec == "OPUS" else TrackKind.VIDEO
            track = await p.participants.publish(room_record, participant, name, kind)
            tap = await recordings_service(server).track_published(
                room_record, participant, track, codec.lower() if codec == "OPUS" else codec
            )
            live.append(LiveTrack(participant.sid, identity, track.sid, name, codec, tap))
        return live

    return server.call(go())


def media_packets(codec: str, seconds: float, *, ssrc: int) -> list[Packet]:
    if codec == "OPUS":
        return packetize("OPUS", encode_opus(seconds), ssrc=ssrc)
    return packetize(codec, encode_video(codec, int(seconds * 30), gop=30), ssrc=ssrc)


def feed(
    server: ServerThread, streams: list[tuple[TrackTap, list[Packet]]], *, realtime: bool = True
) -> None:
    """Feed every stream's packets on the server's loop, paced by media time."""
    timeline = sorted(
        ((p.media_time, i, p.data) for i, (_, packets) in enumerate(streams) for p in packets),
        key=lambda item: (item[0], item[1]),
    )

    async def go() -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for media_time, index, data in timeline:
            if realtime:
                delay = start + media_time - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            streams[index][0].feed(data)

    server.call(go(), timeout=120)


def wait_until(check: Callable[[], object], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


class LoopbackHttp:
    """An HTTP server on 127.0.0.1 in a thread (while used as a context manager) that passes
    every GET and POST to `handle`."""

    def __init__(self, handle: Callable[[BaseHTTPRequestHandler], None], port: int = 0) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                handle(self)

            def do_GET(self) -> None:
                handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)


class Receiver(LoopbackHttp):
    """A status callback endpoint on 127.0.0.1 that records form posts and checks
    `X-Twilio-Signature` with twilio's `RequestValidator`."""

    def __init__(self, auth_token: str) -> None:
        self._validator = RequestValidator(auth_token)
        self.received: list[tuple[dict[str, str], bool]] = []
        self._lock = threading.Lock()
        super().__init__(self._handle)
        self.url = f"http://127.0.0.1:{self.port}/cb"

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        params = dict(parse_qsl(handler.rfile.read(length).decode(), keep_blank_values=True))
        url = f"http://{handler.headers['Host']}{handler.path}"
        signature = handler.headers.get("X-Twilio-Signature", "")
        valid = self._validator.validate(url, params, signature)
        with self._lock:
            self.received.append((params, valid))
        handler.send_response(204)
        handler.end_headers()

    def events(self, prefix: str = "recording-") -> list[dict[str, str]]:
        return [p for p, _ in self.received if p["StatusCallbackEvent"].startswith(prefix)]
