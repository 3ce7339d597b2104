"""Participants and their tracks: REST reads and updates, and the join/leave/publish steps
that the live-rooms service drives.

Every change is one conditional write in the store (`Store.disconnect_participant`, …), so a
participant leaves, and a track ends, exactly once whoever else acts at the same moment; the
caller that made the change sends the events.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TypeVar

from parlour.domain import errors
from parlour.domain.clock import Clock
from parlour.domain.events import (
    ParticipantConnected,
    ParticipantDisconnected,
    TrackAdded,
    TrackDisabled,
    TrackEnabled,
    TrackRemoved,
)
from parlour.domain.paging import Page, PageRequest
from parlour.domain.participants import (
    Participant,
    ParticipantStatus,
    parse_participant_status_update,
    validate_identity,
)
from parlour.domain.ports import EventSink, ParticipantFilter, SessionControl, Store
from parlour.domain.rooms import Room, RoomStatus
from parlour.domain.rules import Rule, parse_rules
from parlour.domain.sids import TrackSid
from parlour.domain.tracks import PublishedTrack, SubscribedTrack, TrackKind

__all__ = ["ParticipantService"]

log = logging.getLogger(__name__)

_Track = TypeVar("_Track", PublishedTrack, SubscribedTrack)


class ParticipantService:
    """Participant use cases.

    Args:
        node_id: this server node; participants that join here belong to it (`Store` nodes).
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        events: EventSink,
        sessions: SessionControl,
        *,
        node_id: str | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._events = events
        self._sessions = sessions
        self.node_id = node_id

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
        participant = await self.get(room, sid_or_identity)
        parse_participant_status_update(status)
        if not participant.active:
            return participant
        await self._sessions.disconnect_participant(
            participant.sid, errors.Code.PARTICIPANT_NOT_FOUND
        )
        return await self.leave(room, participant)

    async def anonymize(self, room: Room, sid_or_identity: str) -> Participant:
        """Replace the identity with the participant SID, for good."""
        participant = await self.get(room, sid_or_identity)
        anonymous = await self._store.anonymize_participant(participant.sid, self._clock.now())
        if anonymous is None:  # pragma: no cover - deleted in between
            raise errors.NotFoundError.for_path(f"/Rooms/{room.sid}/Participants/{sid_or_identity}")
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
        updated = await self._store.set_subscribe_rules(participant.sid, rules, self._clock.now())
        if updated is None:  # pragma: no cover - deleted in between
            raise errors.NotFoundError.for_path(f"/Rooms/{room.sid}/Participants/{sid_or_identity}")
        if updated.active:
            await self._sessions.subscribe_rules_changed(updated.sid)
        return updated

    async def published_track(
        self, room: Room, participant_sid: str, sid_or_name: str
    ) -> PublishedTrack:
        participant = await self.get(room, participant_sid)
        track = await self._store.get_published_track(participant.sid, sid_or_name)
        return self._found(track, room, participant, f"PublishedTracks/{sid_or_name}")

    async def subscribed_track(self, room: Room, participant_sid: str, sid: str) -> SubscribedTrack:
        participant = await self.get(room, participant_sid)
        track = await self._store.get_subscribed_track(participant.sid, sid)
        return self._found(track, room, participant, f"SubscribedTracks/{sid}")

    async def published_tracks(
        self, room: Room, participant_sid: str, req: PageRequest
    ) -> tuple[Participant, Page[PublishedTrack]]:
        participant = await self.get(room, participant_sid)
        return participant, await self._store.list_published_tracks(participant.sid, req)

    async def subscribed_tracks(
        self, room: Room, participant_sid: str, req: PageRequest
    ) -> tuple[Participant, Page[SubscribedTrack]]:
        participant = await self.get(room, participant_sid)
        return participant, await self._store.list_subscribed_tracks(participant.sid, req)

    @staticmethod
    def _found(track: _Track | None, room: Room, participant: Participant, path: str) -> _Track:
        """`track`, or 20404 for `/Rooms/{room}/Participants/{participant}/{path}`."""
        if track is None:
            raise errors.NotFoundError.for_path(
                f"/Rooms/{room.sid}/Participants/{participant.sid}/{path}"
            )
        return track

    # -- driven by the live-rooms service ------------------------------------------------

    async def join(self, room: Room, identity: str) -> Participant:
        """A client connects: checks, duplicate-identity takeover, then `participant-connected`.

        Raises:
            TwilioError: 53118 room completed, 53200/53201 bad identity, 53105 room full.
        """
        if not room.in_progress:
            raise errors.RoomError(code=errors.Code.ROOM_COMPLETED)
        validate_identity(identity)
        active = await self._store.active_participants(room.sid)
        for other in active:
            if other.identity == identity:
                await self._sessions.disconnect_participant(
                    other.sid, errors.Code.PARTICIPANT_DUPLICATE_IDENTITY
                )
                await self.leave(room, other)
        active = [p for p in active if p.identity != identity]
        if len(active) >= room.max_participants:
            raise errors.TwilioError(code=errors.Code.ROOM_MAX_PARTICIPANTS_EXCEEDED)
        now = self._clock.now()
        participant = Participant.joining(
            room.sid, room.account_sid, identity, now, node_id=self.node_id
        )
        await self._store.insert_participant(participant)
        await self._store.set_room_occupied(room.sid, now)
        log.info("participant connected sid=%s room=%s", participant.sid, room.sid)
        await self._events.emit(
            ParticipantConnected(room=room, participant=participant, timestamp=now)
        )
        return participant

    async def leave(self, room: Room, participant: Participant) -> Participant:
        """A participant is gone: its tracks end, and an emptied room starts its timeout.

        Only the caller that disconnects it (one conditional write) sends the events:
        `track-removed` for each track still published, then `participant-disconnected`.
        """
        now = self._clock.now()
        outcome = await self._store.disconnect_participant(participant.sid, now)
        if outcome is None:
            return participant.disconnected(now) if participant.active else participant
        left, tracks = outcome
        for track in tracks:  # removed while it was still there, as Twilio reports them
            await self._events.emit(
                TrackRemoved(room=room, participant=participant, track=track, timestamp=now)
            )
        await self._events.emit(ParticipantDisconnected(room=room, participant=left, timestamp=now))
        await self._store.set_room_empty_if_vacant(room.sid, now)
        log.info(
            "participant disconnected sid=%s room=%s duration=%s",
            left.sid,
            room.sid,
            left.duration,
        )
        return left

    async def set_status(self, participant: Participant, status: ParticipantStatus) -> Participant:
        """`connected` ↔ `reconnecting` while a client's signaling connection is resumed."""
        if not participant.active or participant.status is status:
            return participant
        updated = await self._store.set_participant_status(
            participant.sid, status, self._clock.now()
        )
        return updated or participant

    async def publish(
        self,
        room: Room,
        participant: Participant,
        name: str,
        kind: TrackKind,
        enabled: bool = True,
    ) -> PublishedTrack | None:
        """A new published track; None (nothing recorded, no event) if the participant
        disconnected meanwhile."""
        now = self._clock.now()
        track = PublishedTrack.published(
            participant.room_sid, participant.sid, name, kind, now, enabled=enabled
        )
        if not await self._store.insert_published_track(track):
            return None
        await self._events.emit(
            TrackAdded(room=room, participant=participant, track=track, timestamp=now)
        )
        return track

    async def unpublish(self, room: Room, participant: Participant, track: PublishedTrack) -> None:
        """The client stopped publishing a track: it leaves the lists, subscriptions end."""
        now = self._clock.now()
        ended = await self._store.end_published_track(track.sid, now)
        if ended is not None:
            await self._events.emit(
                TrackRemoved(room=room, participant=participant, track=ended, timestamp=now)
            )

    async def set_track_enabled(
        self, room: Room, participant: Participant, track: PublishedTrack, enabled: bool
    ) -> PublishedTrack:
        """`track-enabled` / `track-disabled`."""
        now = self._clock.now()
        updated = await self._store.set_track_enabled(track.sid, enabled, now)
        if updated is None:
            return replace(track, enabled=enabled)
        event = TrackEnabled if enabled else TrackDisabled
        await self._events.emit(
            event(room=room, participant=participant, track=updated, timestamp=now)
        )
        return updated

    async def unsubscribe(self, subscriber: Participant, track_sid: TrackSid) -> None:
        await self._store.end_subscribed_track(subscriber.sid, track_sid, self._clock.now())

    async def subscribe(self, subscriber: Participant, track: PublishedTrack) -> bool:
        """Record that `subscriber` receives `track`; False if either is gone already."""
        sub = SubscribedTrack.of(track, subscriber.sid, self._clock.now())
        return await self._store.insert_subscribed_track(sub)
