"""Published and subscribed tracks.

A published track is listed while it is published; unpublishing ends it (`ended_at`).
A subscribed track is the same MT sid seen from a subscriber, with the publisher's sid.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from parlour.domain.sids import ParticipantSid, RoomSid, TrackSid, new_sid

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

    @classmethod
    def published(
        cls,
        room_sid: RoomSid,
        participant_sid: ParticipantSid,
        name: str,
        kind: TrackKind,
        now: dt.datetime,
        *,
        enabled: bool = True,
    ) -> PublishedTrack:
        """A track published at `now`, with a fresh SID."""
        return cls(
            sid=TrackSid(new_sid("MT")),
            room_sid=room_sid,
            participant_sid=participant_sid,
            name=name,
            kind=kind,
            enabled=enabled,
            date_created=now,
            date_updated=now,
        )


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

    @classmethod
    def of(
        cls, track: PublishedTrack, subscriber_sid: ParticipantSid, now: dt.datetime
    ) -> SubscribedTrack:
        """`track` as its subscriber receives it from `now` on."""
        return cls(
            sid=track.sid,
            room_sid=track.room_sid,
            participant_sid=subscriber_sid,
            publisher_sid=track.participant_sid,
            name=track.name,
            kind=track.kind,
            enabled=track.enabled,
            date_created=now,
            date_updated=now,
        )
