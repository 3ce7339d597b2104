"""A room's dominant speaker, as mediasoup's ActiveSpeakerObserver gives it.

Every published audio track with the audio-level header extension (RFC 6464) feeds its
levels in (`level`, per packet, cheap); every `interval` while anyone publishes audio, the
dominant-speaker algorithm of `media.speakers` decides, and each change goes to the
observers (each peer of the room, which tells its participant over the `active_speaker`
media-signaling channel). The timer runs only while there is audio to watch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable

from parlour.media.speakers import DominantSpeaker

__all__ = ["ActiveSpeakerObserver"]

log = logging.getLogger(__name__)

SpeakerObserver = Callable[[str | None], None]


class ActiveSpeakerObserver:
    """Which publisher of one room speaks, decided every `interval` seconds."""

    def __init__(self, *, interval: float = 0.3) -> None:
        self._speakers = DominantSpeaker(interval=interval)
        self._interval = interval
        self._producers: Counter[str] = Counter()  # audio tracks per publisher
        self._observers: list[SpeakerObserver] = []
        self._timer: asyncio.TimerHandle | None = None

    @property
    def dominant(self) -> str | None:
        return self._speakers.dominant

    @property
    def observers(self) -> int:
        return len(self._observers)

    def observe(self, observer: SpeakerObserver) -> None:
        self._observers.append(observer)

    def unobserve(self, observer: SpeakerObserver) -> None:
        if observer in self._observers:
            self._observers.remove(observer)

    def add_producer(self, publisher_sid: str) -> None:
        """An audio track with audio levels is published."""
        self._producers[publisher_sid] += 1
        self._speakers.add(publisher_sid)
        if self._timer is None:
            self._schedule()

    def remove_producer(self, publisher_sid: str) -> None:
        """That track is gone; its publisher stops counting with its last audio track."""
        self._producers[publisher_sid] -= 1
        if self._producers[publisher_sid] > 0:
            return
        del self._producers[publisher_sid]
        if self._speakers.remove(publisher_sid, time.monotonic()):
            self._notify()
        if not self._producers and self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def level(self, publisher_sid: str, level: int) -> None:
        """One packet's audio level (0 loudest … 127 silence, -dBov). Hot path."""
        self._speakers.level(publisher_sid, level, time.monotonic())

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._observers.clear()

    def _schedule(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (pure unit tests of the router): nothing to decide
            return
        self._timer = loop.call_later(self._interval, self._tick)

    def _tick(self) -> None:
        self._timer = None
        if not self._producers:
            return
        if self._speakers.tick(time.monotonic()):
            self._notify()
        self._schedule()

    def _notify(self) -> None:
        dominant = self._speakers.dominant
        for observer in list(self._observers):
            try:
                observer(dominant)
            except Exception:
                log.exception("dominant speaker observer failed")
