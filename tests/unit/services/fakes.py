"""Fakes shared by the service tests."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

from parlour.domain.events import Event
from parlour.domain.recordings import Recording, RecordingCodec
from parlour.domain.sids import (
    AccountSid,
    ParticipantSid,
    RecordingSid,
    RoomSid,
    TrackSid,
    new_sid,
)


def opus_recording(
    account_sid: AccountSid,
    room_sid: RoomSid,
    participant_sid: ParticipantSid,
    now: dt.datetime,
    *,
    source_sid: TrackSid | None = None,
    track_name: str = "mic",
) -> Recording:
    """A new (processing) Opus recording of a track (`source_sid`, else a new track SID)."""
    return Recording.for_track(
        sid=RecordingSid(new_sid("RT")),
        account_sid=account_sid,
        room_sid=room_sid,
        participant_sid=participant_sid,
        source_sid=source_sid or TrackSid(new_sid("MT")),
        track_name=track_name,
        codec=RecordingCodec.OPUS,
        now=now,
    )


class EventLog:
    """An EventSink that keeps every event, in order."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    async def emit(self, event: Event) -> None:
        self.events.append(event)

    def names(self) -> list[str]:
        return [e.name for e in self.events]

    def of(self, kind: type[Event]) -> list[Event]:
        return [e for e in self.events if isinstance(e, kind)]


class FakeStorage:
    """Recording storage in a dict: tests put objects in `objects`; `put` is not used."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    async def put(self, key: str, source: Path) -> int:
        raise NotImplementedError

    async def size(self, key: str) -> int | None:
        data = self.objects.get(key)
        return None if data is None else len(data)

    async def open(
        self, key: str, start: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        data = self.objects[key]
        yield data[start : None if length is None else start + length]

    async def delete(self, key: str) -> bool:
        return self.objects.pop(key, None) is not None
