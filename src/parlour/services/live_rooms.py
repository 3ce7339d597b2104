"""Live rooms: who is connected over which signaling session, and what they publish.

This is the use case behind Room Signaling Protocol v2: a client joins (`connect`),
changes what it publishes (`update`), drops and resumes (`sync`) and leaves (`disconnect`).
The service keeps each participant's revisioned state, fans changes out to the others in
the room, tells the media plane what each member should receive (subscribe rules), gives
each published track its recording tap, and implements the `SessionControl` port, so REST
actions (kick, end room) reach live clients. `parlour.signaling` only turns frames into
these calls and the messages they return into frames.

Records are written through `RoomService` and `ParticipantService`, whose writes are
conditional: a participant leaves once, a room ends once, whatever happens concurrently.

Rules of the live lifecycle (docs/architecture.md, "Live rooms"):

- The token's grant and the identity are checked before anything is created.
- A participant whose media transport is not up within the media connect timeout, or
  whose transport dies later (ICE consent), gets error 53405 and leaves; others see its
  tracks go.
- A participant who leaves is announced with its tracks as they last were (the SDK keeps
  a `RemoteParticipant`'s publications in their last state, as Twilio does).
- A dropped socket keeps the session for `session_timeout`; it leaves when that runs out.

Participant state that others see carries a revision that increases on every change; the
SDK ignores anything not newer (signaling-protocol.md §3.6).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
import time
from collections.abc import Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from parlour.domain import errors
from parlour.domain.bandwidth import choose_layer
from parlour.domain.events import Event, RecordingEvent
from parlour.domain.participants import Participant, ParticipantStatus, validate_identity
from parlour.domain.ports import MediaPlane, MediaSession, Recorder, TrackDescriptor
from parlour.domain.rooms import Room
from parlour.domain.rules import DEFAULT_SUBSCRIBE_RULES, Rule, TrackRef, evaluate
from parlour.domain.sids import AccountSid, ParticipantSid, RoomSid, TrackSid
from parlour.domain.tracks import PublishedTrack, TrackKind
from parlour.protocol import signaling as sig
from parlour.protocol.tokens import AccessToken, TokenError
from parlour.services.accounts import AccountService
from parlour.services.media_signaling import MediaSignalingChannels
from parlour.services.network_quality import NetworkQuality
from parlour.services.participants import ParticipantService
from parlour.services.publisher_hints import PublisherHints
from parlour.services.rooms import RoomService
from parlour.services.track_switch_off import SwitchOff, VideoTrack
from parlour.services.traversal import NetworkTraversal

__all__ = ["ClientChannel", "LiveRoom", "LiveRoomService", "ParticipantSession", "error_message"]

log = logging.getLogger(__name__)

MAX_TRACK_NAME = 128
#: The WebSocket close code after a server-sent `error` or `disconnected` (a clean close).
CLOSE_NORMAL = 1000
#: The close code when the server stops: clients resume elsewhere or later.
CLOSE_RESTART = 1012
#: The close code for a socket replaced by a newer one of the same session.
CLOSE_REPLACED = 4000
#: How often the switch-off allocation of each subscriber is decided again (seconds).
ALLOCATION_INTERVAL = 1.0
#: The media-signaling channels served (docs/compatibility.md, "Media signaling").
SERVED_CHANNELS = frozenset(
    {
        sig.MspChannel.ACTIVE_SPEAKER,
        sig.MspChannel.NETWORK_QUALITY,
        sig.MspChannel.TRACK_SWITCH_OFF,
        sig.MspChannel.RENDER_HINTS,
        sig.MspChannel.TRACK_PRIORITY,
        sig.MspChannel.EXTENSION_TRANSCRIPTIONS,
        sig.MspChannel.PUBLISHER_HINTS,
    }
)


def error_message(code: int, message: str | None = None) -> sig.ErrorMessage:
    """The RSP `error` for a Twilio code, with Twilio's message unless one is given."""
    return sig.ErrorMessage(code=int(code), message=message or errors.message_for(code))


class ClientChannel(Protocol):
    """The sending side of one client's signaling connection."""

    def send(self, message: sig.RspMessage) -> None:
        """Queue an RSP message for the client."""
        ...

    def close(self, code: int) -> None:
        """Close the connection with this close code after queued messages."""
        ...


@dataclass
class LiveTrack:
    """One published track: the client's on-the-wire id and its MT SID."""

    id: str
    record: PublishedTrack
    priority: str
    tapped: bool = False

    def remote_state(self) -> sig.RemoteTrackState:
        return sig.RemoteTrackState(
            sid=self.record.sid,
            kind=sig.TrackKind(self.record.kind.value),
            name=self.record.name,
            enabled=self.record.enabled,
            priority=sig.TrackPriority(self.priority),
        )


@dataclass(eq=False)
class ParticipantSession:
    """A participant's signaling session; it outlives a dropped socket for session_timeout."""

    token: str
    room: Room
    participant: Participant
    media: MediaSession | None
    channel: ClientChannel | None
    state: sig.ParticipantState = sig.ParticipantState.CONNECTED
    revision: int = 1
    client_revision: int = 0
    tracks: dict[str, LiveTrack] = field(default_factory=dict)
    failed_tracks: dict[str, sig.ErrorInfo] = field(default_factory=dict)
    published_revision: int = 0
    subscribed_revision: int = 1
    subscribed: dict[TrackSid, str] = field(default_factory=dict)
    client_rules: tuple[Rule, ...] = DEFAULT_SUBSCRIBE_RULES
    expiry: asyncio.TimerHandle | None = None
    signaling: MediaSignalingChannels = field(
        default_factory=lambda: MediaSignalingChannels(None, ())
    )
    dominant_speaker: ParticipantSid | None = None
    network: NetworkQuality = field(default_factory=NetworkQuality)
    switch: SwitchOff = field(default_factory=SwitchOff)
    hints: PublisherHints = field(default_factory=PublisherHints)
    held: list[sig.RspMessage] | None = field(default_factory=list)
    recording_subscriptions: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def sid(self) -> ParticipantSid:
        return self.participant.sid

    @property
    def ended(self) -> bool:
        return self.state is sig.ParticipantState.DISCONNECTED

    def remote_state(self) -> sig.RemoteParticipantState:
        """How the other participants see this one (tracks as they last were, even when it
        has left)."""
        return sig.RemoteParticipantState(
            sid=self.sid,
            identity=self.participant.identity,
            state=self.state,
            revision=self.revision,
            tracks=tuple(t.remote_state() for t in self.tracks.values()),
        )

    def published(self) -> sig.Published:
        """The next `published` acknowledgement (its revision increases every time)."""
        self.published_revision += 1
        acks = [
            sig.PublishedTrack(id=t.id, sid=t.record.sid, state=sig.PublishedTrackState.READY)
            for t in self.tracks.values()
        ]
        acks += [
            sig.PublishedTrack(id=track_id, state=sig.PublishedTrackState.FAILED, error=error)
            for track_id, error in self.failed_tracks.items()
        ]
        return sig.Published(revision=self.published_revision, tracks=tuple(acks))

    def send(self, message: sig.RspMessage) -> None:
        """To the client; held back while its `connected`/`synced` is not out yet (an offer
        or a subscription before it would reach a client that cannot take it)."""
        if self.held is not None:
            self.held.append(message)
        elif self.channel is not None:
            self.channel.send(message)

    def release(self, first: sig.RspMessage) -> None:
        """Send `first` (`connected` or `synced`), then what was held back."""
        held, self.held = self.held or [], None
        if self.channel is not None:
            for message in (first, *held):
                self.channel.send(message)

    def subscribed_message(self) -> sig.Subscribed:
        return sig.Subscribed(
            revision=self.subscribed_revision,
            tracks=tuple(sig.SubscribedTrack(sid=s, id=i) for s, i in self.subscribed.items()),
        )


@dataclass(eq=False)
class LiveRoom:
    """The members of one room connected to this node."""

    room: Room
    members: dict[ParticipantSid, ParticipantSession] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    recording: sig.Recording = field(
        default_factory=lambda: sig.Recording(is_recording=False, revision=1)
    )

    def active(self) -> list[ParticipantSession]:
        return [m for m in self.members.values() if not m.ended]


class _MediaEvents:
    """The media plane's way back to one participant's session (`MediaListener`)."""

    def __init__(self, service: LiveRoomService) -> None:
        self._service = service
        self.session: ParticipantSession | None = None

    def send_offer(self, pc_id: str, revision: int, sdp: str) -> None:
        if self.session is not None and not self.session.ended:
            desc = sig.SessionDescription(type=sig.SdpType.OFFER, revision=revision, sdp=sdp)
            self.session.send(
                sig.ServerUpdate(
                    peer_connections=(sig.PeerConnectionState(id=pc_id, description=desc),)
                )
            )

    def subscriptions_changed(self, subscribed: Sequence[tuple[TrackSid, str]]) -> None:
        if self.session is not None and not self.session.ended:
            self._service._subscriptions_changed(self.session, dict(subscribed))

    def media_failed(self, reason: str) -> None:
        if self.session is not None and not self.session.ended:
            self._service._spawn(self._service._media_failed(self.session, reason))

    def signaling_message(self, label: str, message: str) -> None:
        if self.session is not None and not self.session.ended:
            self._service._signaling_message(self.session, label, message)

    def dominant_speaker_changed(self, participant_sid: ParticipantSid | None) -> None:
        if self.session is not None and not self.session.ended:
            self.session.dominant_speaker = participant_sid
            self._service._send_dominant_speaker(self.session)
            self._service._reallocate(self.session)


class LiveRoomService:
    """Every live session of this server node.

    Args:
        session_timeout: seconds a session survives a dropped socket (sent to clients too).
        auto_create_rooms: create a room on first connect, as Twilio does by default.
        recorder: gives each published audio/video track its recording tap.
        session_tag: put in every session token after `SE` (a cluster node's id, so that a
            resuming client's `sync` can be routed to the node that holds its session).
    """

    def __init__(
        self,
        accounts: AccountService,
        rooms: RoomService,
        participants: ParticipantService,
        media: MediaPlane,
        *,
        session_timeout: float = 30.0,
        auto_create_rooms: bool = True,
        recorder: Recorder | None = None,
        traversal: NetworkTraversal | None = None,
        session_tag: str = "",
    ) -> None:
        self._accounts = accounts
        self._session_tag = session_tag
        self._traversal = traversal
        self._rooms = rooms
        self._participants = participants
        self._media = media
        self.session_timeout = session_timeout
        self._auto_create = auto_create_rooms
        self._recorder = recorder
        self._live: dict[RoomSid, LiveRoom] = {}
        self._sessions: dict[str, ParticipantSession] = {}
        self._by_participant: dict[ParticipantSid, ParticipantSession] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._allocator: asyncio.Task[None] | None = None

    # -- queries --------------------------------------------------------------------------

    def session(self, token: str) -> ParticipantSession | None:
        return self._sessions.get(token)

    @property
    def session_count(self) -> int:
        """Sessions held: connected, or waiting for their client to resume."""
        return len(self._sessions)

    def holds_participant(self, participant_sid: ParticipantSid) -> bool:
        """Whether this node holds the participant's session."""
        return participant_sid in self._by_participant

    def live_room_sids(self) -> list[RoomSid]:
        """The rooms with sessions on this node."""
        return list(self._live)

    def live_room(self, room_sid: RoomSid) -> LiveRoom | None:
        return self._live.get(room_sid)

    def live_participants(self, room_sid: RoomSid) -> list[ParticipantSession]:
        live = self._live.get(room_sid)
        return live.active() if live else []

    # -- connect --------------------------------------------------------------------------

    async def verify(self, token: str) -> AccessToken:
        """The token's claims.

        Raises:
            TwilioError: 20101–20107, the first check the token fails.
        """
        try:
            return await self._accounts.verify_access_token(token)
        except TokenError as exc:
            raise errors.TwilioError(exc.message, code=exc.code) from None

    async def ice(self, token: str) -> sig.Iced:
        """`iced` for a client's `ice`: the TURN servers with credentials for the token's
        account (none when the server has no TURN; rooms always have `EnableTurn`, which
        Twilio deprecated and forces on).

        Raises:
            TwilioError: 20101–20107, the first check the token fails.
        """
        claims = await self.verify(token)
        credentials = (
            self._traversal.credentials(AccountSid(claims.account_sid))
            if self._traversal is not None
            else None
        )
        if credentials is None:
            return sig.Iced(ice_servers=())
        return sig.Iced(
            ice_servers=tuple(
                sig.IceServer(
                    urls=url, username=credentials.username, credential=credentials.password
                )
                for url in credentials.urls
            )
        )

    async def connect(self, channel: ClientChannel, msg: sig.Connect) -> sig.Connected:
        """A client joins: token, room, participant, tracks; sends its `connected` (first,
        before anything else for it) and returns it.

        Everything that can refuse the client without touching the room (token, grant,
        identity) is checked before a room is created or a participant recorded.

        Raises:
            TwilioError: the code to send back (20101–20107, 531xx, 532xx, 53403).
        """
        room, identity = await self.room_for(msg)
        live = self._live.get(room.sid)
        if live is None:
            live = self._live[room.sid] = LiveRoom(room)
            self._refresh_recording(live)
        try:
            async with live.lock:
                session, others, answers = await self._join(live, channel, msg, identity)
        finally:
            self._forget_room_if_empty(live)
        participant = session.participant
        log.info("signaling connected participant=%s room=%s", participant.sid, room.sid)
        connected = sig.Connected(
            session=session.token,
            sid=room.sid,
            name=room.unique_name,
            participant=sig.ParticipantInfo(sid=participant.sid, identity=participant.identity),
            options=sig.ConnectedOptions(
                session_timeout=self.session_timeout,
                media_region=room.media_region,
                signaling_region=room.media_region,
                audio_processors=("krisp",),
            ),
            participants=tuple(o.remote_state() for o in others),
            peer_connections=answers,
            published=session.published(),
            subscribed=session.subscribed_message(),
            recording=live.recording,
            media_signaling=session.signaling.answer(),
        )
        session.release(connected)
        return connected

    async def room_for(self, msg: sig.Connect) -> tuple[Room, str]:
        """The room a `connect` joins (created if allowed) and the token's identity, after
        the token, its grant and the identity are checked.

        Raises:
            TwilioError: 20101–20107, 53106, 53118, 53200/53201, 53100–53102.
        """
        claims = await self.verify(msg.token)
        account = AccountSid(claims.account_sid)
        grant_room = claims.video.room if claims.video else None
        name = msg.name or grant_room
        identity = claims.identity or ""
        validate_identity(identity)
        if grant_room is not None and name is not None and grant_room != name:
            existing = await self._rooms.lookup(account, name)
            if existing is None or grant_room not in (existing.unique_name, existing.sid):
                raise errors.TwilioError(
                    "Access Token does not grant access to this Room",
                    code=errors.Code.ACCESS_TOKEN_GRANTS_INVALID,
                )
        if name is None:  # no name anywhere: a new room, named by its SID (as on Twilio)
            room = await self._rooms.for_join_unnamed(account, auto_create=self._auto_create)
        else:
            room = await self._rooms.for_join(account, name, auto_create=self._auto_create)
        return room, identity

    async def _join(
        self, live: LiveRoom, channel: ClientChannel, msg: sig.Connect, identity: str
    ) -> tuple[ParticipantSession, list[ParticipantSession], tuple[sig.PeerConnectionState, ...]]:
        """Record the participant, open its media, apply its tracks and descriptions, tell
        the others. Returns the session, the others and the answers."""
        room = live.room
        participant = await self._participants.join(room, identity)
        events = _MediaEvents(self)
        session = ParticipantSession(
            token="SE" + self._session_tag + secrets.token_hex(16),
            room=room,
            participant=participant,
            media=None,
            channel=channel,
        )
        events.session = session
        session.signaling = MediaSignalingChannels(msg.media_signaling, SERVED_CHANNELS)
        session.switch = SwitchOff(msg.bandwidth_profile)
        if msg.subscribe is not None and msg.subscribe.rules:
            session.client_rules = (
                tuple(Rule(type=r.type, all=True) for r in msg.subscribe.rules if r.all)
                or DEFAULT_SUBSCRIBE_RULES
            )
        others = live.active()
        live.members[participant.sid] = session
        self._sessions[session.token] = session
        self._by_participant[participant.sid] = session
        try:
            session.media = self._media.open_session(
                room.sid, participant.sid, events, room.video_codecs
            )
            session.signaling.open(session.media)
            await self._apply_tracks(session, msg.participant)
            answers = await self._descriptions(session, msg.peer_connections)
        except BaseException:
            await self._leave(session)
            raise
        for other in others:
            other.send(sig.ServerUpdate(participants=(session.remote_state(),)))
        self._refresh_subscriptions(live)
        return session, others, answers

    # -- updates --------------------------------------------------------------------------

    async def update(self, session: ParticipantSession, msg: sig.ClientUpdate) -> None:
        """A client `update`: new participant state and/or peer-connection descriptions.

        Raises:
            TwilioError: 53403 for a description the SFU cannot apply; the session has left.
        """
        live = self._live.get(session.room.sid)
        if live is None or session.ended:
            return
        try:
            await self._update(live, session, msg)
        finally:
            self._forget_room_if_empty(live)

    async def _update(
        self, live: LiveRoom, session: ParticipantSession, msg: sig.ClientUpdate
    ) -> None:
        async with live.lock:
            changed = False
            if msg.bandwidth_profile is not None:
                session.switch.set_profile(msg.bandwidth_profile)
                self._reallocate(session)
            try:
                if msg.participant is not None:
                    changed = await self._apply_tracks(session, msg.participant)
                answers = await self._descriptions(session, msg.peer_connections or ())
            except errors.TwilioError:
                await self._leave(session)
                raise
            if changed:
                session.send(sig.ServerUpdate(published=session.published()))
                self._broadcast(live, session)
                self._refresh_subscriptions(live)
            if answers:
                session.send(sig.ServerUpdate(peer_connections=answers))

    async def _descriptions(
        self, session: ParticipantSession, pcs: Iterable[sig.PeerConnectionState]
    ) -> tuple[sig.PeerConnectionState, ...]:
        answers = []
        media = session.media
        if media is None:
            return ()
        track_ids = list(session.tracks)
        for pc in pcs:
            desc = pc.description
            if desc is None or desc.sdp is None:
                continue
            answer = await media.client_description(
                pc.id, desc.type.value, desc.revision, desc.sdp, track_ids
            )
            if answer is not None:
                answers.append(
                    sig.PeerConnectionState(
                        id=pc.id,
                        description=sig.SessionDescription(
                            type=sig.SdpType.ANSWER, revision=desc.revision, sdp=answer
                        ),
                    )
                )
        await self._attach_taps(session)
        return tuple(answers)

    async def _attach_taps(self, session: ParticipantSession) -> None:
        """Give each newly negotiated audio/video track its recording tap."""
        media = session.media
        if self._recorder is None or media is None:
            return
        for track in list(session.tracks.values()):
            if session.ended:
                return  # left meanwhile: its taps would never be closed
            if track.tapped or session.tracks.get(track.id) is not track:
                continue  # tapped, or unpublished while another track's tap was made
            negotiated = media.published_codec(track.id)
            if negotiated is None:
                continue  # data track, or media not negotiated yet
            track.tapped = True
            codec, payload_types = negotiated
            tap = await self._recorder.track_published(
                session.room,
                session.participant,
                track.record,
                codec,
                payload_types=payload_types,
                request_keyframe=functools.partial(media.request_keyframe, track.id),
            )
            if tap is None:
                continue
            if session.ended or session.tracks.get(track.id) is not track:
                # The participant left (or the track went) while its recording was being set
                # up: nothing will ever feed or close this tap, so close it now (its
                # recording is finished), or the recording stays `processing` for ever.
                tap.close()
                continue
            media.attach_tap(track.id, tap)

    async def _apply_tracks(
        self, session: ParticipantSession, state: sig.LocalParticipantState
    ) -> bool:
        """Diff the client's full track list against ours. Returns whether anything changed."""
        if state.revision <= session.client_revision:
            return False
        session.client_revision = state.revision
        changed = False
        room, participant = session.room, session.participant
        wanted = {t.id: t for t in state.tracks}
        for track_id in [i for i in session.tracks if i not in wanted]:
            live_track = session.tracks.pop(track_id)
            await self._participants.unpublish(room, participant, live_track.record)
            changed = True
        for track_id in [i for i in session.failed_tracks if i not in wanted]:
            del session.failed_tracks[track_id]
        names = {t.record.name for t in session.tracks.values()}
        for track in state.tracks:
            current = session.tracks.get(track.id)
            if current is not None:
                if current.record.enabled != track.enabled:
                    current.record = await self._participants.set_track_enabled(
                        room, participant, current.record, track.enabled
                    )
                    changed = True
                if current.priority != track.priority.value:
                    current.priority = track.priority.value
                    changed = True
                continue
            if track.id in session.failed_tracks:
                continue
            error = self._publish_error(session, track, names)
            if error is not None:
                session.failed_tracks[track.id] = sig.ErrorInfo(
                    code=error, message=errors.message_for(error)
                )
                changed = True
                continue
            record = await self._participants.publish(
                room, participant, track.name, TrackKind(track.kind.value), track.enabled
            )
            if record is None:  # the participant left while this update was processed
                return changed
            session.tracks[track.id] = LiveTrack(track.id, record, track.priority.value)
            names.add(track.name)
            changed = True
        if changed:
            session.revision += 1
        return changed

    def _publish_error(
        self, session: ParticipantSession, track: sig.LocalTrackState, names: set[str]
    ) -> errors.Code | None:
        if len(track.name) > MAX_TRACK_NAME:
            return errors.Code.TRACK_NAME_TOO_LONG
        if track.name in names:
            return errors.Code.TRACK_NAME_IS_DUPLICATED
        if session.room.audio_only and track.kind is sig.TrackKind.VIDEO:
            return errors.Code.ROOM_TRACK_KIND_NOT_SUPPORTED
        cap = session.room.max_concurrent_published_tracks
        published = sum(len(m.tracks) for m in self.live_participants(session.room.sid))
        if cap and published >= cap:
            return errors.Code.PARTICIPANT_MAX_TRACKS_EXCEEDED
        return None

    def _broadcast(self, live: LiveRoom, changed: ParticipantSession) -> None:
        state = changed.remote_state()
        for member in live.active():
            if member is not changed:
                member.send(sig.ServerUpdate(participants=(state,)))

    # -- leaving, dropping, resuming ------------------------------------------------------

    async def disconnect(self, session: ParticipantSession) -> None:
        """The client left (`disconnect`), or its session expired."""
        if session.ended:
            return
        await self._leave(session)
        log.info("signaling disconnected participant=%s room=%s", session.sid, session.room.sid)

    async def _leave(self, session: ParticipantSession) -> None:
        """The session ends here: others are told, its media closes, its record leaves."""
        if session.ended:
            return
        live = self._drop(session)
        # Recorded first, so that REST agrees with what the others are told next.
        await self._participants.leave(session.room, session.participant)
        if live is not None:
            self._broadcast(live, session)
            self._refresh_subscriptions(live)

    def _drop(self, session: ParticipantSession) -> LiveRoom | None:
        """Forget a session locally and mark it disconnected for everyone else; returns its
        live room if that still has members to tell."""
        session.state = sig.ParticipantState.DISCONNECTED
        session.revision += 1
        if session.expiry is not None:
            session.expiry.cancel()
            session.expiry = None
        if session.media is not None:
            session.media.close()
        self._sessions.pop(session.token, None)
        if self._by_participant.get(session.sid) is session:
            del self._by_participant[session.sid]
        live = self._live.get(session.room.sid)
        if live is None:
            return None
        live.members.pop(session.sid, None)
        self._forget_room_if_empty(live)
        return live if live.members else None

    def _forget_room_if_empty(self, live: LiveRoom) -> None:
        # A join holding the lock may be about to add a member: keep the room then.
        if not live.members and not live.lock.locked():
            if self._live.get(live.room.sid) is live:
                del self._live[live.room.sid]

    async def connection_lost(self, session: ParticipantSession, channel: ClientChannel) -> None:
        """The socket dropped without `disconnect`: keep the session for session_timeout."""
        if session.channel is not channel or session.ended:
            return
        session.channel = None
        session.state = sig.ParticipantState.RECONNECTING
        session.revision += 1
        live = self._live.get(session.room.sid)
        if live is not None:
            self._broadcast(live, session)
        loop = asyncio.get_running_loop()
        session.expiry = loop.call_later(self.session_timeout, self._expire, session)
        session.participant = await self._participants.set_status(
            session.participant, ParticipantStatus.RECONNECTING
        )
        log.info("signaling reconnecting participant=%s", session.sid)

    def _expire(self, session: ParticipantSession) -> None:
        session.expiry = None
        if session.channel is None and session.state is sig.ParticipantState.RECONNECTING:
            self._spawn(self.disconnect(session))

    async def sync(
        self, channel: ClientChannel, msg: sig.Sync
    ) -> tuple[ParticipantSession, sig.Synced]:
        """Resume a session on a new socket; sends the full-state `synced` (first) and
        returns it.

        Raises:
            TwilioError: 53001 for an unknown or expired session, or a token error.
        """
        session = self._sessions.get(msg.session)
        if session is None:
            raise errors.TwilioError(
                "Signaling session not found or expired",
                code=errors.Code.SIGNALING_CONNECTION_DISCONNECTED,
            )
        claims = await self.verify(msg.token)
        if claims.identity != session.participant.identity or (
            claims.account_sid != session.room.account_sid
        ):
            raise errors.TwilioError(
                "Access Token does not match the session",
                code=errors.Code.ACCESS_TOKEN_GRANTS_INVALID,
            )
        live = self._live.get(session.room.sid)
        if live is None or session.ended:
            raise errors.TwilioError(
                "Signaling session not found or expired",
                code=errors.Code.SIGNALING_CONNECTION_DISCONNECTED,
            )
        async with live.lock:
            if session.ended:
                raise errors.TwilioError(
                    "Signaling session not found or expired",
                    code=errors.Code.SIGNALING_CONNECTION_DISCONNECTED,
                )
            if session.expiry is not None:
                session.expiry.cancel()
                session.expiry = None
            old = session.channel
            session.channel = channel
            session.held = []  # until `synced` is out
            if old is not None and old is not channel:
                old.close(CLOSE_REPLACED)
            if session.state is not sig.ParticipantState.CONNECTED:
                session.state = sig.ParticipantState.CONNECTED
                session.revision += 1
                session.participant = await self._participants.set_status(
                    session.participant, ParticipantStatus.CONNECTED
                )
            try:
                await self._apply_tracks(session, msg.participant)
                answers = await self._descriptions(session, msg.peer_connections)
            except errors.TwilioError:
                await self._leave(session)
                raise
            # `synced` must name every peer connection that lives on: the SDK closes the ones
            # it leaves out. Those with nothing to answer are echoed by id alone.
            answered = {a.id for a in answers}
            answers += tuple(
                sig.PeerConnectionState(id=pc.id)
                for pc in msg.peer_connections
                if pc.id not in answered
            )
            self._broadcast(live, session)
            others = [m for m in live.active() if m is not session]
            synced = sig.Synced(
                participant=sig.ParticipantInfo(
                    sid=session.sid, identity=session.participant.identity
                ),
                participants=tuple(o.remote_state() for o in others),
                peer_connections=answers,
                published=session.published(),
                subscribed=session.subscribed_message(),
                recording=live.recording,
            )
            session.release(synced)
        log.info("signaling resumed participant=%s", session.sid)
        return session, synced

    async def _media_failed(self, session: ParticipantSession, reason: str) -> None:
        """The media transport never came up, or is gone: the participant leaves with 53405
        (the SDK's MediaConnectionError), and the others see its tracks go."""
        if session.ended:
            return
        log.info("media failed participant=%s: %s", session.sid, reason)
        session.send(error_message(errors.Code.MEDIA_CONNECTION_ERROR))
        if session.channel is not None:
            session.channel.close(CLOSE_NORMAL)
        await self._leave(session)

    # -- media signaling ------------------------------------------------------------------

    def _signaling_message(self, session: ParticipantSession, label: str, text: str) -> None:
        received = session.signaling.received(label, text)
        if received is None:
            return
        channel, message = received
        if message.get("type") == "ready" and channel == sig.MspChannel.ACTIVE_SPEAKER:
            # Whoever has been speaking since before this participant came: it heard none
            # of the changes (`dominant_speaker_changed` reaches sessions already there).
            if session.media is not None:
                session.dominant_speaker = session.media.dominant_speaker()
            self._send_dominant_speaker(session)
        elif channel == sig.MspChannel.NETWORK_QUALITY:
            self._network_quality(session, message)
            self._reallocate(session)  # about once a second: bitrates move
        elif channel in (sig.MspChannel.RENDER_HINTS, sig.MspChannel.TRACK_PRIORITY):
            reply = session.switch.message(channel, message)
            if reply is not None:
                session.signaling.send(session.media, channel, reply)
            self._reallocate(session)
        elif channel == sig.MspChannel.PUBLISHER_HINTS:
            if message.get("type") != "ready":
                session.hints.received(message)
            live = self._live.get(session.room.sid)
            if live is not None:
                self._publisher_hints(live)
        elif channel == sig.MspChannel.TRACK_SWITCH_OFF and message.get("type") == "ready":
            self._reallocate(session)
            self._keep_allocating()  # bitrates move: decide again every second

    def send_transcription(self, room_sid: RoomSid, message: Mapping[str, Any]) -> None:
        """A transcription result (services/transcriptions.py) to every participant of the
        room that connected with `receiveTranscriptions` and whose channel is ready."""
        live = self._live.get(room_sid)
        if live is None:
            return
        for member in live.active():
            member.signaling.send(member.media, sig.MspChannel.EXTENSION_TRANSCRIPTIONS, message)

    def _keep_allocating(self) -> None:
        """Start `_reallocate_all` if it is not running."""
        if self._allocator is None:
            self._allocator = asyncio.get_running_loop().create_task(self._reallocate_all())

    async def _reallocate_all(self) -> None:
        """Every `ALLOCATION_INTERVAL`, the allocation of every subscriber with media
        (bitrates, layers and link estimates move); ends when none is left.

        The event loop forwards media between two subscribers' allocations: a round for a
        room of 16 is tens of milliseconds of Python, which in one piece would hold every
        packet arriving meanwhile (the delay's 99th percentile)."""
        try:
            while True:
                await asyncio.sleep(ALLOCATION_INTERVAL)
                sessions = [
                    s for s in self._sessions.values() if s.media is not None and not s.ended
                ]
                if not sessions:
                    return
                rooms: dict[RoomSid, LiveRoom] = {}
                for session in sessions:
                    if session.media is None or session.ended:
                        continue  # left while the round was under way
                    live = self._reallocate(session, hints=False)
                    if live is not None:
                        rooms[live.room.sid] = live
                    await asyncio.sleep(0)
                for live in rooms.values():  # once per room, not once per subscriber
                    if self._live.get(live.room.sid) is live:
                        self._publisher_hints(live)
                        await asyncio.sleep(0)
        finally:
            self._allocator = None

    def _network_quality(self, session: ParticipantSession, message: dict[str, Any]) -> None:
        """A client's network-quality report: one reply each, with its own levels and the
        others' (the client sends its next report a second after the reply)."""
        now = time.monotonic()  # the media plane's clock
        links = session.media.link_reports() if session.media is not None else ()
        if not session.network.report(message, now, links):
            return
        live = self._live.get(session.room.sid)
        members = live.active() if live is not None else []
        others = [(m.sid, m.network) for m in members if m is not session]
        reply = session.network.reply(now, others)
        session.signaling.send(session.media, sig.MspChannel.NETWORK_QUALITY, reply.to_json())

    def _reallocate(self, session: ParticipantSession, *, hints: bool = True) -> LiveRoom | None:
        """Decide which subscribed video tracks are on for `session` and at which simulcast
        layer, stop forwarding the others, and tell the client what changed; then (with
        ``hints``) the room's publishers which layers are watched. Returns the live room
        (None: no media or no room).

        A client that cannot be told of switch-offs (no ``track_switch_off`` channel, or not
        ready yet: the Python SDK, a bot) keeps every track on; it still gets the layer its
        bandwidth profile and its link fit, and the smallest one for a track the allocation
        would switch off."""
        media = session.media
        if media is None:
            return None
        tell = session.signaling.ready(sig.MspChannel.TRACK_SWITCH_OFF)
        live = self._live.get(session.room.sid)
        if live is None:
            return None
        published = {
            t.record.sid: (m, t)
            for m in live.active()
            if m is not session
            for t in m.tracks.values()
            if t.record.kind is TrackKind.VIDEO
        }
        tracks = [
            VideoTrack(
                sid=sid,
                publisher_sid=publisher.sid,
                name=track.record.name,
                priority=track.priority,
                bitrate=publisher.media.published_bitrate(track.id) if publisher.media else 0,
                layers=publisher.hints.layers(
                    sid, publisher.media.published_layers(track.id) if publisher.media else ()
                ),
            )
            for sid in session.subscribed
            if sid in published
            for publisher, track in (published[sid],)
        ]
        speaker = session.dominant_speaker if session.signaling.wants("active_speaker") else None
        available, congested = media.downlink_estimate()
        off, on = session.switch.allocate(
            tracks, speaker, available_bitrate=available, congested=congested
        )
        wire: dict[str, str] = {
            sid: published[sid][1].id for sid in session.subscribed if sid in published
        }
        chosen = dict(session.switch.layers)
        if not tell:
            for track in tracks:
                if track.layers and track.sid not in chosen:
                    chosen[track.sid] = choose_layer(track.layers, render_area=None, bitrate=0)
        media.select_layers({wire[sid]: choice for sid, choice in chosen.items() if sid in wire})
        if tell:
            media.switch_off([wire[sid] for sid in session.switch.off if sid in wire])
            if off or on:
                message = {"type": "track_switch_off", "off": list(off), "on": list(on)}
                if session.signaling.send(media, sig.MspChannel.TRACK_SWITCH_OFF, message):
                    session.switch.reported()
        if hints:
            self._publisher_hints(live)
        return live

    def _publisher_hints(self, live: LiveRoom) -> None:
        """Tell each publisher that asked for hints which simulcast layers of its video
        tracks are watched (`services/publisher_hints.py`): up to the highest layer any
        subscriber is forwarded; a subscriber without an allocation, and a recording of
        the room, take the best."""
        members = live.active()
        for publisher in members:
            media = publisher.media
            if media is None or not publisher.signaling.ready(sig.MspChannel.PUBLISHER_HINTS):
                continue
            needs: dict[str, tuple[int, int]] = {}
            for track in publisher.tracks.values():
                if track.record.kind is not TrackKind.VIDEO:
                    continue
                count = len(media.published_layers(track.id))
                if count < 2:
                    continue
                sid = track.record.sid
                # A recording takes the best layer (media/router.py, the recording tap).
                highest = count - 1 if live.recording.is_recording else -1
                for member in members:
                    if member is publisher or sid not in member.subscribed:
                        continue
                    allocation = member.switch.allocation
                    if allocation is None or not member.signaling.ready(
                        sig.MspChannel.TRACK_SWITCH_OFF
                    ):
                        highest = count - 1
                        break
                    decision = allocation.decision(sid)
                    if decision is not None and decision.on:
                        spatial = member.switch.layers.get(sid, (count - 1, 0))[0]
                        highest = max(highest, spatial)
                needs[sid] = (count, highest)
            message = publisher.hints.update(needs)
            if message is not None:
                publisher.signaling.send(media, sig.MspChannel.PUBLISHER_HINTS, message)

    def _send_dominant_speaker(self, session: ParticipantSession) -> None:
        """`{"type": "active_speaker", "participant": PA… | null}` (the SDK's
        `dominantSpeakerChanged`)."""
        session.signaling.send(
            session.media,
            sig.MspChannel.ACTIVE_SPEAKER,
            {"type": "active_speaker", "participant": session.dominant_speaker},
        )

    # -- recording state (EventSink) ------------------------------------------------------

    async def emit(self, event: Event) -> None:
        """Recordings started or ended: the room's `recording` state follows (the SDK's
        `room.isRecording`, `recordingStarted`, `recordingStopped`)."""
        if isinstance(event, RecordingEvent):
            self.recording_state_changed(event.room_sid)

    def recording_state_changed(self, room_sid: RoomSid) -> None:
        """A room's recordings started or stopped being written (`RecordingService`)."""
        live = self._live.get(room_sid)
        if live is not None:
            self._refresh_recording(live)

    def _refresh_recording(self, live: LiveRoom) -> None:
        now = self._recorder is not None and self._recorder.is_recording(live.room.sid)
        if now == live.recording.is_recording:
            return
        live.recording = sig.Recording(is_recording=now, revision=live.recording.revision + 1)
        for member in live.active():
            member.send(sig.ServerUpdate(recording=live.recording))
        self._publisher_hints(live)  # a recording keeps the best simulcast layers on

    # -- SessionControl port --------------------------------------------------------------

    async def disconnect_participant(self, participant_sid: ParticipantSid, code: int) -> None:
        """Remove a live participant (REST kick, duplicate identity); the caller records it."""
        session = self._by_participant.get(participant_sid)
        if session is None:
            return
        session.send(error_message(code))
        if session.channel is not None:
            session.channel.close(CLOSE_NORMAL)
        live = self._drop(session)
        if live is not None:
            self._broadcast(live, session)
            self._refresh_subscriptions(live)
        log.info("signaling removed participant=%s code=%s", participant_sid, code)

    async def end_room(self, room_sid: RoomSid, code: int) -> None:
        """The room ended: every client gets `disconnected` with status `completed`."""
        live = self._live.pop(room_sid, None)
        if live is None:
            return
        for session in list(live.members.values()):
            session.send(sig.Disconnected(status="completed"))
            if session.channel is not None:
                session.channel.close(CLOSE_NORMAL)
            self._drop(session)

    async def subscribe_rules_changed(self, participant_sid: ParticipantSid) -> None:
        """REST changed a participant's Subscribe Rules: re-evaluate them now."""
        session = self._by_participant.get(participant_sid)
        if session is None:
            return
        session.participant = await self._participants.get(session.room, participant_sid)
        live = self._live.get(session.room.sid)
        if live is not None:
            self._refresh_subscriptions(live)

    # -- subscriptions --------------------------------------------------------------------

    def _refresh_subscriptions(self, live: LiveRoom) -> None:
        """Tell the media plane what each member should receive under its rules.

        REST Subscribe Rules win when set; otherwise the client's own `subscribe` rules
        (include/exclude all) apply. A participant never receives its own tracks.
        """
        members = live.active()
        for member in members:
            if member.media is None:
                continue
            refs: list[TrackRef] = []
            descriptors: dict[str, TrackDescriptor] = {}
            for other in members:
                if other is member:
                    continue
                for track in other.tracks.values():
                    refs.append(
                        TrackRef(
                            sid=track.record.sid,
                            name=track.record.name,
                            kind=track.record.kind.value,
                            publisher_sid=other.sid,
                            publisher_identity=other.participant.identity,
                        )
                    )
                    descriptors[track.record.sid] = TrackDescriptor(
                        sid=track.record.sid,
                        id=track.id,
                        kind=track.record.kind.value,
                        publisher_sid=other.sid,
                    )
            rules = member.participant.subscribe_rules or member.client_rules
            chosen = evaluate(rules, refs)
            member.media.set_subscriptions(
                [descriptors[sid] for sid in descriptors if sid in chosen]
            )
            self._reallocate(member, hints=False)  # publishers' priorities may have changed
        # Who watches what may have changed without any allocation (the last subscriber
        # left, or rules dropped a track): publishers hear it.
        self._publisher_hints(live)

    def _subscriptions_changed(
        self, session: ParticipantSession, subscribed: dict[TrackSid, str]
    ) -> None:
        """The media plane now delivers `subscribed`: record it for REST, then tell the
        client (so that what the client sees, REST already lists)."""
        if subscribed == session.subscribed:
            return
        added = [sid for sid in subscribed if sid not in session.subscribed]
        removed = [sid for sid in session.subscribed if sid not in subscribed]
        session.subscribed = subscribed
        session.subscribed_revision += 1
        update = sig.ServerUpdate(subscribed=session.subscribed_message())
        self._reallocate(session)
        self._keep_allocating()
        live = self._live.get(session.room.sid)
        if live is not None and removed:
            self._publisher_hints(live)  # an unsubscribed track may be watched by nobody now
        records = {
            t.record.sid: t.record
            for m in self.live_participants(session.room.sid)
            for t in m.tracks.values()
        }
        self._spawn(
            self._record_subscriptions(
                session, [records[s] for s in added if s in records], removed, update
            )
        )

    async def _record_subscriptions(
        self,
        session: ParticipantSession,
        added: list[PublishedTrack],
        removed: list[TrackSid],
        update: sig.ServerUpdate,
    ) -> None:
        async with session.recording_subscriptions:  # in order: updates go out in order
            try:
                for track in added:
                    await self._participants.subscribe(session.participant, track)
                for sid in removed:
                    await self._participants.unsubscribe(session.participant, sid)
            finally:
                if not session.ended:
                    session.send(update)

    # -- background work and shutdown -----------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("live-room task failed", exc_info=task.exception())

    async def close(self) -> None:
        """Server shutdown: every session ends here (sockets closed with 1012, participants
        leave with their callbacks), since no other node holds their live state."""
        for session in list(self._sessions.values()):
            if session.channel is not None:
                session.channel.close(CLOSE_RESTART)
                session.channel = None
            try:
                await self._leave(session)
            except Exception:
                log.exception("leave at shutdown failed participant=%s", session.sid)
        if self._allocator is not None:
            self._allocator.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
