"""Helpers for recording integration tests: drive the recording seam the SFU will call
(`Recorder.track_published` → `TrackTap.feed`) on a real server, and receive callbacks."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

from twilio.request_validator import RequestValidator

from parlour.domain.ports import TrackTap
from parlour.domain.sids import AccountSid
from parlour.domain.tracks import TrackKind
from parlour.testing import ServerThread
from tests.recording_samples import Packet, encode_opus, encode_video, packetize


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


class Receiver:
    """A status callback endpoint on 127.0.0.1 that records form posts and checks
    `X-Twilio-Signature` with twilio's `RequestValidator`."""

    def __init__(self, auth_token: str) -> None:
        validator = RequestValidator(auth_token)
        self.received: list[tuple[dict[str, str], bool]] = []
        lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                params = dict(parse_qsl(self.rfile.read(length).decode(), keep_blank_values=True))
                url = f"http://{self.headers['Host']}{self.path}"
                valid = validator.validate(url, params, self.headers.get("X-Twilio-Signature", ""))
                with lock:
                    receiver.received.append((params, valid))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/cb"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    def events(self, prefix: str = "recording-") -> list[dict[str, str]]:
        return [p for p, _ in self.received if p["StatusCallbackEvent"].startswith(prefix)]
