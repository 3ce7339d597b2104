"""Live rooms: who is connected over which signaling session, and what they publish.

The hub is the server half of Room Signaling Protocol v2 above the socket: it turns
`connect`/`update`/`sync`/`disconnect` into service calls, keeps each participant's
revisioned state, and fans changes out to the other participants of the room. It also
implements the `SessionControl` port, so REST actions (kick, end room) reach live clients.

Participant state that others see carries a revision that increases on every change; the
SDK ignores anything not newer (signaling-protocol.md §3.6).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from parlour.domain import errors
from parlour.domain.participants import Participant, ParticipantStatus
from parlour.domain.ports import (
    MediaListener,
    MediaPlane,
    MediaSession,
    Recorder,
    TrackDescriptor,
    TrackTap,
)
from parlour.domain.rooms import Room
from parlour.domain.rules import DEFAULT_SUBSCRIBE_RULES, Rule, TrackRef, evaluate
from parlour.domain.sids import AccountSid, ParticipantSid, RoomSid, TrackSid
from parlour.domain.tracks import PublishedTrack, TrackKind
from parlour.protocol import signaling as sig
from parlour.protocol.tokens import AccessToken, TokenError
from parlour.services.accounts import AccountService
from parlour.services.participants import ParticipantService
from parlour.services.rooms import RoomService

__all__ = ["NullMediaPlane", "Outbox", "ParticipantSession", "SignalingError", "SignalingHub"]

log = logging.getLogger(__name__)

MAX_TRACK_NAME = 128
TRACK_NAME_TOO_LONG = 53302
TRACK_NAME_DUPLICATED = 53304
TRACK_KIND_NOT_SUPPORTED = 53125
MAX_TRACKS_EXCEEDED = 53203
SESSION_UNKNOWN = 53001


class SignalingError(Exception):
    """Ends a signaling exchange with a Twilio error code sent to the client."""

    def __init__(self, code: int, message: str | None = None) -> None:
        self.code = code
        self.message = message or sig.ERROR_MESSAGES.get(code, "Signaling error")
        super().__init__(f"{code}: {self.message}")

    @classmethod
    def of(cls, exc: errors.TwilioError | TokenError) -> SignalingError:
        return cls(exc.code, exc.message)


class Outbox(Protocol):
    """The sending side of one signaling connection."""

    def send(self, message: sig.RspMessage) -> None:
        """Queue an RSP message (wrapped in a TCMP `msg`)."""
        ...

    def close(self, code: int) -> None:
        """Close the WebSocket with this close code after queued messages."""
        ...


class _NullSession:
    async def client_description(
        self, pc_id: str, kind: str, revision: int, sdp: str, track_ids: Iterable[str]
    ) -> str | None:
        return None

    def set_subscriptions(self, tracks: Iterable[TrackDescriptor]) -> None:
        return None

    def published_codec(self, track_id: str) -> tuple[str, tuple[int, ...]] | None:
        return None

    def attach_tap(self, track_id: str, tap: TrackTap) -> None:
        return None

    def request_keyframe(self, track_id: str) -> None:
        return None

    def close(self) -> None:
        return None


class NullMediaPlane:
    """No SFU attached: descriptions are accepted and left unanswered, nothing is delivered."""

    def open_session(
        self,
        room_sid: RoomSid,
        participant_sid: ParticipantSid,
        listener: MediaListener,
        video_codecs: Iterable[str],
    ) -> MediaSession:
        return _NullSession()


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


@dataclass
class ParticipantSession:
    """A participant's signaling session; it outlives a dropped socket for session_timeout."""

    token: str
    room: Room
    participant: Participant
    media: MediaSession
    outbox: Outbox | None
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

    @property
    def sid(self) -> ParticipantSid:
        return self.participant.sid

    def remote_state(self) -> sig.RemoteParticipantState:
        """How the other participants see this one."""
        disconnected = self.state is sig.ParticipantState.DISCONNECTED
        return sig.RemoteParticipantState(
            sid=self.sid,
            identity=self.participant.identity,
            state=self.state,
            revision=self.revision,
            tracks=() if disconnected else tuple(t.remote_state() for t in self.tracks.values()),
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
        if self.outbox is not None:
            self.outbox.send(message)

    def subscribed_message(self) -> sig.Subscribed:
        return sig.Subscribed(
            revision=self.subscribed_revision,
            tracks=tuple(sig.SubscribedTrack(sid=s, id=i) for s, i in self.subscribed.items()),
        )


class _Listener:
    """The media plane's way back to one participant's signaling session."""

    def __init__(self, hub: SignalingHub, session_ref: list[ParticipantSession]) -> None:
        self._hub = hub
        self._ref = session_ref

    def send_offer(self, pc_id: str, revision: int, sdp: str) -> None:
        if self._ref:
            desc = sig.SessionDescription(type=sig.SdpType.OFFER, revision=revision, sdp=sdp)
            self._ref[0].send(
                sig.ServerUpdate(
                    peer_connections=(sig.PeerConnectionState(id=pc_id, description=desc),)
                )
            )

    def subscriptions_changed(self, subscribed: Iterable[tuple[TrackSid, str]]) -> None:
        if self._ref:
            self._hub._subscriptions_changed(self._ref[0], dict(subscribed))


@dataclass
class LiveRoom:
    room: Room
    members: dict[ParticipantSid, ParticipantSession] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class SignalingHub:
    """All live signaling sessions of this server.

    Args:
        session_timeout: seconds a session survives a dropped socket (sent to clients too).
        auto_create_rooms: create a room on first connect, as Twilio does by default.
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
        media_region: str = "local",
        recorder: Recorder | None = None,
    ) -> None:
        self._accounts = accounts
        self._rooms = rooms
        self._participants = participants
        self._media = media
        self.session_timeout = session_timeout
        self._auto_create = auto_create_rooms
        self._media_region = media_region
        self._recorder = recorder
        self._live: dict[RoomSid, LiveRoom] = {}
        self._sessions: dict[str, ParticipantSession] = {}
        self._by_participant: dict[ParticipantSid, ParticipantSession] = {}

    # -- queries --------------------------------------------------------------------------

    def session(self, token: str) -> ParticipantSession | None:
        return self._sessions.get(token)

    def live_participants(self, room_sid: RoomSid) -> list[ParticipantSession]:
        live = self._live.get(room_sid)
        return list(live.members.values()) if live else []

    # -- connect --------------------------------------------------------------------------

    async def verify(self, token: str) -> AccessToken:
        try:
            return await self._accounts.verify_access_token(token)
        except TokenError as exc:
            raise SignalingError.of(exc) from None

    async def connect(self, outbox: Outbox, msg: sig.Connect) -> sig.Connected:
        """A client joins: token, room, participant, tracks; returns its `connected`.

        Raises:
            SignalingError: with the Twilio code to send back (20101–20107, 531xx, 532xx).
        """
        claims = await self.verify(msg.token)
        account = AccountSid(claims.account_sid)
        grant_room = claims.video.room if claims.video else None
        name = msg.name or grant_room
        if not name:
            raise SignalingError(errors.ROOM_NAME_INVALID, "Room name is invalid")
        try:
            room = await self._rooms.for_join(account, name, auto_create=self._auto_create)
        except errors.TwilioError as exc:
            raise SignalingError.of(exc) from None
        if grant_room is not None and grant_room not in (room.unique_name, room.sid):
            raise SignalingError(20106, "Access Token does not grant access to this Room")
        live = self._live.setdefault(room.sid, LiveRoom(room))
        async with live.lock:
            identity = claims.identity or ""
            try:
                participant = await self._participants.join(room, identity)
            except errors.TwilioError as exc:
                raise SignalingError.of(exc) from None
            ref: list[ParticipantSession] = []
            session = ParticipantSession(
                token="SE" + secrets.token_hex(16),
                room=room,
                participant=participant,
                media=self._media.open_session(
                    room.sid, participant.sid, _Listener(self, ref), room.video_codecs
                ),
                outbox=outbox,
            )
            ref.append(session)
            if msg.subscribe is not None and msg.subscribe.rules:
                session.client_rules = (
                    tuple(Rule(type=r.type, all=True) for r in msg.subscribe.rules if r.all)
                    or DEFAULT_SUBSCRIBE_RULES
                )
            others = list(live.members.values())
            live.members[participant.sid] = session
            self._sessions[session.token] = session
            self._by_participant[participant.sid] = session
            await self._apply_tracks(session, msg.participant)
            try:
                answers = await self._descriptions(session, msg.peer_connections)
            except errors.TwilioError as exc:
                self._drop(session)
                await self._participants.leave(room, participant)
                raise SignalingError.of(exc) from None
            for other in others:
                other.send(sig.ServerUpdate(participants=(session.remote_state(),)))
            self._refresh_subscriptions(live)
        log.info("signaling connected participant=%s room=%s", participant.sid, room.sid)
        return sig.Connected(
            session=session.token,
            sid=room.sid,
            name=room.unique_name,
            participant=sig.ParticipantInfo(sid=participant.sid, identity=participant.identity),
            options=sig.ConnectedOptions(
                session_timeout=self.session_timeout,
                media_region=self._media_region,
                signaling_region=self._media_region,
                audio_processors=("krisp",),
            ),
            participants=tuple(o.remote_state() for o in others),
            peer_connections=answers,
            published=session.published(),
            subscribed=session.subscribed_message(),
            recording=sig.Recording(is_recording=False, revision=1),
            media_signaling={},
        )

    # -- updates --------------------------------------------------------------------------

    async def update(self, session: ParticipantSession, msg: sig.ClientUpdate) -> None:
        """A client `update`: new participant state and/or peer-connection descriptions."""
        live = self._live.get(session.room.sid)
        if live is None or session.state is sig.ParticipantState.DISCONNECTED:
            return
        async with live.lock:
            changed = False
            if msg.participant is not None:
                changed = await self._apply_tracks(session, msg.participant)
            try:
                answers = await self._descriptions(session, msg.peer_connections or ())
            except errors.TwilioError as exc:
                raise SignalingError.of(exc) from None
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
        track_ids = list(session.tracks)
        for pc in pcs:
            desc = pc.description
            if desc is None or desc.sdp is None:
                continue
            answer = await session.media.client_description(
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
        if self._recorder is None:
            return
        for track in session.tracks.values():
            if track.tapped:
                continue
            negotiated = session.media.published_codec(track.id)
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
                request_keyframe=functools.partial(session.media.request_keyframe, track.id),
            )
            if tap is not None:
                session.media.attach_tap(track.id, tap)

    async def _apply_tracks(
        self, session: ParticipantSession, state: sig.LocalParticipantState
    ) -> bool:
        """Diff the client's full track list against ours. Returns whether anything changed."""
        if state.revision <= session.client_revision:
            return False
        session.client_revision = state.revision
        changed = False
        wanted = {t.id: t for t in state.tracks}
        for track_id in [i for i in session.tracks if i not in wanted]:
            live_track = session.tracks.pop(track_id)
            await self._participants.unpublish(session.participant, live_track.record)
            changed = True
        for track_id in [i for i in session.failed_tracks if i not in wanted]:
            del session.failed_tracks[track_id]
        names = {t.record.name for t in session.tracks.values()}
        for track in state.tracks:
            current = session.tracks.get(track.id)
            if current is not None:
                if current.record.enabled != track.enabled:
                    current.record = await self._participants.set_track_enabled(
                        session.participant, current.record, track.enabled
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
                session.failed_tracks[track.id] = sig.ErrorInfo.for_code(error)
                changed = True
                continue
            record = await self._participants.publish(
                session.participant, track.name, TrackKind(track.kind.value), track.enabled
            )
            session.tracks[track.id] = LiveTrack(track.id, record, track.priority.value)
            names.add(track.name)
            changed = True
        if changed:
            session.revision += 1
        return changed

    def _publish_error(
        self, session: ParticipantSession, track: sig.LocalTrackState, names: set[str]
    ) -> int | None:
        if len(track.name) > MAX_TRACK_NAME:
            return TRACK_NAME_TOO_LONG
        if track.name in names:
            return TRACK_NAME_DUPLICATED
        if session.room.audio_only and track.kind is sig.TrackKind.VIDEO:
            return TRACK_KIND_NOT_SUPPORTED
        cap = session.room.max_concurrent_published_tracks
        published = sum(len(m.tracks) for m in self.live_participants(session.room.sid))
        if cap and published >= cap:
            return MAX_TRACKS_EXCEEDED
        return None

    def _broadcast(self, live: LiveRoom, changed: ParticipantSession) -> None:
        state = changed.remote_state()
        for member in live.members.values():
            if member is not changed:
                member.send(sig.ServerUpdate(participants=(state,)))

    # -- leaving, dropping, resuming ------------------------------------------------------

    async def disconnect(self, session: ParticipantSession) -> None:
        """The client left (`disconnect`), or its session expired."""
        if session.state is sig.ParticipantState.DISCONNECTED:
            return
        self._drop(session)
        live = self._live.get(session.room.sid)
        await self._participants.leave(session.room, session.participant)
        if live is not None:
            async with live.lock:
                self._broadcast(live, session)
                self._refresh_subscriptions(live)
        log.info("signaling disconnected participant=%s room=%s", session.sid, session.room.sid)

    def _drop(self, session: ParticipantSession) -> None:
        """Forget a session locally and mark it disconnected for everyone else."""
        session.state = sig.ParticipantState.DISCONNECTED
        session.revision += 1
        if session.expiry is not None:
            session.expiry.cancel()
            session.expiry = None
        session.media.close()
        self._sessions.pop(session.token, None)
        self._by_participant.pop(session.sid, None)
        live = self._live.get(session.room.sid)
        if live is not None:
            live.members.pop(session.sid, None)
            # A join holding the lock may be about to add a member: keep the room then.
            if not live.members and not live.lock.locked():
                del self._live[session.room.sid]

    async def connection_lost(self, session: ParticipantSession, outbox: Outbox) -> None:
        """The socket dropped without `disconnect`: keep the session for session_timeout."""
        if session.outbox is not outbox or session.state is sig.ParticipantState.DISCONNECTED:
            return
        session.outbox = None
        session.state = sig.ParticipantState.RECONNECTING
        session.revision += 1
        session.participant = await self._participants.set_status(
            session.participant, ParticipantStatus.RECONNECTING
        )
        live = self._live.get(session.room.sid)
        if live is not None:
            self._broadcast(live, session)
        loop = asyncio.get_running_loop()
        session.expiry = loop.call_later(self.session_timeout, self._expire, session)
        log.info("signaling reconnecting participant=%s", session.sid)

    def _expire(self, session: ParticipantSession) -> None:
        session.expiry = None
        if session.outbox is None and session.state is sig.ParticipantState.RECONNECTING:
            task = asyncio.get_running_loop().create_task(self.disconnect(session))
            task.add_done_callback(_log_failure)

    async def sync(self, outbox: Outbox, msg: sig.Sync) -> tuple[ParticipantSession, sig.Synced]:
        """Resume a session on a new socket; returns the full-state `synced`.

        Raises:
            SignalingError: 53001 for an unknown or expired session, or a token error.
        """
        session = self._sessions.get(msg.session)
        if session is None:
            raise SignalingError(SESSION_UNKNOWN, "Signaling session not found or expired")
        claims = await self.verify(msg.token)
        if claims.identity != session.participant.identity or (
            claims.account_sid != session.room.account_sid
        ):
            raise SignalingError(20106, "Access Token does not match the session")
        live = self._live[session.room.sid]
        async with live.lock:
            if session.expiry is not None:
                session.expiry.cancel()
                session.expiry = None
            old = session.outbox
            session.outbox = outbox
            if old is not None and old is not outbox:
                old.close(4000)
            if session.state is not sig.ParticipantState.CONNECTED:
                session.state = sig.ParticipantState.CONNECTED
                session.revision += 1
                session.participant = await self._participants.set_status(
                    session.participant, ParticipantStatus.CONNECTED
                )
            await self._apply_tracks(session, msg.participant)
            answers = await self._descriptions(session, msg.peer_connections)
            # `synced` must name every peer connection that lives on: the SDK closes the ones
            # it leaves out. Those with nothing to answer are echoed by id alone.
            answered = {a.id for a in answers}
            answers += tuple(
                sig.PeerConnectionState(id=pc.id)
                for pc in msg.peer_connections
                if pc.id not in answered
            )
            self._broadcast(live, session)
            others = [m for m in live.members.values() if m is not session]
            synced = sig.Synced(
                participant=sig.ParticipantInfo(
                    sid=session.sid, identity=session.participant.identity
                ),
                participants=tuple(o.remote_state() for o in others),
                peer_connections=answers,
                published=session.published(),
                subscribed=session.subscribed_message(),
                recording=sig.Recording(is_recording=False, revision=1),
            )
        log.info("signaling resumed participant=%s", session.sid)
        return session, synced

    # -- SessionControl port --------------------------------------------------------------

    async def disconnect_participant(self, participant_sid: ParticipantSid, code: int) -> None:
        """Remove a live participant (REST kick, duplicate identity); the service records it."""
        session = self._by_participant.get(participant_sid)
        if session is None:
            return
        session.send(sig.ErrorMessage.for_code(code))
        if session.outbox is not None:
            session.outbox.close(1000)
        live = self._live.get(session.room.sid)
        self._drop(session)
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
            if session.outbox is not None:
                session.outbox.close(1000)
            self._drop(session)

    async def subscribe_rules_changed(self, participant_sid: ParticipantSid) -> None:
        """REST changed a participant's Subscribe Rules: re-evaluate them now."""
        session = self._by_participant.get(participant_sid)
        if session is None:
            return
        fresh = await self._participants.get(session.room, participant_sid)
        session.participant = fresh
        live = self._live.get(session.room.sid)
        if live is not None:
            self._refresh_subscriptions(live)

    # -- subscriptions --------------------------------------------------------------------

    def _refresh_subscriptions(self, live: LiveRoom) -> None:
        """Tell the media plane what each member should receive under its rules.

        REST Subscribe Rules win when set; otherwise the client's own `subscribe` rules
        (include/exclude all) apply. A participant never receives its own tracks.
        """
        members = [
            m for m in live.members.values() if m.state is not sig.ParticipantState.DISCONNECTED
        ]
        for member in members:
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

    def _subscriptions_changed(
        self, session: ParticipantSession, subscribed: dict[TrackSid, str]
    ) -> None:
        """The media plane now delivers `subscribed`: tell the client and record it for REST."""
        if subscribed == session.subscribed:
            return
        added = [sid for sid in subscribed if sid not in session.subscribed]
        removed = [sid for sid in session.subscribed if sid not in subscribed]
        session.subscribed = subscribed
        session.subscribed_revision += 1
        session.send(sig.ServerUpdate(subscribed=session.subscribed_message()))
        records = {
            t.record.sid: t.record
            for m in self.live_participants(session.room.sid)
            for t in m.tracks.values()
        }
        task = asyncio.get_running_loop().create_task(
            self._record_subscriptions(
                session, [records[s] for s in added if s in records], removed
            )
        )
        task.add_done_callback(_log_failure)

    async def _record_subscriptions(
        self, session: ParticipantSession, added: list[PublishedTrack], removed: list[TrackSid]
    ) -> None:
        for track in added:
            await self._participants.subscribe(session.participant, track)
        for sid in removed:
            await self._participants.unsubscribe(session.participant, sid)

    async def close(self) -> None:
        """Server shutdown: close sockets with 1012 so clients resume elsewhere/later."""
        for session in list(self._sessions.values()):
            if session.expiry is not None:
                session.expiry.cancel()
            if session.outbox is not None:
                session.outbox.close(1012)
            session.media.close()


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("signaling task failed", exc_info=task.exception())
