"""Published and subscribed tracks.

A published track is listed while it is published; unpublishing ends it (`ended_at`).
A subscribed track is the same MT sid seen from a subscriber, with the publisher's sid.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from parlour.domain.sids import ParticipantSid, RoomSid, TrackSid

__all__ = ["PublishedTrack", "SubscribedTrack", "TrackKind"]


class TrackKind(enum.StrEnum):
    AUDIO = "audio"
    VIDEO = "video"
    DATA = "data"


@dataclass(frozen=True)
class PublishedTrack:
    sid: TrackSid
    room_sid: RoomSid
    participant_sid: ParticipantSid
    name: str
    kind: TrackKind
    enabled: bool
    date_created: dt.datetime
    date_updated: dt.datetime
    ended_at: dt.datetime | None = None


@dataclass(frozen=True)
class SubscribedTrack:
    sid: TrackSid
    room_sid: RoomSid
    participant_sid: ParticipantSid
    publisher_sid: ParticipantSid
    name: str
    kind: TrackKind
    enabled: bool
    date_created: dt.datetime
    date_updated: dt.datetime
    ended_at: dt.datetime | None = None
