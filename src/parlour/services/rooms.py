"""Rooms: create, fetch, list, end, and the empty/unused-room timeouts."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

from parlour.domain import errors
from parlour.domain.clock import Clock
from parlour.domain.events import participant_event, room_event
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

__all__ = ["RoomService"]

log = logging.getLogger(__name__)

#: Code sent to clients when their room is ended ("Room completed").
ROOM_COMPLETED_CODE = errors.ROOM_COMPLETED


class RoomService:
    """Room use cases.

    Args:
        timeout_minute: seconds per minute of Empty/UnusedRoomTimeout (60; tests shrink it).
        callback_policy: refuses StatusCallback URLs that webhooks must never reach (53111).
        recorder: told when a room's recording rules change, to start and stop recordings.
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        events: EventSink,
        sessions: SessionControl,
        *,
        timeout_minute: float = 60.0,
        callback_policy: StatusCallbackPolicy | None = None,
        recorder: Recorder | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._events = events
        self._sessions = sessions
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
        await self._emit("room-created", room)
        return room

    async def get(self, account_sid: AccountSid, sid_or_name: str) -> Room:
        """A room by SID or (in-progress) UniqueName; 20404 if this account has none."""
        room = await self._store.get_room(account_sid, sid_or_name)
        if room is None:
            raise errors.NotFoundError.for_path(f"/Rooms/{sid_or_name}")
        return room

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
                raise errors.RoomError("Room completed", code=errors.ROOM_COMPLETED)
            return room
        if is_sid(name, "RM") or not auto_create:
            raise errors.RoomError("Room not found", code=errors.ROOM_NOT_FOUND)
        try:
            return await self.create(account_sid, RoomSpec(unique_name=name))
        except errors.RoomError as exc:
            if exc.code != errors.ROOM_EXISTS:
                raise
        room = await self._store.get_room(account_sid, name)  # created concurrently
        if room is None:  # pragma: no cover - ended in between
            raise errors.RoomError("Room not found", code=errors.ROOM_NOT_FOUND)
        return room

    async def find(self, account_sid: AccountSid, flt: RoomFilter, req: PageRequest) -> Page[Room]:
        return await self._store.list_rooms(account_sid, flt, req)

    async def update_status(self, account_sid: AccountSid, sid_or_name: str, status: str) -> Room:
        """REST `Status=completed` ends the room; anything else is 53112."""
        room = await self.get(account_sid, sid_or_name)
        if status != RoomStatus.COMPLETED.value or not room.in_progress:
            raise errors.RoomError("Status is invalid", code=errors.ROOM_STATUS_INVALID)
        return await self.end(room)

    async def end(self, room: Room) -> Room:
        """Complete a room: disconnect everyone, record end time and duration.

        Everyone still in the room leaves first, as they would on their own: `track-removed`
        for each published track, then `participant-disconnected`, then `room-ended`.
        """
        now = self._clock.now()
        for participant in await self._store.active_participants(room.sid):
            tracks = await self._store.active_published_tracks(participant.sid)
            left = participant.disconnected(now)
            await self._store.update_participant(left)
            await self._store.end_tracks_of(participant.sid, now)
            for track in tracks:
                await self._events.emit(
                    participant_event("track-removed", participant, now, room=room, track=track)
                )
            await self._events.emit(
                participant_event(
                    "participant-disconnected",
                    left,
                    now,
                    room=room,
                    ParticipantDuration=str(left.duration),
                )
            )
        ended = replace(room.completed(now), empty_since=None)
        await self._store.update_room(ended)
        await self._sessions.end_room(room.sid, ROOM_COMPLETED_CODE)
        log.info("room ended sid=%s duration=%s", room.sid, ended.duration)
        await self._emit("room-ended", ended, RoomDuration=str(ended.duration))
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
        if not room.in_progress:
            raise errors.RoomError("Room completed", code=errors.ROOM_COMPLETED)
        updated = replace(room, recording_rules=rules, recording_rules_updated=self._clock.now())
        await self._store.update_room(updated)
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
                ended.append(await self.end(room))
        return ended

    async def run_reaper(self, interval: float) -> None:
        """Call `sweep_idle` every `interval` seconds until cancelled; errors are logged."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.sweep_idle()
            except Exception:
                log.exception("idle-room sweep failed")

    async def _emit(self, name: str, room: Room, **data: str) -> None:
        await self._events.emit(room_event(name, room, self._clock.now(), **data))
