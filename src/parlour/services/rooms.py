"""Rooms: create, fetch, list, end, and the empty/unused-room timeouts.

A room ends once: `Store.complete_room` is one conditional write, and only the caller that
made it sends `room-ended`. Whatever else happens at the same moment (a REST completion, the
last participant leaving, the idle reaper on this or another node), a completed room stays
completed.
"""

from __future__ import annotations

import asyncio
import logging

from parlour.domain import errors
from parlour.domain.clock import Clock
from parlour.domain.events import RoomCreated, RoomEnded
from parlour.domain.paging import Page, PageRequest
from parlour.domain.ports import (
    EventSink,
    Recorder,
    RoomFilter,
    SessionControl,
    StatusCallbackPolicy,
    Store,
)
from parlour.domain.rooms import Room, RoomSpec, RoomStatus, validate_room_spec
from parlour.domain.rules import Rule, parse_rules
from parlour.domain.sids import AccountSid, RoomSid, is_sid, new_sid
from parlour.services.participants import ParticipantService

__all__ = ["RoomService"]

log = logging.getLogger(__name__)


class RoomService:
    """Room use cases.

    Args:
        timeout_minute: seconds per minute of Empty/UnusedRoomTimeout (60; tests shrink it).
        callback_policy: refuses StatusCallback URLs that webhooks must never reach (53111).
        recorder: told when a room's recording rules change, to start and stop recordings.
        participants: participants still in an ending room leave through it, with the same
            events as any other leave.
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        events: EventSink,
        sessions: SessionControl,
        participants: ParticipantService,
        *,
        timeout_minute: float = 60.0,
        callback_policy: StatusCallbackPolicy | None = None,
        recorder: Recorder | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._events = events
        self._sessions = sessions
        self._participants = participants
        self._minute = timeout_minute
        self._callback_policy = callback_policy
        self._recorder = recorder

    async def create(self, account_sid: AccountSid, spec: RoomSpec) -> Room:
        room = validate_room_spec(
            spec,
            sid=RoomSid(new_sid("RM")),
            account_sid=account_sid,
            now=self._clock.now(),
        )
        if room.status_callback is not None and self._callback_policy is not None:
            self._callback_policy.check(room.status_callback)
        await self._store.insert_room(room)
        log.info("room created sid=%s account=%s type=%s", room.sid, account_sid, room.type)
        await self._events.emit(RoomCreated(room=room, timestamp=self._clock.now()))
        return room

    async def get(self, account_sid: AccountSid, sid_or_name: str) -> Room:
        """A room by SID or (in-progress) UniqueName; 20404 if this account has none."""
        room = await self._store.get_room(account_sid, sid_or_name)
        if room is None:
            raise errors.NotFoundError.for_path(f"/Rooms/{sid_or_name}")
        return room

    async def lookup(self, account_sid: AccountSid, sid_or_name: str) -> Room | None:
        """A room by SID or (in-progress) UniqueName, or None."""
        return await self._store.get_room(account_sid, sid_or_name)

    async def for_join(
        self, account_sid: AccountSid, name: str, *, auto_create: bool = True
    ) -> Room:
        """The in-progress room a client joins by name or SID, created ad hoc if allowed.

        Raises:
            RoomError: 53106 no such room (and creation not allowed), 53118 room completed,
                or the create validation codes (53100–53102) for a bad ad-hoc name.
        """
        room = await self._store.get_room(account_sid, name)
        if room is not None:
            if not room.in_progress:
                raise errors.RoomError(code=errors.Code.ROOM_COMPLETED)
            return room
        if is_sid(name, "RM") or not auto_create:
            raise errors.RoomError(code=errors.Code.ROOM_NOT_FOUND)
        try:
            return await self.create(account_sid, RoomSpec(unique_name=name))
        except errors.RoomError as exc:
            if exc.code != errors.Code.ROOM_EXISTS:
                raise
        room = await self._store.get_room(account_sid, name)  # created concurrently
        if room is None:  # pragma: no cover - ended in between
            raise errors.RoomError(code=errors.Code.ROOM_NOT_FOUND)
        return room

    async def for_join_unnamed(self, account_sid: AccountSid, *, auto_create: bool) -> Room:
        """A client connects naming no room (neither in its options nor in its grant): a new
        group room named by its SID, when rooms may be created on the fly (53106 if not)."""
        if not auto_create:
            raise errors.RoomError(code=errors.Code.ROOM_NOT_FOUND)
        return await self.create(account_sid, RoomSpec())

    async def find(self, account_sid: AccountSid, flt: RoomFilter, req: PageRequest) -> Page[Room]:
        return await self._store.list_rooms(account_sid, flt, req)

    async def update_status(self, account_sid: AccountSid, sid_or_name: str, status: str) -> Room:
        """REST `Status=completed` ends the room; anything else is 53112."""
        room = await self.get(account_sid, sid_or_name)
        if status != RoomStatus.COMPLETED.value or not room.in_progress:
            raise errors.RoomError(code=errors.Code.ROOM_STATUS_INVALID)
        ended = await self.end(room)
        if ended is None:  # someone else completed it at the same moment
            return await self.get(account_sid, room.sid)
        return ended

    async def end(self, room: Room) -> Room | None:
        """Complete a room: disconnect everyone, record end time and duration.

        Everyone still in the room leaves first, as they would on their own: `track-removed`
        for each published track, then `participant-disconnected`, then `room-ended`.
        Returns the completed room, or None if it was not in progress (ended by another).
        """
        if not room.in_progress:
            return None
        await self._disconnect_everyone(room)
        ended = await self._store.complete_room(room.sid, self._clock.now())
        if ended is None:
            return None
        await self._disconnect_everyone(room)  # anyone who joined while it was ending
        log.info("room ended sid=%s duration=%s", room.sid, ended.duration)
        await self._events.emit(RoomEnded(room=ended, timestamp=self._clock.now()))
        return ended

    async def update_recording_rules(
        self, account_sid: AccountSid, sid_or_name: str, rules_json: str | None
    ) -> Room:
        """Replace the room's recording rules (53120 if invalid; the old rules stay) and
        start or stop recordings to match them."""
        room = await self.get(account_sid, sid_or_name)
        if rules_json is None:
            raise errors.RecordingRulesError("Invalid Recording Rule(s): Rules is required")
        rules: tuple[Rule, ...] = parse_rules(rules_json, kind="recording")
        updated = await self._store.set_recording_rules(room.sid, rules, self._clock.now())
        if updated is None:
            raise errors.RoomError(code=errors.Code.ROOM_COMPLETED)
        if self._recorder is not None:
            await self._recorder.recording_rules_changed(updated)
        return updated

    async def sweep_idle(self) -> list[Room]:
        """End every in-progress room whose empty or unused timeout has passed."""
        now = self._clock.now()
        ended = []
        for room in await self._store.idle_rooms():
            deadline = room.idle_deadline(self._minute)
            if deadline is not None and now >= deadline:
                done = await self.end(room)
                if done is not None:
                    ended.append(done)
        return ended

    async def run_reaper(self, interval: float) -> None:
        """Call `sweep_idle` every `interval` seconds until cancelled; errors are logged."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.sweep_idle()
            except Exception:
                log.exception("idle-room sweep failed")

    async def _disconnect_everyone(self, room: Room) -> None:
        await self._sessions.end_room(room.sid, errors.Code.ROOM_COMPLETED)
        for participant in await self._store.active_participants(room.sid):
            await self._participants.leave(room, participant)
