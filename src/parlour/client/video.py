"""The Python SDK's room client: joins rooms over the same signaling protocol as twilio-video.

It speaks TCMP + RSP v2 (`parlour.protocol.signaling`) over a WebSocket, keeps the room's
participants and track publications up to date from the server's revisioned state, resumes
the session (`sync`) when the socket drops, and reports everything as `RoomEvent`s.

Media (audio, video and data over WebRTC) is added by the media plane work; this module
already carries the participant and track-publication state that media hangs off.

Example::

    room = await connect("ws://127.0.0.1:8080/signaling", token, name="DailyStandup")
    await room.publish_track(LocalTrackInfo(name="chat", kind="data"))
    event = await room.next_event()
    await room.disconnect()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import cast

import websockets
from websockets.asyncio.client import ClientConnection

from parlour.protocol import signaling as sig

__all__ = [
    "LocalTrackInfo",
    "RemoteParticipant",
    "RemoteTrackPublication",
    "Room",
    "RoomEvent",
    "SignalingClientError",
    "connect",
]

log = logging.getLogger(__name__)


class SignalingClientError(Exception):
    """The server refused or ended the session with a Twilio error code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class LocalTrackInfo:
    """A track this participant publishes (`id` is its on-the-wire identity)."""

    name: str
    kind: str
    enabled: bool = True
    priority: str = "standard"
    id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def state(self) -> sig.LocalTrackState:
        return sig.LocalTrackState(
            id=self.id,
            kind=sig.TrackKind(self.kind),
            name=self.name,
            enabled=self.enabled,
            priority=sig.TrackPriority(self.priority),
        )


@dataclass
class RemoteTrackPublication:
    sid: str
    name: str
    kind: str
    enabled: bool
    priority: str


@dataclass
class RemoteParticipant:
    sid: str
    identity: str
    state: str
    revision: int
    tracks: dict[str, RemoteTrackPublication] = field(default_factory=dict)


@dataclass(frozen=True)
class RoomEvent:
    """What happened, named like twilio-video's events.

    `participantConnected`, `participantDisconnected`, `participantReconnecting`,
    `participantReconnected`, `trackPublished`, `trackUnpublished`, `trackEnabled`,
    `trackDisabled`, `localTrackPublished`, `localTrackPublicationFailed`, `reconnecting`,
    `reconnected`, `disconnected`.
    """

    name: str
    participant: RemoteParticipant | None = None
    track: RemoteTrackPublication | None = None
    track_id: str | None = None
    error: SignalingClientError | None = None


class Room:
    """A connected room. Create it with `connect`."""

    def __init__(self, url: str, token: str, heartbeat_ms: int) -> None:
        self._url = url
        self._token = token
        self._heartbeat_ms = heartbeat_ms
        self.sid = ""
        self.name = ""
        self.local_sid = ""
        self.local_identity = ""
        self.state = "connecting"
        self.session = ""
        self.session_timeout = 30.0
        self.participants: dict[str, RemoteParticipant] = {}
        self.local_tracks: dict[str, LocalTrackInfo] = {}
        self.published: dict[str, str] = {}  # track id -> MT sid
        self.failed: dict[str, SignalingClientError] = {}
        self.subscribed: dict[str, str] = {}  # remote track SID -> on-the-wire id
        self.subscribe_all = True
        self._subscribed_revision = 0
        self._revision = 1
        self._published_revision = 0
        self._events: asyncio.Queue[RoomEvent] = asyncio.Queue()
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._connected: asyncio.Future[sig.Connected | sig.Synced] | None = None
        self._changed = asyncio.Event()
        self.disconnect_error: SignalingClientError | None = None

    # -- public API -----------------------------------------------------------------------

    async def next_event(self, within: float = 10.0) -> RoomEvent:
        """The next event, waiting at most `within` seconds."""
        return await asyncio.wait_for(self._events.get(), within)

    async def wait_for(self, check: Callable[[], bool], within: float = 10.0) -> None:
        """Wait until `check()` holds, re-checking whenever room state changes."""
        async with asyncio.timeout(within):
            while not check():
                self._changed.clear()
                await self._changed.wait()

    async def publish_track(self, track: LocalTrackInfo) -> None:
        self.local_tracks[track.id] = track
        await self._send_state()

    async def unpublish_track(self, track_id: str) -> None:
        self.local_tracks.pop(track_id, None)
        self.published.pop(track_id, None)
        await self._send_state()

    async def set_track_enabled(self, track_id: str, enabled: bool) -> None:
        self.local_tracks[track_id] = replace(self.local_tracks[track_id], enabled=enabled)
        await self._send_state()

    async def disconnect(self) -> None:
        """Leave the room: `disconnect`, `bye`, close 1000."""
        if self.state == "disconnected":
            return
        self.state = "disconnected"
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(Exception):
                await self._send_msg(sig.Disconnect(session=self.session))
                await ws.send(sig.encode_message(sig.Bye()))
                await ws.close(1000)
        await self._stop_tasks()
        self._emit(RoomEvent("disconnected"))

    async def drop_connection(self) -> None:
        """Cut the signaling socket without leaving (tests use it to simulate a network blip)."""
        if self._ws is not None:
            await self._ws.close(4000)

    # -- connection -----------------------------------------------------------------------

    async def _open(self, body: sig.Ice | sig.Connect | sig.Sync) -> sig.Connected | sig.Synced:
        ws = await websockets.connect(self._url, open_timeout=15, max_size=4 * 1024 * 1024)
        self._ws = ws
        hello = sig.Hello(id=str(uuid.uuid4()), timeout=self._heartbeat_ms, body=body)
        await ws.send(sig.encode_message(hello))
        self._connected = asyncio.get_running_loop().create_future()
        self._reader = asyncio.create_task(self._read_loop(ws))
        return await asyncio.wait_for(self._connected, 30)

    def _connect_message(self, name: str | None) -> sig.Connect:
        return sig.Connect(
            token=self._token,
            name=name,
            participant=self._local_state(),
            ice_servers="acquire",
            publisher=sig.Publisher(name="parlour-python", sdk_version="0.1.0"),
            media_signaling={},
            subscribe=sig.Subscriptions(
                rules=(
                    sig.SubscribeRule(
                        type="include" if self.subscribe_all else "exclude", all=True
                    ),
                )
            ),
            format="unified",
        )

    def _local_state(self) -> sig.LocalParticipantState:
        return sig.LocalParticipantState(
            revision=self._revision, tracks=tuple(t.state() for t in self.local_tracks.values())
        )

    async def _send_state(self) -> None:
        self._revision += 1
        if self.state == "connected":
            await self._send_msg(
                sig.ClientUpdate(session=self.session, participant=self._local_state())
            )

    async def _send_msg(self, body: sig.ClientRspMessage) -> None:
        if self._ws is not None:
            await self._ws.send(sig.encode_message(sig.Msg(body=body)))

    async def _read_loop(self, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                try:
                    frame = sig.parse_message(raw, sender="server")
                except sig.UnknownMessageTypeError:
                    continue
                if isinstance(frame, sig.Welcome):
                    self._heartbeat_ms = frame.negotiated_timeout
                    if self._heartbeat is None:
                        self._heartbeat = asyncio.create_task(self._heartbeat_loop())
                elif isinstance(frame, sig.Msg):
                    await self._handle(cast(sig.ServerRspMessage, frame.body))
        except websockets.ConnectionClosed:
            pass
        except sig.SignalingProtocolError as exc:
            log.warning("invalid frame from server: %s", exc)
        finally:
            if self._ws is ws:
                await self._connection_closed(ws)

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(max(0.1, (self._heartbeat_ms - 200) / 1000))
            if self._ws is not None:
                with contextlib.suppress(Exception):
                    await self._ws.send(sig.encode_message(sig.Heartbeat()))

    async def _connection_closed(self, ws: ClientConnection) -> None:
        code = ws.close_code
        if self._connected is not None and not self._connected.done():
            self._connected.set_exception(
                self.disconnect_error or SignalingClientError(53000, "Signaling connection error")
            )
            return
        if self.state != "connected":
            return
        if code == 1000 or self.disconnect_error is not None:
            self.state = "disconnected"
            self._emit(RoomEvent("disconnected", error=self.disconnect_error))
            return
        self.state = "reconnecting"
        self._emit(RoomEvent("reconnecting"))
        asyncio.get_running_loop().create_task(self._resume())

    async def _resume(self) -> None:
        deadline = asyncio.get_running_loop().time() + self.session_timeout
        delay = 0.08
        while asyncio.get_running_loop().time() < deadline and self.state == "reconnecting":
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 2.0)
            sync = sig.Sync(
                session=self.session, token=self._token, participant=self._local_state()
            )
            try:
                await self._open(sync)
            except (OSError, SignalingClientError, TimeoutError, websockets.WebSocketException):
                if self.disconnect_error is not None:
                    break
                continue
            self.state = "connected"
            self._emit(RoomEvent("reconnected"))
            return
        self.state = "disconnected"
        self._emit(RoomEvent("disconnected", error=self.disconnect_error))

    async def _stop_tasks(self) -> None:
        """Stop the heartbeat; let the reader end with its (closed) socket."""
        heartbeat, reader = self._heartbeat, self._reader
        self._heartbeat = self._reader = None
        if heartbeat is not None:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await heartbeat
        if reader is not None and reader is not asyncio.current_task():
            if self._ws is not None:
                with contextlib.suppress(Exception):
                    await self._ws.close()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(reader, 5)

    # -- messages -------------------------------------------------------------------------

    async def _handle(self, body: sig.ServerRspMessage) -> None:
        if isinstance(body, sig.Iced):
            await self._send_msg(self._connect_message(self.name or None))
        elif isinstance(body, sig.Connected):
            self.sid, self.name, self.session = body.sid, body.name, body.session
            self.local_sid, self.local_identity = body.participant.sid, body.participant.identity
            self.session_timeout = body.options.session_timeout
            self.state = "connected"
            self._apply(body.participants or (), body.published, body.subscribed)
            if self._connected is not None and not self._connected.done():
                self._connected.set_result(body)
        elif isinstance(body, sig.Synced):
            present = {p.sid for p in body.participants or ()}
            for sid in [s for s in self.participants if s not in present]:
                self._emit(RoomEvent("participantDisconnected", self.participants.pop(sid)))
            self._apply(body.participants or (), body.published, body.subscribed)
            if self._connected is not None and not self._connected.done():
                self._connected.set_result(body)
        elif isinstance(body, sig.ServerUpdate):
            self._apply(body.participants or (), body.published, body.subscribed)
        elif isinstance(body, sig.Disconnected):
            if body.status == "completed":
                self.disconnect_error = SignalingClientError(53118, "Room completed")
            self.state = (
                "disconnected" if self._connected and self._connected.done() else self.state
            )
            self._emit(RoomEvent("disconnected", error=self.disconnect_error))
        elif isinstance(body, sig.ErrorMessage):
            error = SignalingClientError(body.code, body.message)
            self.disconnect_error = error
            if self._connected is not None and not self._connected.done():
                self._connected.set_exception(error)
            elif self.state != "disconnected":
                self.state = "disconnected"
                self._emit(RoomEvent("disconnected", error=error))
        self._changed.set()

    def _apply(
        self,
        states: tuple[sig.RemoteParticipantState, ...],
        published: sig.Published | None,
        subscribed: sig.Subscribed | None = None,
    ) -> None:
        if subscribed is not None and subscribed.revision > self._subscribed_revision:
            self._subscribed_revision = subscribed.revision
            self.subscribed = {t.sid: t.id for t in subscribed.tracks if t.id is not None}
        for state in states:
            if state.sid == self.local_sid:
                continue
            self._apply_participant(state)
        if published is not None and published.revision > self._published_revision:
            self._published_revision = published.revision
            for ack in published.tracks:
                if ack.state is sig.PublishedTrackState.READY and ack.sid:
                    if self.published.get(ack.id) != ack.sid:
                        self.published[ack.id] = ack.sid
                        self._emit(RoomEvent("localTrackPublished", track_id=ack.id))
                elif ack.state is sig.PublishedTrackState.FAILED and ack.error is not None:
                    if ack.id not in self.failed:
                        error = SignalingClientError(ack.error.code, ack.error.message)
                        self.failed[ack.id] = error
                        self._emit(
                            RoomEvent("localTrackPublicationFailed", track_id=ack.id, error=error)
                        )

    def _apply_participant(self, state: sig.RemoteParticipantState) -> None:
        current = self.participants.get(state.sid)
        if current is not None and state.revision <= current.revision:
            return
        if state.state is sig.ParticipantState.DISCONNECTED:
            if current is not None:
                del self.participants[state.sid]
                for track in current.tracks.values():
                    self._emit(RoomEvent("trackUnpublished", current, track))
                self._emit(RoomEvent("participantDisconnected", current))
            return
        if current is None:
            current = RemoteParticipant(state.sid, state.identity, state.state.value, 0)
            self.participants[state.sid] = current
            self._emit(RoomEvent("participantConnected", current))
        previous_state = current.state
        current.revision = state.revision
        current.state = state.state.value
        if previous_state != current.state:
            name = (
                "participantReconnecting"
                if current.state == "reconnecting"
                else "participantReconnected"
            )
            self._emit(RoomEvent(name, current))
        seen = set()
        for t in state.tracks:
            seen.add(t.sid)
            old = current.tracks.get(t.sid)
            pub = RemoteTrackPublication(t.sid, t.name, t.kind.value, t.enabled, t.priority.value)
            current.tracks[t.sid] = pub
            if old is None:
                self._emit(RoomEvent("trackPublished", current, pub))
            elif old.enabled != pub.enabled:
                self._emit(
                    RoomEvent("trackEnabled" if pub.enabled else "trackDisabled", current, pub)
                )
        for sid in [s for s in current.tracks if s not in seen]:
            self._emit(RoomEvent("trackUnpublished", current, current.tracks.pop(sid)))

    def _emit(self, event: RoomEvent) -> None:
        self._events.put_nowait(event)
        self._changed.set()


async def connect(
    url: str,
    token: str,
    *,
    name: str | None = None,
    tracks: tuple[LocalTrackInfo, ...] = (),
    heartbeat_ms: int = 5000,
    subscribe_all: bool = True,
) -> Room:
    """Join a room, as `Video.connect(token, {name, tracks, wsServer: url})` does.

    Raises:
        SignalingClientError: the server's Twilio error (bad token, room full, …).
    """
    room = Room(url, token, heartbeat_ms)
    room.name = name or ""
    room.subscribe_all = subscribe_all
    for track in tracks:
        room.local_tracks[track.id] = track
    try:
        await room._open(sig.Ice(token=token))
    except BaseException:
        await room._stop_tasks()
        if room._ws is not None:
            await room._ws.close()
        raise
    return room
