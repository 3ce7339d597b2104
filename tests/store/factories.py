"""Records for the store contract tests (fresh SIDs every time, so tests never collide)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from parlour.domain.accounts import Account
from parlour.domain.participants import Participant, ParticipantStatus
from parlour.domain.ports import Store
from parlour.domain.rooms import Room, RoomSpec, validate_room_spec
from parlour.domain.sids import AccountSid, RoomSid, new_sid
from parlour.domain.tracks import PublishedTrack, SubscribedTrack, TrackKind

T0 = dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


async def new_account(store: Store) -> AccountSid:
    sid = AccountSid(new_sid("AC"))
    await store.insert_account(Account(sid, "t", "h" * 64, T0, T0))
    return sid


def make_room(account: AccountSid, i: int = 0, **kw: object) -> Room:
    return validate_room_spec(
        RoomSpec(**kw),  # type: ignore[arg-type]
        sid=RoomSid(new_sid("RM")),
        account_sid=account,
        now=at(i),
    )


async def new_room(store: Store, **kw: object) -> Room:
    room = make_room(await new_account(store), **kw)
    await store.insert_room(room)
    return room


def make_participant(
    room: Room,
    identity: str = "alice",
    status: ParticipantStatus = ParticipantStatus.CONNECTED,
    *,
    node_id: str | None = "node-a",
    when: dt.datetime = T0,
) -> Participant:
    joined = Participant.joining(room.sid, room.account_sid, identity, when, node_id=node_id)
    return replace(joined, status=status)


async def join(store: Store, room: Room, identity: str = "alice", **kw: object) -> Participant:
    p = make_participant(room, identity, **kw)  # type: ignore[arg-type]
    await store.insert_participant(p)
    return p


async def publish(
    store: Store, p: Participant, name: str = "mic", kind: TrackKind = TrackKind.AUDIO
) -> PublishedTrack:
    track = PublishedTrack.published(p.room_sid, p.sid, name, kind, T0)
    assert await store.insert_published_track(track)
    return track


def subscription(subscriber: Participant, track: PublishedTrack) -> SubscribedTrack:
    return SubscribedTrack.of(track, subscriber.sid, T0)
