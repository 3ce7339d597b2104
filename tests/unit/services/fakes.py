"""Fakes shared by the service tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from parlour.domain.events import Event


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
