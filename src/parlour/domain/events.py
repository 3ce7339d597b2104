"""Domain events, named as Twilio's status callbacks name them.

They are plain data; the `EventSink` port fans them out (logs, webhooks, recordings).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

__all__ = ["Event"]


@dataclass(frozen=True)
class Event:
    """One thing that happened in a room.

    `name` is Twilio's `StatusCallbackEvent` (`room-created`, `room-ended`,
    `participant-connected`, `participant-disconnected`, `track-added`, …).
    """

    name: str
    account_sid: str
    room_sid: str
    timestamp: dt.datetime
    participant_sid: str | None = None
    track_sid: str | None = None
    data: dict[str, str] = field(default_factory=dict)
