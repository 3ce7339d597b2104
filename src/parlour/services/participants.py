"""Participants and their tracks: REST reads and updates, and the join/leave/publish steps
that the signaling layer drives."""

from __future__ import annotations

import logging
from dataclasses import replace

from parlour.domain import errors
from parlour.domain.clock import Clock
from parlour.domain.events import participant_event
from parlour.domain.paging import Page, PageRequest
from parlour.domain.participants import (
    MAX_IDENTITY_LENGTH,
    Participant,
    ParticipantStatus,
    parse_participant_status_update,
)
from parlour.domain.ports import EventSink, ParticipantFilter, SessionControl, Store
from parlour.domain.rooms import Room, RoomStatus
from parlour.domain.rules import Rule, parse_rules
from parlour.domain.sids import ParticipantSid, TrackSid, new_sid
from parlour.domain.tracks import PublishedTrack, SubscribedTrack, TrackKind

__all__ = ["ParticipantService"]

log = logging.getLogger(__name__)

MAX_PARTICIPANTS_EXCEEDED = 53105
IDENTITY_INVALID = 53200
IDENTITY_TOO_LONG = 53201
DUPLICATE_IDENTITY = 53205
#: Sent to a participant removed through REST (`Status=disconnected`): "Participant not found".
REMOVED_BY_REST = 53204


class ParticipantService:
    def __init__(
        self, store: Store, clock: Clock, events: EventSink, sessions: SessionControl
    ) -> None:
        self._store = store
        self._clock = clock
        self._events = events
        self._sessions = sessions

    # -- REST -----------------------------------------------------------------------------

    async def get(self, room: Room, sid_or_identity: str) -> Participant:
        participant = await self._store.get_participant(room.sid, sid_or_identity)
        if participant is None:
            raise errors.NotFoundError.for_path(f"/Rooms/{room.sid}/Participants/{sid_or_identity}")
        return participant

    async def find(self, room: Room, flt: ParticipantFilter, req: PageRequest) -> Page[Participant]:
        """Twilio's defaults: `connected` for in-progress rooms, `disconnected` for ended ones."""
        if flt.statuses is None:
            default = (
                ParticipantStatus.CONNECTED
                if room.status is RoomStatus.IN_PROGRESS
                else ParticipantStatus.DISCONNECTED
            )
            flt = replace(flt, statuses=(default,))
        elif room.status is not RoomStatus.IN_PROGRESS:
            flt = replace(
                flt,
                statuses=[s for s in flt.statuses if s is ParticipantStatus.DISCONNECTED],
            )
        return await self._store.list_participants(room.sid, flt, req)

    async def update_status(
        self, room: Room, sid_or_identity: str, status: str | None
    ) -> Participant:
        """REST `Status=disconnected` removes a participant from its room."""
        parse_participant_status_update(status)
        participant = await self.get(room, sid_or_identity)
        if not participant.active:
            return participant
        await self._sessions.disconnect_participant(participant.sid, REMOVED_BY_REST)
        return await self.leave(room, participant)

    async def anonymize(self, room: Room, sid_or_identity: str) -> Participant:
        """Replace the identity with the participant SID, for good."""
        participant = await self.get(room, sid_or_identity)
        anonymous = replace(participant, identity=participant.sid, date_updated=self._clock.now())
        await self._store.update_participant(anonymous)
        log.info("participant anonymized sid=%s room=%s", participant.sid, room.sid)
        return anonymous

    async def subscribe_rules(self, room: Room, sid_or_identity: str) -> Participant:
        return await self.get(room, sid_or_identity)

    async def update_subscribe_rules(
        self, room: Room, sid_or_identity: str, rules_json: str | None
    ) -> Participant:
        """Replace the rules (53215 if invalid; the old rules stay) and apply them live."""
        participant = await self.get(room, sid_or_identity)
        if rules_json is None:
            raise errors.SubscribeRulesError("Invalid Subscribe Rule(s): Rules is required")
        rules: tuple[Rule, ...] = parse_rules(rules_json, kind="subscribe")
        now = self._clock.now()
        updated = replace(
            participant,
            subscribe_rules=rules,
            subscribe_rules_created=participant.subscribe_rules_created or now,
            subscribe_rules_updated=now,
            date_updated=now,
        )
        await self._store.update_participant(updated)
        if updated.active:
            await self._sessions.subscribe_rules_changed(updated.sid)
        return updated

    async def published_track(
        self, room: Room, participant_sid: str, sid_or_name: str
    ) -> PublishedTrack:
        participant = await self.get(room, participant_sid)
        track = await self._store.get_published_track(participant.sid, sid_or_name)
        if track is None:
            raise errors.NotFoundError.for_path(
                f"/Rooms/{room.sid}/Participants/{participant.sid}/PublishedTracks/{sid_or_name}"
            )
        return track

    async def published_tracks(
        self, room: Room, participant_sid: str, req: PageRequest
    ) -> tuple[Participant, Page[PublishedTrack]]:
        participant = await self.get(room, participant_sid)
        return participant, await self._store.list_published_tracks(participant.sid, req)

    async def subscribed_track(self, room: Room, participant_sid: str, sid: str) -> SubscribedTrack:
        participant = await self.get(room, participant_sid)
        track = await self._store.get_subscribed_track(participant.sid, sid)
        if track is None:
            raise errors.NotFoundError.for_path(
                f"/Rooms/{room.sid}/Participants/{participant.sid}/SubscribedTracks/{sid}"
            )
        return track

    async def subscribed_tracks(
        self, room: Room, participant_sid: str, req: PageRequest
    ) -> tuple[Participant, Page[SubscribedTrack]]:
        participant = await self.get(room, participant_sid)
        return participant, await self._store.list_subscribed_tracks(participant.sid, req)

    # -- driven by signaling --------------------------------------------------------------

    async def join(self, room: Room, identity: str) -> Participant:
        """A client connects: checks, duplicate-identity takeover, then `participant-connected`.

        Raises:
            TwilioError: 53118 room completed, 53200/53201 bad identity, 53105 room full.
        """
        if not room.in_progress:
            raise errors.RoomError("Room completed", code=errors.ROOM_COMPLETED)
        if not identity or not identity.strip():
            raise errors.TwilioError("Participant identity is invalid", code=IDENTITY_INVALID)
        if len(identity.encode("utf-16-le")) // 2 > MAX_IDENTITY_LENGTH:
            raise errors.TwilioError("Participant identity is too long", code=IDENTITY_TOO_LONG)
        active = await self._store.active_participants(room.sid)
        for other in active:
            if other.identity == identity:
                await self._sessions.disconnect_participant(other.sid, DUPLICATE_IDENTITY)
                await self.leave(room, other)
        active = [p for p in active if p.identity != identity]
        if len(active) >= room.max_participants:
            raise errors.TwilioError(
                "Room contains too many Participants", code=MAX_PARTICIPANTS_EXCEEDED
            )
        now = self._clock.now()
        participant = Participant(
            sid=ParticipantSid(new_sid("PA")),
            room_sid=room.sid,
            account_sid=room.account_sid,
            identity=identity,
            status=ParticipantStatus.CONNECTED,
            date_created=now,
            date_updated=now,
            start_time=now,
        )
        await self._store.insert_participant(participant)
        current = await self._store.get_room(room.account_sid, room.sid)
        if current is not None and (current.empty_since is not None or not current.ever_joined):
            await self._store.update_room(
                replace(current, empty_since=None, ever_joined=True, date_updated=now)
            )
        log.info("participant connected sid=%s room=%s", participant.sid, room.sid)
        await self._emit("participant-connected", participant, room=room)
        return participant

    async def leave(self, room: Room, participant: Participant) -> Participant:
        """A participant is gone: its tracks end, and an emptied room starts its timeout.

        Tracks still published are removed first (`track-removed` each), then
        `participant-disconnected`.
        """
        now = self._clock.now()
        left = participant.disconnected(now)
        if left is participant:
            return participant
        tracks = await self._store.active_published_tracks(participant.sid)
        await self._store.update_participant(left)
        await self._store.end_tracks_of(participant.sid, now)
        # Events first: a room ending meanwhile then reports this departure before its end.
        for track in tracks:
            await self._emit("track-removed", participant, room=room, track=track)
        await self._emit(
            "participant-disconnected",
            left,
            room=room,
            ParticipantDuration=str(left.duration),
        )
        current = await self._store.get_room(room.account_sid, room.sid)
        if current is not None and current.in_progress:
            if not await self._store.active_participants(room.sid):
                await self._store.update_room(replace(current, empty_since=now, date_updated=now))
        log.info(
            "participant disconnected sid=%s room=%s duration=%s",
            left.sid,
            room.sid,
            left.duration,
        )
        return left

    async def publish(
        self, participant: Participant, name: str, kind: TrackKind, enabled: bool = True
    ) -> PublishedTrack:
        now = self._clock.now()
        track = PublishedTrack(
            sid=TrackSid(new_sid("MT")),
            room_sid=participant.room_sid,
            participant_sid=participant.sid,
            name=name,
            kind=kind,
            enabled=enabled,
            date_created=now,
            date_updated=now,
        )
        await self._store.insert_published_track(track)
        await self._emit("track-added", participant, track=track)
        return track

    async def set_status(self, participant: Participant, status: ParticipantStatus) -> Participant:
        """`connected` ↔ `reconnecting` while a client's signaling connection is resumed."""
        if not participant.active or participant.status is status:
            return participant
        updated = replace(participant, status=status, date_updated=self._clock.now())
        await self._store.update_participant(updated)
        return updated

    async def unpublish(self, participant: Participant, track: PublishedTrack) -> None:
        """The client stopped publishing a track: it leaves the lists, subscriptions end."""
        now = self._clock.now()
        await self._store.update_published_track(replace(track, ended_at=now, date_updated=now))
        await self._store.end_subscriptions_to(track.sid, now)
        await self._emit("track-removed", participant, track=track)

    async def set_track_enabled(
        self, participant: Participant, track: PublishedTrack, enabled: bool
    ) -> PublishedTrack:
        """`track-enabled` / `track-disabled`."""
        if track.enabled == enabled:
            return track
        updated = replace(track, enabled=enabled, date_updated=self._clock.now())
        await self._store.update_published_track(updated)
        await self._emit(
            "track-enabled" if enabled else "track-disabled", participant, track=updated
        )
        return updated

    async def unsubscribe(self, subscriber: Participant, track_sid: TrackSid) -> None:
        await self._store.end_subscribed_track(subscriber.sid, track_sid, self._clock.now())

    async def subscribe(self, subscriber: Participant, track: PublishedTrack) -> SubscribedTrack:
        now = self._clock.now()
        sub = SubscribedTrack(
            sid=track.sid,
            room_sid=track.room_sid,
            participant_sid=subscriber.sid,
            publisher_sid=track.participant_sid,
            name=track.name,
            kind=track.kind,
            enabled=track.enabled,
            date_created=now,
            date_updated=now,
        )
        await self._store.insert_subscribed_track(sub)
        return sub

    async def _emit(
        self,
        name: str,
        participant: Participant,
        *,
        room: Room | None = None,
        track: PublishedTrack | None = None,
        **data: str,
    ) -> None:
        await self._events.emit(
            participant_event(name, participant, self._clock.now(), room=room, track=track, **data)
        )
