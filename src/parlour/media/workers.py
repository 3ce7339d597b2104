"""The media plane in worker processes: `WorkerMediaPlane` implements the `MediaPlane` port in
the main process and runs the SFU in N processes, one per core (mediasoup's workers).

::

    main process (REST, signaling, webhooks)          worker i (python -m …worker_main)
    LiveRoomService ─► WorkerMediaPlane                 own uvloop, own UDP port (+ ICE-TCP)
                        ├── MediaWorker 0 ── channel ──► WorkerHost ─► SfuMediaPlane
                        │     RemoteSession (MediaSession proxy) ◄── state, events, packets
                        └── MediaWorker 1 ── channel ──► …

- **Placement.** A room is pinned to one worker while it has sessions there: the first
  session of a room goes to the worker with the fewest sessions (then rooms), and every
  later one follows it (`worker_of`). Subscriptions never cross workers.
- **Sessions.** `RemoteSession` sends each `MediaSession` call as a command (no await, in
  order; `client_description` waits for its reply) and answers the getters
  (`published_codec`, `published_bitrate`, `published_layers`, `downlink_estimate`,
  `link_reports`, `dominant_speaker`) from the `ipc.SessionState` the worker pushes with
  every reply, before every event and about every second when it changed.
- **Taps.** `attach_tap` keeps the tap here and tells the worker to forward the track's
  packets, which it does only while the tap is `active` (a recording or a transcription
  runs): the taps are looked at every `TAP_POLL` seconds and whenever a keyframe is asked
  for (a recording starting asks for one), so idle tracks cost no IPC.
- **Crashes.** A worker whose channel ends (killed, crashed) is restarted at once (after a
  growing delay if it keeps dying young). Each of its sessions is closed and its listener
  hears `media_failed` (the participant's signaling tells the SDK, which reconnects); its
  taps close; nothing else is disturbed. Its counters stay in `stats()`.
- **Stop.** `close()` closes every channel; a worker reads EOF, closes its peers and exits
  (and so does a worker whose main process died).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import logging
import os
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import parlour
from parlour.domain import errors
from parlour.domain.bandwidth import SimulcastLayer
from parlour.domain.ports import LinkReport, MediaListener, MediaSession, TrackDescriptor, TrackTap
from parlour.domain.sids import ParticipantSid, RoomSid, TrackSid
from parlour.media.ipc import Channel, Packet, ProtocolError, SessionState, parse_stats
from parlour.media.plane import MediaCounters, MediaStats

__all__ = [
    "MediaWorker",
    "RemoteSession",
    "WorkerMediaPlane",
    "WorkerSettings",
    "WorkerStartError",
]

log = logging.getLogger(__name__)

#: How often the main process looks whether each tap wants packets.
TAP_POLL = 0.1
#: Seconds a worker has to bind its sockets and say it is ready.
START_TIMEOUT = 30.0
#: Restart delays for a worker that keeps dying within `YOUNG` seconds of its start.
RESTART_DELAY_MIN, RESTART_DELAY_MAX, YOUNG = 0.1, 10.0, 5.0


@dataclass(frozen=True)
class WorkerSettings:
    """What every worker's `SfuMediaPlane.start` gets. With a fixed `port`, worker i binds
    `port + i` (UDP, and TCP for ICE-TCP); with 0 each picks a free port."""

    host: str = "127.0.0.1"
    port: int = 0
    advertised_host: str | None = None
    connect_timeout: float = 30.0
    consent_timeout: float = 30.0
    tcp: bool = False
    log_level: str = "info"

    def to_json(self) -> str:
        """The worker's `--settings` (`worker_main.serve` reads them)."""
        return json.dumps(dataclasses.asdict(self))


#: Where this process imported Parlour from. A source tree (a checkout) is put on the
#: worker's path, so that it runs the same code; an installed package is found as it is.
_SOURCE_ROOT = Path(parlour.__file__).resolve().parents[1]
_SOURCE_TREE = not _SOURCE_ROOT.is_relative_to(Path(sys.prefix).resolve())


def _spawn(index: int, sock: socket.socket, settings: WorkerSettings) -> subprocess.Popen[bytes]:
    """`python -m parlour.media.worker_main` with `sock` as its channel (fork and exec only:
    the worker binds its sockets on its own time and says when it is ready)."""
    env = dict(os.environ)
    if _SOURCE_TREE:
        path = (str(_SOURCE_ROOT), env.get("PYTHONPATH"))
        env["PYTHONPATH"] = os.pathsep.join(p for p in path if p)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "parlour.media.worker_main",
            "--fd",
            str(sock.fileno()),
            "--index",
            str(index),
            "--settings",
            settings.to_json(),
        ],
        pass_fds=(sock.fileno(),),
        env=env,
    )


class WorkerStartError(RuntimeError):
    """A worker could not start (its sockets could not be bound, or it never said ready)."""


class RemoteSession:
    """A `MediaSession` whose peer lives in a worker process (see the module docstring)."""

    def __init__(
        self,
        plane: WorkerMediaPlane,
        worker: MediaWorker | None,
        sid: int,
        room_sid: RoomSid,
        participant_sid: ParticipantSid,
        listener: MediaListener,
    ) -> None:
        self._plane = plane
        self.worker = worker
        self.sid = sid
        self.room_sid = room_sid
        self.participant_sid = participant_sid
        self.listener = listener
        self.state = SessionState()
        self._layers_sent: dict[str, list[int | None]] | None = None
        self.closed = False
        self._failed = False
        self._taps: dict[str, int] = {}  # track id → tap id

    # -- MediaSession ---------------------------------------------------------------------

    async def client_description(
        self, pc_id: str, kind: str, revision: int, sdp: str, track_ids: Sequence[str]
    ) -> str | None:
        if self.closed or self.worker is None:
            return None
        reply = await self.worker.call(
            {
                "op": "describe",
                "s": self.sid,
                "pc": pc_id,
                "kind": kind,
                "revision": revision,
                "sdp": sdp,
                "tracks": list(track_ids),
            }
        )
        if reply is None or self.closed:
            return None  # the worker died meanwhile: `media_failed` follows
        if "state" in reply:
            self.state = SessionState.parse(reply["state"])
        error = reply.get("error")
        if error == "description":
            raise errors.MediaDescriptionError()
        if error is not None:
            raise RuntimeError("the media worker failed to apply a description (see its log)")
        sdp_answer = reply.get("sdp")
        return None if sdp_answer is None else str(sdp_answer)

    def set_subscriptions(self, tracks: Sequence[TrackDescriptor]) -> None:
        self._send("subscribe", tracks=[[t.sid, t.id, t.kind, t.publisher_sid] for t in tracks])

    def published_codec(self, track_id: str) -> tuple[str, tuple[int, ...]] | None:
        return self.state.codecs.get(track_id)

    def attach_tap(self, track_id: str, tap: TrackTap) -> None:
        if self.closed or self.worker is None:
            tap.close()  # as a closed peer's producer would
            return
        tap_id = self.worker.add_tap(tap)
        self._taps[track_id] = tap_id
        self._send("tap", track=track_id, tap=tap_id)
        self.worker.poll_tap(tap_id)

    def request_keyframe(self, track_id: str) -> None:
        # A recording that starts asks for a keyframe: let the packets flow first.
        tap_id = self._taps.get(track_id)
        if tap_id is not None and self.worker is not None:
            self.worker.poll_tap(tap_id)
        self._send("keyframe", track=track_id)

    def published_bitrate(self, track_id: str) -> int:
        return self.state.bitrates.get(track_id, 0)

    def dominant_speaker(self) -> ParticipantSid | None:
        return self.state.dominant_speaker

    def published_layers(self, track_id: str) -> Sequence[SimulcastLayer]:
        return self.state.layers.get(track_id, ())

    def select_layers(self, layers: Mapping[str, tuple[int | None, int]]) -> None:
        # Asked every second per subscriber (the allocation): only changes cross the IPC.
        message = {k: list(v) for k, v in layers.items()}
        if message != self._layers_sent:
            self._layers_sent = message
            self._send("layers", layers=message)

    def downlink_estimate(self) -> tuple[int | None, bool]:
        return self.state.downlink

    def switch_off(self, track_ids: Collection[str]) -> None:
        self._send("switch_off", tracks=sorted(track_ids))

    def link_reports(self) -> Sequence[LinkReport]:
        return self.state.links

    def open_signaling_channel(self, label: str) -> None:
        self._send("channel", label=label)

    def send_signaling(self, label: str, message: str) -> None:
        self._send("signal", label=label, message=message)

    def close(self) -> None:
        if self.closed:
            return
        self._send("close")
        self._forget()

    # -- from the worker ------------------------------------------------------------------

    def event(self, name: str, msg: dict[str, Any]) -> None:
        """One event the worker sent about this session."""
        if self.closed:
            return
        listener = self.listener
        if name == "state":
            self.state = SessionState.parse(msg["state"])
        elif name == "offer":
            listener.send_offer(str(msg["pc"]), int(msg["revision"]), str(msg["sdp"]))
        elif name == "subscriptions":
            listener.subscriptions_changed([(TrackSid(s), str(i)) for s, i in msg["tracks"]])
        elif name == "speaker":
            speaker = msg["participant"]
            listener.dominant_speaker_changed(
                None if speaker is None else ParticipantSid(str(speaker))
            )
        elif name == "signaling":
            listener.signaling_message(str(msg["label"]), str(msg["message"]))
        elif name == "failed":
            self._fail(str(msg["reason"]))
        else:
            raise ProtocolError(f"unknown event {name!r}")

    def lost(self, reason: str) -> None:
        """The worker is gone: this session ends and its listener hears `media_failed`."""
        if self.closed:
            return
        self._forget()
        self._fail(reason)

    def _fail(self, reason: str) -> None:
        if not self._failed:
            self._failed = True
            self.listener.media_failed(reason)

    def _forget(self) -> None:
        self.closed = True
        if self.worker is not None:
            self.worker.forget(self)
        self._plane.forget(self)

    def _send(self, op: str, **fields: Any) -> None:
        if not self.closed and self.worker is not None:
            self.worker.send({"op": op, "s": self.sid, **fields})


@dataclass(eq=False)
class _Tap:
    tap: TrackTap
    active: bool = False  # what the worker was last told


class MediaWorker:
    """One worker process and its channel, restarted when it dies.

    Attributes:
        index: the worker's number (its port offset with a fixed media port).
        pid: the process id of the running incarnation (None between two).
        address, tcp_port: its SFU's ICE candidate address and ICE-TCP port.
        sessions: the live sessions it hosts, by session id.
        rooms: sessions per room pinned to it.
        restarts: how many times it was restarted after dying.
        exits: how many times it died unasked (killed, crashed).
    """

    def __init__(self, plane: WorkerMediaPlane, index: int) -> None:
        self._plane = plane
        self.index = index
        self.pid: int | None = None
        self.address: tuple[str, int] | None = None
        self.tcp_port: int | None = None
        self.sessions: dict[int, RemoteSession] = {}
        self.rooms: Counter[RoomSid] = Counter()
        self.restarts = 0
        self.exits = 0
        self.stats: MediaStats | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._channel: Channel | None = None
        self._ready: asyncio.Future[None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._calls: dict[int, asyncio.Future[dict[str, Any] | None]] = {}
        self._call_ids = itertools.count(1)
        self._taps: dict[int, _Tap] = {}
        self._tap_ids = itertools.count(1)
        self._started_at = 0.0
        self._was_ready = False
        self._delay = RESTART_DELAY_MIN

    @property
    def up(self) -> bool:
        """Whether sessions can be placed here (a channel is open)."""
        return self._channel is not None and not self._channel.closing

    async def start(self) -> None:
        """Spawn the process and wait until its sockets are bound.

        Raises:
            WorkerStartError: it could not bind them, or said nothing in time.
        """
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._proc = _spawn(self.index, theirs, self._plane.settings)
        finally:
            theirs.close()
        self.pid = self._proc.pid
        self._started_at = loop.time()
        self._was_ready = False
        self._channel = await Channel.open(ours)
        self._ready = loop.create_future()
        self._reader = asyncio.create_task(self._read(self._channel, self._proc))
        try:
            await asyncio.wait_for(asyncio.shield(self._ready), START_TIMEOUT)
        except TimeoutError:
            self._ready.cancel()
            self._channel.close()
            raise WorkerStartError(
                f"media worker {self.index} did not start within {START_TIMEOUT:.0f} s"
            ) from None

    def send(self, message: dict[str, Any]) -> None:
        if self._channel is not None:
            self._channel.send(message)

    async def call(self, message: dict[str, Any]) -> dict[str, Any] | None:
        """Send a command and wait for its reply; None if the worker died first."""
        if not self.up:
            return None
        call = next(self._call_ids)
        future: asyncio.Future[dict[str, Any] | None] = asyncio.get_running_loop().create_future()
        self._calls[call] = future
        self.send({**message, "call": call})
        try:
            return await future
        finally:
            self._calls.pop(call, None)

    def open(self, session: RemoteSession, codecs: Sequence[str]) -> None:
        self.sessions[session.sid] = session
        self.rooms[session.room_sid] += 1
        self.send(
            {
                "op": "open",
                "s": session.sid,
                "room": session.room_sid,
                "participant": session.participant_sid,
                "codecs": list(codecs),
            }
        )

    def forget(self, session: RemoteSession) -> None:
        """The session is closed: it no longer counts here, nor pins its room."""
        if self.sessions.pop(session.sid, None) is None:
            return
        self.rooms[session.room_sid] -= 1
        if self.rooms[session.room_sid] <= 0:
            del self.rooms[session.room_sid]

    def add_tap(self, tap: TrackTap) -> int:
        tap_id = next(self._tap_ids)
        self._taps[tap_id] = _Tap(tap)
        return tap_id

    def poll_tap(self, tap_id: int) -> None:
        """Tell the worker if the tap started or stopped wanting packets."""
        entry = self._taps.get(tap_id)
        if entry is None:
            return
        active = bool(entry.tap.active)
        if active != entry.active:
            entry.active = active
            self.send({"op": "tap_active", "tap": tap_id, "on": active})

    def poll_taps(self) -> None:
        for tap_id in list(self._taps):
            self.poll_tap(tap_id)

    async def close(self) -> None:
        """Close the channel and wait for the process to exit (killed after 5 s)."""
        if self._channel is not None:
            self._channel.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)

    # -- the channel ----------------------------------------------------------------------

    async def _read(self, channel: Channel, proc: subprocess.Popen[bytes]) -> None:
        reason = "media worker exited"
        try:
            while True:
                frame = await channel.receive()
                if isinstance(frame, Packet):
                    entry = self._taps.get(frame.tap)
                    if entry is not None:
                        entry.tap.feed(frame.data)
                else:
                    self._dispatch(frame)
        except EOFError:
            pass
        except (ProtocolError, KeyError, TypeError, ValueError) as exc:
            log.error("media worker %s: broken channel: %r", self.index, exc)
            reason = "media worker channel broken"
        finally:
            channel.close()
            restart = self._lost(channel, reason)
            await self._reap(proc)  # its ports are free again only then
            if restart and not self._plane.closing:
                self._plane.restart_later(self)

    def _dispatch(self, msg: dict[str, Any]) -> None:
        event = msg["ev"]
        if event == "reply":
            future = self._calls.get(int(msg["call"]))
            if future is not None and not future.done():
                future.set_result(msg)
        elif event == "stats":
            self.stats = parse_stats(msg["stats"])
        elif event == "tap_closed":
            entry = self._taps.pop(int(msg["tap"]), None)
            if entry is not None:
                entry.tap.close()
        elif event == "ready":
            udp = msg["udp"]
            self.address = (str(udp[0]), int(udp[1]))
            self.tcp_port = None if msg.get("tcp") is None else int(msg["tcp"])
            log.info(
                "media worker %s (pid %s) on udp %s:%s%s",
                self.index,
                msg.get("pid"),
                *self.address,
                "" if self.tcp_port is None else f", tcp {self.tcp_port}",
            )
            self._was_ready = True
            if self._ready is not None and not self._ready.done():
                self._ready.set_result(None)
        elif event == "error":
            error = WorkerStartError(
                f"media worker {self.index} cannot listen for media: {msg.get('message')}"
            )
            if self._ready is not None and not self._ready.done():
                self._ready.set_exception(error)
            else:
                log.error("%s", error)
        else:
            session = self.sessions.get(int(msg["s"]))
            if session is None:
                return
            try:
                session.event(event, msg)
            except ProtocolError:
                raise
            except Exception:  # the listener's: it must not cost the worker its channel
                log.exception(
                    "media worker %s: %s event of session %s", self.index, event, session.sid
                )

    async def _reap(self, proc: subprocess.Popen[bytes]) -> None:
        """Wait for the process to exit; kill it if it lingers with its channel closed."""
        try:
            await asyncio.to_thread(proc.wait, 5)
        except subprocess.TimeoutExpired:
            proc.kill()
            await asyncio.to_thread(proc.wait)
        if proc.returncode and not self._plane.closing:
            log.error(
                "media worker %s (pid %s) exited with %s", self.index, proc.pid, proc.returncode
            )

    def _lost(self, channel: Channel, reason: str) -> bool:
        """The incarnation on `channel` is gone: fail what it held. Returns whether to
        restart it (not a start that failed: its caller hears of it)."""
        if channel is not self._channel:
            return False
        self._channel = None
        self.pid = None
        if self.stats is not None:
            self._plane.ended.add(self.stats.counters)
            self.stats = None
        for future in self._calls.values():
            if not future.done():
                future.set_result(None)
        for session in list(self.sessions.values()):
            session.lost(reason)
        self.sessions.clear()
        self.rooms.clear()
        for entry in self._taps.values():
            entry.tap.close()
        self._taps.clear()
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(WorkerStartError(f"media worker {self.index} exited"))
        if self._was_ready and not self._plane.closing:
            self.exits += 1
        return self._was_ready

    def restart_delay(self) -> float:
        """No delay for a worker that ran a while; a growing one if it keeps dying young."""
        young = asyncio.get_running_loop().time() - self._started_at < YOUNG
        self._delay = min(self._delay * 2, RESTART_DELAY_MAX) if young else RESTART_DELAY_MIN
        return self._delay if young else 0.0


class WorkerMediaPlane:
    """The `MediaPlane` port over N worker processes (see the module docstring).

    Create it with `await WorkerMediaPlane.start(n, settings)`; `await close()` stops them.
    """

    def __init__(self, count: int, settings: WorkerSettings) -> None:
        if count < 1:
            raise ValueError("a worker media plane needs at least one worker")
        self.settings = settings
        self.workers = [MediaWorker(self, i) for i in range(count)]
        self.closing = False
        #: Counters of worker incarnations that died, so that totals never decrease.
        self.ended = MediaCounters()
        self._session_ids = itertools.count(1)
        self._by_participant: dict[ParticipantSid, RemoteSession] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._poller: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, count: int, settings: WorkerSettings) -> WorkerMediaPlane:
        """Spawn `count` workers and wait until each has bound its sockets.

        Raises:
            WorkerStartError: one could not start (the others are stopped again).
        """
        plane = cls(count, settings)
        results = await asyncio.gather(*(w.start() for w in plane.workers), return_exceptions=True)
        failure = next((r for r in results if isinstance(r, BaseException)), None)
        if failure is not None:
            await plane.close()
            raise failure
        plane._poller = asyncio.create_task(plane._poll_taps())
        return plane

    def open_session(
        self,
        room_sid: RoomSid,
        participant_sid: ParticipantSid,
        listener: MediaListener,
        video_codecs: Sequence[str],
    ) -> MediaSession:
        old = self._by_participant.get(participant_sid)
        if old is not None:
            old.close()  # first: it may unpin the room
        worker = self.worker_of(room_sid) or self._least_loaded()
        session = RemoteSession(
            self, worker, next(self._session_ids), room_sid, participant_sid, listener
        )
        self._by_participant[participant_sid] = session
        if worker is None:
            # Every worker is restarting: the participant hears it at once and reconnects.
            asyncio.get_running_loop().call_soon(session.lost, "no media worker is running")
        else:
            worker.open(session, video_codecs)
        return session

    def forget(self, session: RemoteSession) -> None:
        if self._by_participant.get(session.participant_sid) is session:
            del self._by_participant[session.participant_sid]

    def worker_of(self, room_sid: RoomSid) -> MediaWorker | None:
        """The worker a room is pinned to (None: it has no session on any worker)."""
        return next((w for w in self.workers if room_sid in w.rooms), None)

    def _least_loaded(self) -> MediaWorker | None:
        up = [w for w in self.workers if w.up]
        if not up:
            return None
        return min(up, key=lambda w: (len(w.sessions), len(w.rooms), w.index))

    def stats(self) -> MediaStats:
        """Every worker's last snapshot (at most a second old), added up; the counters of
        workers that died stay in the totals."""
        counters = MediaCounters()
        counters.add(self.ended)
        rooms = participants = 0
        published: Counter[str] = Counter()
        subscribed: Counter[str] = Counter()
        for worker in self.workers:
            stats = worker.stats
            if stats is None:
                continue
            counters.add(stats.counters)
            rooms += stats.rooms
            participants += stats.participants
            published.update(stats.published_tracks)
            subscribed.update(stats.subscribed_tracks)
        kinds = ("audio", "video", "data")
        return MediaStats(
            rooms=rooms,
            participants=participants,
            published_tracks={kind: published[kind] for kind in kinds},
            subscribed_tracks={kind: subscribed[kind] for kind in kinds},
            counters=counters,
        )

    def health(self) -> tuple[int, int]:
        """For `/metrics`: how many workers are up, and how many times one died unasked."""
        return sum(w.up for w in self.workers), sum(w.exits for w in self.workers)

    def restart_later(self, worker: MediaWorker) -> None:
        task = asyncio.get_running_loop().create_task(self._restart(worker))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _restart(self, worker: MediaWorker) -> None:
        delay = worker.restart_delay()
        log.warning("media worker %s died; restarting it in %.1f s", worker.index, delay)
        await asyncio.sleep(delay)
        if self.closing:
            return
        worker.restarts += 1
        try:
            await worker.start()
        except (WorkerStartError, OSError) as exc:
            log.error("media worker %s could not restart: %s", worker.index, exc)
            if not self.closing:
                self.restart_later(worker)

    async def _poll_taps(self) -> None:
        while True:
            await asyncio.sleep(TAP_POLL)
            for worker in self.workers:
                worker.poll_taps()

    async def close(self) -> None:
        """Stop every worker (each closes its peers and exits); idempotent."""
        self.closing = True
        tasks = [t for t in (self._poller, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for session in list(self._by_participant.values()):
            session.close()
        self._by_participant.clear()
        await asyncio.gather(*(w.close() for w in self.workers))
