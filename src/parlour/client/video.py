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
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, cast

import websockets
from aiortc import MediaStreamTrack, RTCDataChannel
from websockets.asyncio.client import ClientConnection

from parlour.client.peer import ClientPeer
from parlour.protocol import signaling as sig

__all__ = [
    "LocalDataTrack",
    "LocalParticipant",
    "LocalTrackInfo",
    "RemoteParticipant",
    "RemoteTrackPublication",
    "Room",
    "RoomEvent",
    "SignalingClientError",
    "connect",
]

log = logging.getLogger(__name__)

# Twilio's codes for the two errors this SDK raises itself (twilio-video's
# SignalingConnectionError and RoomCompletedError); every other code comes from the server.
SIGNALING_CONNECTION_ERROR = 53000
ROOM_COMPLETED = 53118


class SignalingClientError(Exception):
    """The server refused or ended the session with a Twilio error code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class LocalTrackInfo:
    """A track this participant publishes (`id` is its on-the-wire identity).

    Audio/video tracks carry their aiortc `media` track (whose id is the wire id); data
    tracks are sent over a data channel labelled with the id, with these reliability options.
    Without `media`, an audio/video track is announced but sends nothing.
    """

    name: str
    kind: str
    enabled: bool = True
    priority: str = "standard"
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    media: MediaStreamTrack | None = field(default=None, compare=False, repr=False)
    ordered: bool = True
    max_retransmits: int | None = None
    max_packet_life_time: int | None = None

    @classmethod
    def from_track(cls, media: MediaStreamTrack, name: str | None = None) -> LocalTrackInfo:
        """Publish an aiortc track (audio or video) under its own id."""
        return cls(name=name or media.id, kind=media.kind, id=media.id, media=media)

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
    network_quality_level: int | None = None


class LocalDataTrack:
    """A published data track you can `send()` on (from `Room.data_track`)."""

    def __init__(self, room: Room, info: LocalTrackInfo) -> None:
        self._room = room
        self.info = info

    @property
    def id(self) -> str:
        return self.info.id

    def send(self, message: str | bytes) -> None:
        """Send a string or binary message to every subscriber of this track."""
        self._room.send_data(self.info.id, message)


@dataclass
class LocalParticipant:
    """This client in the room (`room.local_participant`)."""

    sid: str
    identity: str
    tracks: dict[str, LocalTrackInfo]
    published: dict[str, str]  # track id -> MT sid once the server acknowledged it


@dataclass(frozen=True)
class RoomEvent:
    """What happened, named like twilio-video's events.

    `trackSubscribed` (with `media` or `channel`), `trackUnsubscribed`, `trackMessage`
    (a data message, in `message`), `participantConnected`, `participantDisconnected`,
    `participantReconnecting`, `participantReconnected`, `trackPublished`,
    `trackUnpublished`, `trackEnabled`, `trackDisabled`, `localTrackPublished`,
    `localTrackPublicationFailed`, `reconnecting`, `reconnected`, `disconnected`,
    `recordingStarted`, `recordingStopped`, `dominantSpeakerChanged` (with `participant`
    None when nobody is dominant any more), `networkQualityLevelChanged` (`participant`
    None for the local one; the level is `room.network_quality_level` or the
    participant's `network_quality_level`), `transcription` (rooms joined with
    `receive_transcriptions=True`: the message as twilio-video's `transcription` event
    has it, in `transcription`: `participant`, `track`, `transcription` (the text),
    `partial_results`, `language_code`, `sequence_number`, `timestamp`; `participant`
    is the speaker, None for the local participant's own words).
    """

    name: str
    participant: RemoteParticipant | None = None
    track: RemoteTrackPublication | None = None
    track_id: str | None = None
    error: SignalingClientError | None = None
    media: MediaStreamTrack | None = None
    channel: RTCDataChannel | None = None
    message: str | bytes | None = None
    transcription: dict[str, Any] | None = None


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
        self.media_region: str | None = None  # the room's, from `connected`
        self.participants: dict[str, RemoteParticipant] = {}
        self.local_tracks: dict[str, LocalTrackInfo] = {}
        self.published: dict[str, str] = {}  # track id -> MT sid
        self.failed: dict[str, SignalingClientError] = {}
        self.subscribed: dict[str, str] = {}  # remote track SID -> on-the-wire id
        self.subscribe_all = True
        self._subscribed_revision = 0
        self.is_recording = False
        self._recording_revision = 0
        self.dominant_speaker: RemoteParticipant | None = None
        self._signaling_labels: dict[str, str] = {}  # media-signaling channel → label
        self.network_quality_level: int | None = None
        self.receive_transcriptions = False
        #: ``bandwidth_profile`` of `connect` (twilio-video's ``bandwidthProfile``, in its
        #: wire form: ``{"video": {"mode": …, "render_dimensions": {…}, …}}``); None: none.
        self.bandwidth_profile: dict[str, Any] | None = None
        self._quality_timer: asyncio.TimerHandle | None = None
        self._revision = 1
        self._published_revision = 0
        self._events: asyncio.Queue[RoomEvent] = asyncio.Queue()
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._closing: asyncio.Task[None] | None = None
        self._connected: asyncio.Future[sig.Connected | sig.Synced] | None = None
        self._changed = asyncio.Event()
        self.disconnect_error: SignalingClientError | None = None
        self.peer: ClientPeer | None = None
        self.local_channels: dict[str, RTCDataChannel] = {}
        self.remote_media: dict[str, MediaStreamTrack] = {}  # remote track SID -> track
        self.remote_data: dict[str, RTCDataChannel] = {}  # remote track SID -> channel
        self._incoming: dict[str, MediaStreamTrack | RTCDataChannel] = {}  # wire id -> it

    # -- public API -----------------------------------------------------------------------

    @property
    def local_participant(self) -> LocalParticipant:
        return LocalParticipant(
            self.local_sid, self.local_identity, self.local_tracks, self.published
        )

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
        """Publish a track; media tracks and data channels are negotiated with the SFU."""
        self.local_tracks[track.id] = track
        self._attach(track)
        await self._send_state(renegotiate=self.peer is not None)

    async def unpublish_track(self, track_id: str) -> None:
        self.local_tracks.pop(track_id, None)
        self.published.pop(track_id, None)
        channel = self.local_channels.pop(track_id, None)
        if channel is not None:
            channel.close()
        if self.peer is not None:
            self.peer.stop_track(track_id)
        await self._send_state(renegotiate=self.peer is not None)

    def send_data(self, track_id: str, message: str | bytes) -> None:
        """Send a message on one of our data tracks."""
        self.local_channels[track_id].send(message)

    def data_track(self, track_id: str) -> LocalDataTrack:
        """One of our data tracks, as an object with `send()`."""
        info = self.local_tracks[track_id]
        if info.kind != "data":
            raise ValueError(f"track {track_id} is not a data track")
        return LocalDataTrack(self, info)

    async def set_track_enabled(self, track_id: str, enabled: bool) -> None:
        self.local_tracks[track_id] = replace(self.local_tracks[track_id], enabled=enabled)
        await self._send_state()

    async def disconnect(self) -> None:
        """Leave the room: `disconnect`, `bye`, close 1000."""
        if self.state == "disconnected":
            if self._closing is not None:  # the server ended it: wait for the release
                await self._closing
            return
        self.state = "disconnected"
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(Exception):
                await self._send_msg(sig.Disconnect(session=self.session))
                await ws.send(sig.encode_message(sig.Bye()))
                await ws.close(1000)
        await self._stop_tasks()
        await self._close_peer()
        self._emit(RoomEvent("disconnected"))

    async def _close_peer(self) -> None:
        if self.peer is not None:
            peer, self.peer = self.peer, None
            await peer.close()

    async def drop_connection(self) -> None:
        """Cut the signaling socket without leaving (tests use it to simulate a network blip)."""
        if self._ws is not None:
            await self._ws.close(4000)

    async def vanish(self) -> None:
        """Stop at once without telling the server, as a client whose process died: the
        signaling connection is aborted (no close frame, no `disconnect`), the media stops,
        and nothing reconnects. The server notices when its session times out (soak and
        load tests use it)."""
        self.state = "disconnected"
        ws = self._ws
        if ws is not None:
            ws.transport.abort()
        await self._stop_tasks()
        await self._close_peer()

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
            media_signaling=(
                {
                    sig.MspChannel.ACTIVE_SPEAKER: sig.MediaSignalingRequest(),
                    sig.MspChannel.NETWORK_QUALITY: sig.MediaSignalingRequest(),
                    **(
                        {sig.MspChannel.EXTENSION_TRANSCRIPTIONS: sig.MediaSignalingRequest()}
                        if self.receive_transcriptions
                        else {}
                    ),
                }
                if self.peer is not None
                else {}
            ),
            subscribe=sig.Subscriptions(
                rules=(
                    sig.SubscribeRule(
                        type="include" if self.subscribe_all else "exclude", all=True
                    ),
                )
            ),
            format="unified",
            bandwidth_profile=self.bandwidth_profile,
        )

    def _local_state(self) -> sig.LocalParticipantState:
        return sig.LocalParticipantState(
            revision=self._revision, tracks=tuple(t.state() for t in self.local_tracks.values())
        )

    async def set_bandwidth_profile(self, profile: dict[str, Any] | None) -> None:
        """Change the ``bandwidth_profile`` mid-call: an ``update`` that carries it (the
        protocol allows it; the server allocates again at once)."""
        self.bandwidth_profile = profile
        if self.state == "connected" and profile is not None:
            await self._send_msg(sig.ClientUpdate(session=self.session, bandwidth_profile=profile))

    async def _send_state(self, renegotiate: bool = False) -> None:
        self._revision += 1
        if self.state == "connected":
            pcs = await self._offer() if renegotiate else ()
            await self._send_msg(
                sig.ClientUpdate(
                    session=self.session,
                    participant=self._local_state(),
                    peer_connections=pcs or None,
                )
            )

    # -- media ----------------------------------------------------------------------------

    def _attach(self, track: LocalTrackInfo) -> None:
        if self.peer is None:
            return
        if track.kind == "data":
            options: dict[str, object] = {"ordered": track.ordered}
            if track.max_retransmits is not None:
                options["maxRetransmits"] = track.max_retransmits
            if track.max_packet_life_time is not None:
                options["maxPacketLifeTime"] = track.max_packet_life_time
            self.local_channels[track.id] = self.peer.add_data_channel(track.id, **options)
        elif track.media is not None:
            self.peer.add_track(track.media)

    async def _offer(self) -> tuple[sig.PeerConnectionState, ...]:
        if self.peer is None:
            return ()
        made = await self.peer.create_offer()
        if made is None:
            return ()
        revision, sdp = made
        desc = sig.SessionDescription(type=sig.SdpType.OFFER, revision=revision, sdp=sdp)
        return (sig.PeerConnectionState(id=self.peer.id, description=desc),)

    async def _apply_descriptions(self, pcs: tuple[sig.PeerConnectionState, ...]) -> None:
        if self.peer is None:
            return
        for pc in pcs:
            if pc.id != self.peer.id or pc.description is None:
                continue
            desc = pc.description
            answer = await self.peer.apply(desc.type.value, desc.revision, desc.sdp)
            if answer is not None:
                rev, sdp = answer
                out = sig.SessionDescription(type=sig.SdpType.ANSWER, revision=rev, sdp=sdp)
                await self._send_msg(
                    sig.ClientUpdate(
                        session=self.session,
                        participant=self._local_state(),
                        peer_connections=(
                            sig.PeerConnectionState(id=self.peer.id, description=out),
                        ),
                    )
                )
            if not self.peer.awaiting_answer and self._needs_reoffer():
                pcs_out = await self._offer()
                if pcs_out:
                    await self._send_msg(
                        sig.ClientUpdate(
                            session=self.session,
                            participant=self._local_state(),
                            peer_connections=pcs_out,
                        )
                    )

    def _needs_reoffer(self) -> bool:
        """Local tracks or channels not yet in a negotiated description (e.g. after glare)."""
        if self.peer is None or self.peer.pc.localDescription is None:
            return False
        sdp = self.peer.pc.localDescription.sdp
        media_ids = [t.id for t in self.local_tracks.values() if t.media is not None]
        if any(f" {track_id}\r\n" not in sdp for track_id in media_ids):
            return True
        return bool(self.local_channels) and "m=application" not in sdp

    def _remote_track(self, media: MediaStreamTrack, wire_id: str) -> None:
        self._incoming[wire_id] = media
        self._match_incoming()

    def _remote_channel(self, channel: RTCDataChannel) -> None:
        self._incoming[channel.label] = channel
        self._match_incoming()

    def _signaling_channel(self, name: str, channel: RTCDataChannel) -> None:
        """A media-signaling channel the server opened (twilio-video's MSP): say `ready`,
        then read its JSON messages."""

        def on_message(message: str | bytes) -> None:
            try:
                body = json.loads(message)
            except ValueError:
                return
            if not isinstance(body, dict):
                return
            if name == sig.MspChannel.ACTIVE_SPEAKER and body.get("type") == "active_speaker":
                self._dominant_speaker(body.get("participant"))
            elif name == sig.MspChannel.NETWORK_QUALITY and body.get("type") == "network_quality":
                self._network_quality(body)
                self._schedule_quality_report(channel)
            elif (
                name == sig.MspChannel.EXTENSION_TRANSCRIPTIONS
                and body.get("type") == "extension_transcriptions"
            ):
                speaker = body.get("participant")
                self._emit(
                    RoomEvent(
                        "transcription",
                        self.participants.get(speaker) if isinstance(speaker, str) else None,
                        transcription=body,
                    )
                )

        channel.on("message", on_message)
        channel.send(json.dumps({"type": "ready"}))
        if name == sig.MspChannel.NETWORK_QUALITY:
            self._send_quality_report(channel)

    def _dominant_speaker(self, sid: object) -> None:
        speaker = self.participants.get(sid) if isinstance(sid, str) else None
        if speaker is not self.dominant_speaker:
            self.dominant_speaker = speaker
            self._emit(RoomEvent("dominantSpeakerChanged", speaker))

    def _network_quality(self, body: dict[str, Any]) -> None:
        """`local` (a level, or an object with one) and `remotes` (with `sid`, `level`)."""
        local = body.get("local")
        level = local.get("level") if isinstance(local, dict) else local
        if isinstance(level, int) and level != self.network_quality_level:
            self.network_quality_level = level
            self._emit(RoomEvent("networkQualityLevelChanged"))
        for remote in body.get("remotes") or ():
            if not isinstance(remote, dict):
                continue
            participant = self.participants.get(str(remote.get("sid")))
            level = remote.get("level")
            if participant is not None and isinstance(level, int):
                if level != participant.network_quality_level:
                    participant.network_quality_level = level
                    self._emit(RoomEvent("networkQualityLevelChanged", participant))

    def _send_quality_report(self, channel: RTCDataChannel) -> None:
        """A report as the SDK sends one (levels asked for: minimal, local and remote); the
        server measures loss and jitter itself."""
        if channel.readyState != "open" or self.state == "disconnected":
            return
        report = {
            "type": "network_quality",
            "reportLevel": 1,
            "remoteReportLevel": 1,
            "ice": {"send": 0, "recv": 0},
        }
        channel.send(json.dumps(report))

    def _schedule_quality_report(self, channel: RTCDataChannel) -> None:
        """The next report a second after each reply, as twilio-video paces them."""
        if self._quality_timer is not None:
            self._quality_timer.cancel()
        loop = asyncio.get_running_loop()
        self._quality_timer = loop.call_later(1.0, self._send_quality_report, channel)

    def _match_incoming(self) -> None:
        for name, label in self._signaling_labels.items():
            channel = self._incoming.pop(label, None)
            if isinstance(channel, RTCDataChannel):
                self._signaling_channel(name, channel)
        for sid, wire_id in self.subscribed.items():
            item = self._incoming.get(wire_id)
            if item is None or sid in self.remote_media or sid in self.remote_data:
                continue
            owner, publication = self._publication(sid)
            if isinstance(item, RTCDataChannel):
                self.remote_data[sid] = item
                self._emit(RoomEvent("trackSubscribed", owner, publication, channel=item))

                def on_message(
                    message: str | bytes,
                    owner: RemoteParticipant | None = owner,
                    publication: RemoteTrackPublication | None = publication,
                ) -> None:
                    self._emit(RoomEvent("trackMessage", owner, publication, message=message))

                item.on("message", on_message)
            else:
                self.remote_media[sid] = item
                self._emit(RoomEvent("trackSubscribed", owner, publication, media=item))
        for sid in [s for s in (*self.remote_media, *self.remote_data) if s not in self.subscribed]:
            self.remote_media.pop(sid, None)
            self.remote_data.pop(sid, None)
            owner, publication = self._publication(sid)
            self._emit(RoomEvent("trackUnsubscribed", owner, publication))

    def _publication(
        self, sid: str
    ) -> tuple[RemoteParticipant | None, RemoteTrackPublication | None]:
        for participant in self.participants.values():
            if sid in participant.tracks:
                return participant, participant.tracks[sid]
        return None, None

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
                self.disconnect_error
                or SignalingClientError(SIGNALING_CONNECTION_ERROR, "Signaling connection error")
            )
            return
        if self.state != "connected":
            return
        if code == 1000 or self.disconnect_error is not None:
            self._ended(self.disconnect_error)
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
        self._ended(self.disconnect_error)

    def _ended(self, error: SignalingClientError | None) -> None:
        """The server ended the room for us: report it once and release the media."""
        if self.state == "disconnected":
            return
        self.state = "disconnected"
        self._emit(RoomEvent("disconnected", error=error))
        self._closing = asyncio.get_running_loop().create_task(self._release())

    async def _release(self) -> None:
        """After the server ended the room: stop the heartbeat, close the media."""
        await self._stop_tasks()
        await self._close_peer()

    async def _stop_tasks(self) -> None:
        """Stop the heartbeat; let the reader end with its (closed) socket."""
        if self._quality_timer is not None:
            self._quality_timer.cancel()
            self._quality_timer = None
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
            message = self._connect_message(self.name or None)
            if self.peer is not None:
                message = replace(message, peer_connections=await self._offer())
            await self._send_msg(message)
        elif isinstance(body, sig.Connected):
            self.sid, self.name, self.session = body.sid, body.name, body.session
            self.local_sid, self.local_identity = body.participant.sid, body.participant.identity
            self.session_timeout = body.options.session_timeout
            for name, served in (body.media_signaling or {}).items():
                if served.transport is not None and served.transport.label is not None:
                    self._signaling_labels[name] = served.transport.label
            self._match_incoming()
            self.media_region = body.options.media_region
            self.state = "connected"
            self._apply(body.participants or (), body.published, body.subscribed)
            if body.recording is not None:  # the state at joining: no event
                self.is_recording = body.recording.is_recording
                self._recording_revision = body.recording.revision
            if self._connected is not None and not self._connected.done():
                self._connected.set_result(body)
            await self._apply_descriptions(body.peer_connections)
        elif isinstance(body, sig.Synced):
            present = {p.sid for p in body.participants or ()}
            for sid in [s for s in self.participants if s not in present]:
                self._emit(RoomEvent("participantDisconnected", self.participants.pop(sid)))
            self._apply(body.participants or (), body.published, body.subscribed)
            self._apply_recording(body.recording)
            if self._connected is not None and not self._connected.done():
                self._connected.set_result(body)
        elif isinstance(body, sig.ServerUpdate):
            self._apply(body.participants or (), body.published, body.subscribed)
            self._apply_recording(body.recording)
            await self._apply_descriptions(body.peer_connections or ())
        elif isinstance(body, sig.Disconnected):
            if body.status == "completed":
                self.disconnect_error = SignalingClientError(ROOM_COMPLETED, "Room completed")
            if self._connected is not None and not self._connected.done():
                self._connected.set_exception(
                    self.disconnect_error
                    or SignalingClientError(SIGNALING_CONNECTION_ERROR, "Disconnected")
                )
            else:
                self._ended(self.disconnect_error)
        elif isinstance(body, sig.ErrorMessage):
            error = SignalingClientError(body.code, body.message)
            self.disconnect_error = error
            if self._connected is not None and not self._connected.done():
                self._connected.set_exception(error)
            else:
                self._ended(error)
        self._changed.set()

    def _apply_recording(self, recording: sig.Recording | None) -> None:
        """`recording` (twilio-video's `room.isRecording`): applied unless older."""
        if recording is None or recording.revision < self._recording_revision:
            return
        self._recording_revision = recording.revision
        if recording.is_recording != self.is_recording:
            self.is_recording = recording.is_recording
            self._emit(RoomEvent("recordingStarted" if self.is_recording else "recordingStopped"))

    def _apply(
        self,
        states: tuple[sig.RemoteParticipantState, ...],
        published: sig.Published | None,
        subscribed: sig.Subscribed | None = None,
    ) -> None:
        if subscribed is not None and subscribed.revision > self._subscribed_revision:
            self._subscribed_revision = subscribed.revision
            self.subscribed = {t.sid: t.id for t in subscribed.tracks if t.id is not None}
            self._match_incoming()
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
    media: bool = True,
    receive_transcriptions: bool = False,
    bandwidth_profile: dict[str, Any] | None = None,
) -> Room:
    """Join a room, as `Video.connect(token, {name, tracks, wsServer: url})` does
    (`receive_transcriptions` is twilio-video's `receiveTranscriptions`, `bandwidth_profile`
    its ``bandwidthProfile`` as the SDK sends it: snake_case, e.g. ``{"video": {"mode":
    "collaboration", "render_dimensions": {"standard": {"width": 640, "height": 360}}}}``).

    Raises:
        SignalingClientError: the server's Twilio error (bad token, room full, …).
    """
    room = Room(url, token, heartbeat_ms)
    room.name = name or ""
    room.subscribe_all = subscribe_all
    room.receive_transcriptions = receive_transcriptions
    room.bandwidth_profile = bandwidth_profile
    if media:
        room.peer = ClientPeer(str(uuid.uuid4()), room._remote_track, room._remote_channel)
    for track in tracks:
        room.local_tracks[track.id] = track
        room._attach(track)
    if room.peer is not None and not room.local_channels:
        # Media-signaling channels (dominant speaker) are data channels the server opens:
        # negotiate SCTP from the first offer rather than in a renegotiation. Pre-negotiated,
        # so no channel is opened by this one.
        room.peer.pc.createDataChannel("parlour-sctp", negotiated=True, id=1023)
    if room.peer is not None and not any(t.media is not None for t in tracks):
        # Like browsers without local tracks: offer to receive audio and video.
        room.peer.pc.addTransceiver("audio", direction="recvonly")
        room.peer.pc.addTransceiver("video", direction="recvonly")
    try:
        await room._open(sig.Ice(token=token))
    except BaseException:
        await room._stop_tasks()
        await room._close_peer()
        if room._ws is not None:
            await room._ws.close()
        raise
    return room
