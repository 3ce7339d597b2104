"""A media worker process: `python -m parlour.media.worker_main --fd N --index I --settings JSON`.

The main process (`workers.WorkerMediaPlane`) spawns one per core. Each runs its own uvloop
and an `SfuMediaPlane` with its own UDP socket (and ICE-TCP listener), and serves the
channel on file descriptor N (`ipc.Channel`)::

    main process                              this process
    RemoteSession ── open/describe/… ──────►  WorkerHost ──► SfuMediaPlane ──► Peer
                  ◄── reply, state, events ──   _Forwarder (MediaListener of each Peer)
    TrackTap      ◄── PACKET frames ────────    _RemoteTap (TrackTap of each tapped Producer)
    stats()       ◄── stats every second ───

Commands (main → worker), one JSON object each, `s` naming the session:
`open` (room, participant, codecs), `describe` (call, pc, kind, revision, sdp, tracks),
`subscribe` (tracks), `tap` (track, tap), `tap_active` (tap, on), `keyframe` (track),
`layers`, `switch_off` (tracks), `channel` (label), `signal` (label, message), `close`.
Events (worker → main): `ready` or `error` first; then `reply` (call, sdp, error, state),
`state`, `offer`, `subscriptions`, `speaker`, `signaling`, `failed`, `tap_closed`, `stats`.

The channel's end is the worker's end: when the main process closes it (or dies), the worker
closes its peers and exits, so no worker outlives its server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from parlour.domain import errors
from parlour.domain.ports import TrackDescriptor
from parlour.domain.sids import ParticipantSid, RoomSid, TrackSid
from parlour.media.ipc import Channel, Packet, ProtocolError, SessionState, stats_to_json
from parlour.media.peer import Peer
from parlour.media.plane import SfuMediaPlane

__all__ = ["STATE_INTERVAL", "STATS_INTERVAL", "WorkerHost", "main"]

log = logging.getLogger(__name__)

#: How often a session's state is pushed when it changed (bitrates move every second).
STATE_INTERVAL = 1.0
#: How often the worker's `SfuMediaPlane.stats()` is pushed for `/metrics`.
STATS_INTERVAL = 1.0


class _RemoteTap:
    """A tapped producer's `TrackTap` in the worker: packets go to the main process, but
    only while the main process says the tap is `active` (something records or
    transcribes the track); otherwise `feed` is one attribute read, as in-process."""

    __slots__ = ("_host", "active", "closed", "id")

    def __init__(self, host: WorkerHost, tap_id: int) -> None:
        self._host = host
        self.id = tap_id
        self.active = False
        self.closed = False

    def feed(self, packet: bytes) -> None:
        if self.active:
            self._host.channel.send_packet(self.id, packet)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._host.tap_closed(self)


class _Forwarder:
    """The `MediaListener` of one hosted peer: its events go to the main process, each
    after the session's state, so that the main process never answers a getter with state
    older than an event it has delivered."""

    def __init__(self, host: WorkerHost, sid: int) -> None:
        self._host = host
        self._sid = sid

    def send_offer(self, pc_id: str, revision: int, sdp: str) -> None:
        self._host.event(self._sid, "offer", pc=pc_id, revision=revision, sdp=sdp)

    def subscriptions_changed(self, subscribed: Sequence[tuple[TrackSid, str]]) -> None:
        self._host.event(self._sid, "subscriptions", tracks=[list(t) for t in subscribed])

    def dominant_speaker_changed(self, participant_sid: ParticipantSid | None) -> None:
        self._host.event(self._sid, "speaker", participant=participant_sid)

    def signaling_message(self, label: str, message: str) -> None:
        self._host.event(self._sid, "signaling", label=label, message=message)

    def media_failed(self, reason: str) -> None:
        self._host.event(self._sid, "failed", reason=reason)


@dataclass(eq=False)
class _Hosted:
    peer: Peer
    sent: dict[str, Any] | None = None  # the state last pushed


class WorkerHost:
    """Serves one channel with one `SfuMediaPlane`: the worker process's whole job."""

    def __init__(self, plane: SfuMediaPlane, channel: Channel) -> None:
        self.plane = plane
        self.channel = channel
        self._sessions: dict[int, _Hosted] = {}
        self._taps: dict[int, _RemoteTap] = {}

    async def serve(self) -> None:
        """Run commands until the main process closes the channel; then close every peer."""
        ticker = asyncio.create_task(self._tick())
        try:
            while True:
                try:
                    frame = await self.channel.receive()
                except EOFError:
                    return
                except ProtocolError as exc:
                    log.error("media worker: broken channel from the main process: %s", exc)
                    return
                if isinstance(frame, Packet):
                    log.warning("media worker: unexpected packet frame from the main process")
                    continue
                try:
                    await self._command(frame)
                except Exception:  # one bad command must not end every room of the worker
                    log.exception("media worker: command %r failed", frame.get("op"))
        finally:
            ticker.cancel()
            for hosted in list(self._sessions.values()):
                hosted.peer.close()
            self._sessions.clear()

    # -- commands -------------------------------------------------------------------------

    async def _command(self, msg: dict[str, Any]) -> None:
        op = msg["op"]
        if op == "tap_active":
            tap = self._taps.get(int(msg["tap"]))
            if tap is not None:
                tap.active = bool(msg["on"])
            return
        sid = int(msg["s"])
        if op == "open":
            peer = self.plane.open_session(
                RoomSid(str(msg["room"])),
                ParticipantSid(str(msg["participant"])),
                _Forwarder(self, sid),
                [str(c) for c in msg["codecs"]],
            )
            assert isinstance(peer, Peer)
            self._sessions[sid] = _Hosted(peer)
            return
        hosted = self._sessions.get(sid)
        if hosted is None:
            if op == "describe":  # closed meanwhile: the caller still waits for a reply
                self.channel.send({"ev": "reply", "call": msg["call"], "sdp": None})
            return
        peer = hosted.peer
        if op == "describe":
            await self._describe(sid, hosted, msg)
        elif op == "subscribe":
            peer.set_subscriptions(
                [
                    TrackDescriptor(TrackSid(s), str(i), str(k), ParticipantSid(p))
                    for s, i, k, p in msg["tracks"]
                ]
            )
        elif op == "tap":
            tap = self._taps[int(msg["tap"])] = _RemoteTap(self, int(msg["tap"]))
            peer.attach_tap(str(msg["track"]), tap)
        elif op == "keyframe":
            peer.request_keyframe(str(msg["track"]))
        elif op == "layers":
            peer.select_layers(
                {
                    str(k): (None if s is None else int(s), int(t))
                    for k, (s, t) in msg["layers"].items()
                }
            )
        elif op == "switch_off":
            peer.switch_off([str(t) for t in msg["tracks"]])
        elif op == "channel":
            peer.open_signaling_channel(str(msg["label"]))
        elif op == "signal":
            peer.send_signaling(str(msg["label"]), str(msg["message"]))
        elif op == "close":
            del self._sessions[sid]
            peer.close()
        else:
            raise ValueError(f"unknown op {op!r}")

    async def _describe(self, sid: int, hosted: _Hosted, msg: dict[str, Any]) -> None:
        reply: dict[str, Any] = {"ev": "reply", "call": msg["call"], "sdp": None}
        try:
            reply["sdp"] = await hosted.peer.client_description(
                str(msg["pc"]),
                str(msg["kind"]),
                int(msg["revision"]),
                str(msg["sdp"]),
                [str(t) for t in msg["tracks"]],
            )
        except errors.MediaDescriptionError:
            reply["error"] = "description"
        except Exception:
            log.exception("media worker: description of session %s failed", sid)
            reply["error"] = "internal"
        reply["state"] = hosted.sent = self._state(hosted.peer)
        self.channel.send(reply)

    # -- what goes back -------------------------------------------------------------------

    def event(self, sid: int, name: str, **fields: Any) -> None:
        """One event of a session, after its state if that changed."""
        hosted = self._sessions.get(sid)
        if hosted is None:
            return
        self._push_state(sid, hosted)
        self.channel.send({"ev": name, "s": sid, **fields})

    def tap_closed(self, tap: _RemoteTap) -> None:
        if self._taps.get(tap.id) is tap:
            del self._taps[tap.id]
        self.channel.send({"ev": "tap_closed", "tap": tap.id})

    def _push_state(self, sid: int, hosted: _Hosted) -> None:
        state = self._state(hosted.peer)
        if state != hosted.sent:
            hosted.sent = state
            self.channel.send({"ev": "state", "s": sid, "state": state})

    @staticmethod
    def _state(peer: Peer) -> dict[str, Any]:
        codecs = {}
        for track_id in peer.producers:
            negotiated = peer.published_codec(track_id)
            if negotiated is not None:
                codecs[track_id] = negotiated
        return SessionState(
            codecs=codecs,
            bitrates={t: peer.published_bitrate(t) for t in peer.producers},
            layers={t: tuple(peer.published_layers(t)) for t in peer.producers},
            downlink=peer.downlink_estimate(),
            links=tuple(peer.link_reports()),
            dominant_speaker=peer.dominant_speaker(),
        ).to_json()

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        next_stats = loop.time()
        while True:
            if loop.time() >= next_stats:
                next_stats += STATS_INTERVAL
                self.channel.send({"ev": "stats", "stats": stats_to_json(self.plane.stats())})
            for sid, hosted in list(self._sessions.items()):
                self._push_state(sid, hosted)
            await asyncio.sleep(STATE_INTERVAL)


async def serve(fd: int, index: int, settings: dict[str, Any]) -> int:
    """Bind the worker's SFU and serve the channel on `fd` until it closes."""
    channel = await Channel.open(socket.socket(fileno=fd))
    port = int(settings.get("port", 0))
    try:
        plane = await SfuMediaPlane.start(
            str(settings.get("host", "127.0.0.1")),
            port + index if port else 0,
            advertised_host=settings.get("advertised_host"),
            connect_timeout=float(settings.get("connect_timeout", 30.0)),
            consent_timeout=float(settings.get("consent_timeout", 30.0)),
            tcp=bool(settings.get("tcp", False)),
        )
    except OSError as exc:
        channel.send({"ev": "error", "message": f"{exc.strerror or exc}"})
        await channel.drain()
        channel.close()
        return 1
    channel.send(
        {
            "ev": "ready",
            "pid": os.getpid(),
            "udp": list(plane.socket.candidate_address),
            "tcp": plane.socket.tcp_port,
        }
    )
    try:
        await WorkerHost(plane, channel).serve()
    finally:
        plane.close()
        await plane.socket.wait_closed()
        await asyncio.sleep(0.05)  # the peers' DTLS shutdown tasks
        channel.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="parlour.media.worker_main")
    parser.add_argument("--fd", type=int, required=True, help="the channel's socket")
    parser.add_argument("--index", type=int, required=True, help="this worker's number")
    parser.add_argument("--settings", required=True, help="JSON: host, port, timeouts, tcp")
    args = parser.parse_args(argv)
    settings = json.loads(args.settings)
    logging.basicConfig(
        level=str(settings.get("log_level", "info")).upper(),
        format=f"%(asctime)s %(levelname)s media-worker-{args.index} %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Ctrl-C reaches the whole process group: the main process stops its workers itself
    # (by closing their channels), after its participants have left.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import uvloop

    return uvloop.run(serve(args.fd, args.index, settings))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
