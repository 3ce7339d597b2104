"""The in-memory twin of `SqlStore`: the whole `Store` port in plain Python, no I/O.

Same semantics as the SQL store, checked by the same contract suite (`tests/store/`):
filters, ordering, keyset paging on an insertion sequence, None for what is not found,
conditional transitions. Each method does its work without awaiting in the middle, so on
one event loop every method is atomic, as one SQL transaction is.

Records are frozen dataclasses, replaced (never mutated) on every change; the mutable
parts (`CallbackDelivery.params`, a room's dicts) are copied in and out.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import TypeVar

from parlour.domain import errors
from parlour.domain.accounts import Account, ApiKey
from parlour.domain.compositions import (
    Composition,
    CompositionHook,
    CompositionStatus,
    name_pattern,
)
from parlour.domain.events import CallbackDelivery, DeliveryStatus
from parlour.domain.media_settings import (
    AwsCredential,
    Credential,
    CredentialType,
    MediaKind,
    MediaSettings,
    PublicKeyCredential,
)
from parlour.domain.paging import Page, PageRequest
from parlour.domain.participants import Participant, ParticipantStatus
from parlour.domain.ports import (
    CompositionFilter,
    CompositionHookFilter,
    ParticipantFilter,
    PersonalData,
    RecordingFilter,
    RetentionPolicy,
    RetentionSettings,
    RoomFilter,
    Store,
)
from parlour.domain.recordings import Recording, RecordingStatus
from parlour.domain.rooms import Room
from parlour.domain.rules import Rule
from parlour.domain.sids import AccountSid, ParticipantSid, RoomSid, TrackSid, is_sid
from parlour.domain.tracks import PublishedTrack, SubscribedTrack
from parlour.domain.transcriptions import Transcription, TranscriptionStatus
from parlour.store.personal import check_erasable, mentions

__all__ = ["MemoryStore"]

T = TypeVar("T")

_LAST_ERROR_LENGTH = 512  # the SQL column's length


@dataclass
class _Node:
    started_at: dt.datetime
    heartbeat_at: dt.datetime


def _page(rows: Iterable[tuple[int, T]], req: PageRequest, *, descending: bool) -> Page[T]:
    """Keyset paging exactly as `SqlStore._page` does it, over (seq, item) pairs."""
    forward = req.before is None
    items = list(rows)
    if req.after is not None:
        after = req.after
        items = [r for r in items if (r[0] < after if descending else r[0] > after)]
    if req.before is not None:
        before = req.before
        items = [r for r in items if (r[0] > before if descending else r[0] < before)]
    ascending = descending != forward
    items.sort(key=lambda r: r[0], reverse=not ascending)
    items = items[req.offset : req.offset + req.page_size + 1]
    more = len(items) > req.page_size
    items = items[: req.page_size]
    if not forward:
        items.reverse()
    if not items:
        return Page([], None, None)
    first, last = items[0][0], items[-1][0]
    has_next = more if forward else True
    has_prev = (req.page > 0 or req.offset > 0 or req.after is not None) if forward else more
    return Page(
        [item for _, item in items],
        f"PA{last}" if has_next else None,
        f"PB{first}" if has_prev else None,
    )


class _Table(dict[str, tuple[int, T]]):
    """Records by SID, each with its insertion sequence number."""

    def __init__(self) -> None:
        super().__init__()
        self._next = 1

    def add(self, key: str | None, item: T) -> int:
        """Insert under `key` (default: the new sequence number); returns that number."""
        seq = self._next
        self[str(seq) if key is None else key] = (seq, item)
        self._next += 1
        return seq

    def put(self, key: str, item: T) -> None:
        """Replace a record, keeping its sequence number."""
        self[key] = (self[key][0], item)

    def item(self, key: str) -> T | None:
        row = self.get(key)
        return None if row is None else row[1]

    def rows(self, keep: Callable[[T], bool] = lambda _: True) -> list[tuple[int, T]]:
        """(seq, item) pairs in insertion order."""
        return sorted((r for r in self.values() if keep(r[1])), key=lambda r: r[0])

    def items_where(self, keep: Callable[[T], bool] = lambda _: True) -> list[T]:
        return [item for _, item in self.rows(keep)]


def _room_copy(room: Room) -> Room:
    return replace(
        room,
        transcriptions_configuration=copy.deepcopy(room.transcriptions_configuration),
        extra=copy.deepcopy(room.extra),
    )


def _transcription_copy(t: Transcription) -> Transcription:
    return replace(t, configuration=copy.deepcopy(t.configuration))


def _delivery_copy(d: CallbackDelivery) -> CallbackDelivery:
    return replace(d, params=dict(d.params))


class MemoryStore:
    """Every persistent record, in dictionaries (tests and `parlour.testing`)."""

    def __init__(self) -> None:
        self._instance: dict[str, str] = {}
        self._accounts: dict[str, Account] = {}
        self._api_keys: dict[str, ApiKey] = {}
        self._rooms: _Table[Room] = _Table()
        self._participants: _Table[Participant] = _Table()
        self._published: _Table[PublishedTrack] = _Table()
        # Subscriptions by their own sequence number: a track may be subscribed again.
        self._subscribed: _Table[SubscribedTrack] = _Table()
        self._deliveries: _Table[CallbackDelivery] = _Table()
        self._recordings: _Table[Recording] = _Table()
        self._transcriptions: _Table[Transcription] = _Table()
        self._compositions: _Table[Composition] = _Table()
        self._hooks: _Table[CompositionHook] = _Table()
        self._nodes: dict[str, _Node] = {}
        self._retention: dict[str, RetentionSettings] = {}
        self._credentials: _Table[Credential] = _Table()
        self._media_settings: dict[tuple[str, MediaKind], MediaSettings] = {}
        self.closed = False

    async def close(self) -> None:
        self.closed = True

    # -- instance / accounts / keys -------------------------------------------------------

    async def get_instance_value(self, key: str) -> str | None:
        return self._instance.get(key)

    async def set_instance_value_once(self, key: str, value: str) -> str:
        return self._instance.setdefault(key, value)

    async def insert_account(self, account: Account) -> None:
        if account.sid in self._accounts:
            raise ValueError(f"account {account.sid} exists")
        self._accounts[account.sid] = account

    async def delete_account(self, sid: AccountSid) -> None:
        self._accounts.pop(sid, None)
        for kind in MediaKind:
            self._media_settings.pop((sid, kind), None)
        for credential in self._credentials.items_where(lambda c: c.account_sid == sid):
            self._credentials.pop(credential.sid)

    async def get_account(self, sid: str) -> Account | None:
        return self._accounts.get(sid)

    async def insert_api_key(self, key: ApiKey) -> None:
        if key.sid in self._api_keys:
            raise ValueError(f"API key {key.sid} exists")
        self._api_keys[key.sid] = key

    async def get_api_key(self, sid: str) -> ApiKey | None:
        return self._api_keys.get(sid)

    async def list_api_keys(self, account_sid: AccountSid) -> list[ApiKey]:
        keys = [k for k in self._api_keys.values() if k.account_sid == account_sid]
        return sorted(keys, key=lambda k: (k.date_created, k.sid))

    async def delete_api_key(self, account_sid: AccountSid, sid: str) -> bool:
        key = self._api_keys.get(sid)
        if key is None or key.account_sid != account_sid:
            return False
        del self._api_keys[sid]
        return True

    # -- rooms ----------------------------------------------------------------------------

    def _active_room_named(self, account_sid: str, name: str) -> Room | None:
        for room in self._rooms.items_where():
            if room.account_sid == account_sid and room.in_progress and room.unique_name == name:
                return room
        return None

    async def insert_room(self, room: Room) -> None:
        """Raises RoomError 53113 when an in-progress room of the account has its name."""
        clash = room.in_progress and self._active_room_named(room.account_sid, room.unique_name)
        if clash or room.sid in self._rooms:
            raise errors.RoomError("Room exists", code=errors.Code.ROOM_EXISTS)
        self._rooms.add(room.sid, _room_copy(room))

    async def get_room(self, account_sid: AccountSid, sid_or_name: str) -> Room | None:
        """A room by SID (any status) or by UniqueName (in-progress rooms only)."""
        if is_sid(sid_or_name, "RM"):
            room = self._rooms.item(sid_or_name)
            if room is None or room.account_sid != account_sid:
                return None
        else:
            room = self._active_room_named(account_sid, sid_or_name)
        return None if room is None else _room_copy(room)

    async def list_rooms(
        self, account_sid: AccountSid, flt: RoomFilter, req: PageRequest
    ) -> Page[Room]:
        def keep(r: Room) -> bool:
            return (
                r.account_sid == account_sid
                and (flt.status is None or r.status is flt.status)
                and (flt.unique_name is None or r.unique_name == flt.unique_name)
                and (flt.created_after is None or r.date_created >= flt.created_after)
                and (flt.created_before is None or r.date_created < flt.created_before)
            )

        page = _page(self._rooms.rows(keep), req, descending=True)
        return replace(page, items=[_room_copy(r) for r in page.items])

    async def idle_rooms(self) -> list[Room]:
        return [
            _room_copy(r)
            for r in self._rooms.items_where(lambda r: r.in_progress and r.empty_since is not None)
        ]

    def _update_room(self, sid: RoomSid, **changes: object) -> Room | None:
        """Apply `changes` to an in-progress room; None if it is not (or unknown)."""
        room = self._rooms.item(sid)
        if room is None or not room.in_progress:
            return None
        updated = replace(room, **changes)  # type: ignore[arg-type]
        self._rooms.put(sid, updated)
        return _room_copy(updated)

    async def complete_room(self, sid: RoomSid, now: dt.datetime) -> Room | None:
        room = self._rooms.item(sid)
        if room is None or not room.in_progress:
            return None
        ended = replace(room.completed(now), empty_since=None)
        self._rooms.put(sid, ended)
        return _room_copy(ended)

    async def set_room_occupied(self, sid: RoomSid, now: dt.datetime) -> None:
        self._update_room(sid, empty_since=None, ever_joined=True, date_updated=now)

    async def set_room_empty_if_vacant(self, sid: RoomSid, now: dt.datetime) -> bool:
        room = self._rooms.item(sid)
        if room is None or room.empty_since is not None or self._active_in(sid):
            return False
        return self._update_room(sid, empty_since=now, date_updated=now) is not None

    async def set_recording_rules(
        self, sid: RoomSid, rules: tuple[Rule, ...], now: dt.datetime
    ) -> Room | None:
        return self._update_room(
            sid, recording_rules=tuple(rules), recording_rules_updated=now, date_updated=now
        )

    # -- participants ---------------------------------------------------------------------

    def _active_in(self, room_sid: str) -> list[Participant]:
        return self._participants.items_where(lambda p: p.room_sid == room_sid and p.active)

    async def insert_participant(self, participant: Participant) -> None:
        if participant.sid in self._participants:
            raise ValueError(f"participant {participant.sid} exists")
        if participant.room_sid not in self._rooms:
            raise ValueError(f"no room {participant.room_sid}")
        self._participants.add(participant.sid, participant)

    async def get_participant(self, room_sid: RoomSid, sid_or_identity: str) -> Participant | None:
        """By PA SID, or by identity (the connected one first, else the latest)."""
        if is_sid(sid_or_identity, "PA"):
            p = self._participants.item(sid_or_identity)
            return p if p is not None and p.room_sid == room_sid else None
        rows = self._participants.rows(
            lambda p: p.room_sid == room_sid and p.identity == sid_or_identity
        )
        if not rows:
            return None
        return min(rows, key=lambda r: (not r[1].active, -r[0]))[1]

    async def list_participants(
        self, room_sid: RoomSid, flt: ParticipantFilter, req: PageRequest
    ) -> Page[Participant]:
        def keep(p: Participant) -> bool:
            return (
                p.room_sid == room_sid
                and (flt.statuses is None or p.status in flt.statuses)
                and (flt.identity is None or p.identity == flt.identity)
                and (flt.created_after is None or p.date_created >= flt.created_after)
                and (flt.created_before is None or p.date_created < flt.created_before)
            )

        return _page(self._participants.rows(keep), req, descending=False)

    async def active_participants(self, room_sid: RoomSid) -> list[Participant]:
        return self._active_in(room_sid)

    def _end_subscriptions(self, keep: Callable[[SubscribedTrack], bool], now: dt.datetime) -> None:
        for key, (_, sub) in list(self._subscribed.items()):
            if sub.ended_at is None and keep(sub):
                self._subscribed.put(key, replace(sub, ended_at=now, date_updated=now))

    async def disconnect_participant(
        self, sid: ParticipantSid, now: dt.datetime
    ) -> tuple[Participant, list[PublishedTrack]] | None:
        p = self._participants.item(sid)
        if p is None or not p.active:
            return None
        gone = p.disconnected(now)
        self._participants.put(sid, gone)
        ended: list[PublishedTrack] = []
        for track in self._published.items_where(
            lambda t: t.participant_sid == sid and t.ended_at is None
        ):
            track = replace(track, ended_at=now, date_updated=now)
            self._published.put(track.sid, track)
            ended.append(track)
        self._end_subscriptions(lambda s: sid in (s.participant_sid, s.publisher_sid), now)
        return gone, ended

    def _update_participant(
        self, sid: ParticipantSid, active_only: bool, **changes: object
    ) -> Participant | None:
        p = self._participants.item(sid)
        if p is None or (active_only and not p.active):
            return None
        updated = replace(p, **changes)  # type: ignore[arg-type]
        self._participants.put(sid, updated)
        return updated

    async def set_participant_status(
        self, sid: ParticipantSid, status: ParticipantStatus, now: dt.datetime
    ) -> Participant | None:
        """Raises ValueError for `disconnected`: that is `disconnect_participant`."""
        if status is ParticipantStatus.DISCONNECTED:
            raise ValueError("disconnect with disconnect_participant")
        return self._update_participant(sid, True, status=status, date_updated=now)

    async def anonymize_participant(
        self, sid: ParticipantSid, now: dt.datetime
    ) -> Participant | None:
        return self._update_participant(sid, False, identity=sid, date_updated=now)

    async def set_subscribe_rules(
        self, sid: ParticipantSid, rules: tuple[Rule, ...], now: dt.datetime
    ) -> Participant | None:
        p = self._participants.item(sid)
        if p is None:
            return None
        return self._update_participant(
            sid,
            False,
            subscribe_rules=tuple(rules),
            subscribe_rules_created=p.subscribe_rules_created or now,
            subscribe_rules_updated=now,
            date_updated=now,
        )

    # -- tracks ---------------------------------------------------------------------------

    async def insert_published_track(self, track: PublishedTrack) -> bool:
        if track.sid in self._published:
            raise ValueError(f"track {track.sid} exists")
        participant = self._participants.item(track.participant_sid)
        if participant is None or participant.status is ParticipantStatus.DISCONNECTED:
            return False
        self._published.add(track.sid, track)
        return True

    async def end_published_track(self, sid: TrackSid, now: dt.datetime) -> PublishedTrack | None:
        track = self._published.item(sid)
        if track is None or track.ended_at is not None:
            return None
        ended = replace(track, ended_at=now, date_updated=now)
        self._published.put(sid, ended)
        self._end_subscriptions(lambda s: s.sid == sid, now)
        return ended

    async def set_track_enabled(
        self, sid: TrackSid, enabled: bool, now: dt.datetime
    ) -> PublishedTrack | None:
        """Only the published track changes (subscriptions keep what they started with)."""
        track = self._published.item(sid)
        if track is None or track.ended_at is not None or track.enabled == enabled:
            return None
        updated = replace(track, enabled=enabled, date_updated=now)
        self._published.put(sid, updated)
        return updated

    def _live_published(self, participant_sid: str) -> list[tuple[int, PublishedTrack]]:
        return self._published.rows(
            lambda t: t.participant_sid == participant_sid and t.ended_at is None
        )

    async def get_published_track(
        self, participant_sid: ParticipantSid, sid_or_name: str
    ) -> PublishedTrack | None:
        """A currently published track by MT SID or name."""
        by_sid = is_sid(sid_or_name, "MT")
        for _, t in self._live_published(participant_sid):
            if (t.sid if by_sid else t.name) == sid_or_name:
                return t
        return None

    async def list_published_tracks(
        self, participant_sid: ParticipantSid, req: PageRequest
    ) -> Page[PublishedTrack]:
        return _page(self._live_published(participant_sid), req, descending=False)

    async def active_published_tracks(
        self, participant_sid: ParticipantSid
    ) -> list[PublishedTrack]:
        return [t for _, t in self._live_published(participant_sid)]

    def _live_subscribed(self, participant_sid: str) -> list[tuple[int, SubscribedTrack]]:
        return self._subscribed.rows(
            lambda s: s.participant_sid == participant_sid and s.ended_at is None
        )

    async def insert_subscribed_track(self, track: SubscribedTrack) -> bool:
        subscriber = self._participants.item(track.participant_sid)
        published = self._published.item(track.sid)
        if (
            subscriber is None
            or not subscriber.active
            or published is None
            or published.ended_at is not None
            or any(s.sid == track.sid for _, s in self._live_subscribed(track.participant_sid))
        ):
            return False
        self._subscribed.add(None, track)
        return True

    async def end_subscribed_track(
        self, participant_sid: ParticipantSid, sid: TrackSid, now: dt.datetime
    ) -> None:
        self._end_subscriptions(
            lambda s: s.participant_sid == participant_sid and s.sid == sid, now
        )

    async def get_subscribed_track(
        self, participant_sid: ParticipantSid, sid: str
    ) -> SubscribedTrack | None:
        live = [s for _, s in self._live_subscribed(participant_sid) if s.sid == sid]
        return live[-1] if live else None

    async def list_subscribed_tracks(
        self, participant_sid: ParticipantSid, req: PageRequest
    ) -> Page[SubscribedTrack]:
        return _page(self._live_subscribed(participant_sid), req, descending=False)

    # -- nodes ----------------------------------------------------------------------------

    async def heartbeat_node(self, node_id: str, now: dt.datetime) -> None:
        node = self._nodes.get(node_id)
        if node is None:
            self._nodes[node_id] = _Node(started_at=now, heartbeat_at=now)
        else:
            node.heartbeat_at = now

    async def stale_nodes(self, before: dt.datetime) -> list[str]:
        """Oldest heartbeat first."""
        stale = [(n.heartbeat_at, k) for k, n in self._nodes.items() if n.heartbeat_at < before]
        return [k for _, k in sorted(stale)]

    async def active_participants_of_node(self, node_id: str) -> list[Participant]:
        return self._participants.items_where(lambda p: p.node_id == node_id and p.active)

    async def delete_node(self, node_id: str) -> None:
        self._nodes.pop(node_id, None)

    # -- status callbacks -----------------------------------------------------------------

    async def insert_callback_delivery(self, delivery: CallbackDelivery) -> CallbackDelivery:
        numbers = [
            d.sequence_number or 0
            for d in self._deliveries.items_where(lambda d: d.resource_sid == delivery.resource_sid)
        ]
        stored = replace(
            _delivery_copy(delivery),
            sequence_number=max(numbers) + 1 if numbers else 0,
            date_updated=delivery.date_updated or delivery.date_created,
        )
        seq = self._deliveries.add(None, stored)
        stored = replace(stored, id=seq)
        self._deliveries.put(str(seq), stored)
        return _delivery_copy(stored)

    async def update_callback_delivery(self, delivery: CallbackDelivery) -> None:
        key = str(delivery.id)
        current = self._deliveries.item(key)
        if current is None:
            return
        error = delivery.last_error
        self._deliveries.put(
            key,
            replace(
                current,
                status=delivery.status,
                attempts=delivery.attempts,
                last_status=delivery.last_status,
                last_error=error[:_LAST_ERROR_LENGTH] if error else None,
                next_attempt_at=delivery.next_attempt_at,
                date_updated=delivery.date_updated or delivery.date_created,
            ),
        )

    async def pending_callback_deliveries(self) -> list[CallbackDelivery]:
        pending = self._deliveries.items_where(lambda d: d.status is DeliveryStatus.PENDING)
        pending.sort(key=lambda d: (d.resource_sid, d.sequence_number or 0))
        return [_delivery_copy(d) for d in pending]

    async def adopt_callback_deliveries(
        self, node_id: str, *, alive_since: dt.datetime | None = None
    ) -> list[CallbackDelivery]:
        alive = (
            {k for k, n in self._nodes.items() if n.heartbeat_at >= alive_since}
            if alive_since is not None
            else None
        )

        def orphan(d: CallbackDelivery) -> bool:
            if d.status is not DeliveryStatus.PENDING or d.node_id == node_id:
                return False
            return alive is None or d.node_id is None or d.node_id not in alive

        taken = []
        for d in self._deliveries.items_where(orphan):
            adopted = replace(d, node_id=node_id)
            self._deliveries.put(str(d.id), adopted)
            taken.append(_delivery_copy(adopted))
        taken.sort(key=lambda d: (d.resource_sid, d.sequence_number or 0))
        return taken

    async def list_callback_deliveries(self, resource_sid: str) -> list[CallbackDelivery]:
        mine = self._deliveries.items_where(lambda d: d.resource_sid == resource_sid)
        mine.sort(key=lambda d: d.sequence_number or 0)
        return [_delivery_copy(d) for d in mine]

    # -- recordings -----------------------------------------------------------------------

    async def insert_recording(self, recording: Recording) -> None:
        if recording.sid in self._recordings:
            raise ValueError(f"recording {recording.sid} exists")
        self._recordings.add(recording.sid, recording)

    async def update_recording(self, recording: Recording, *, expected: RecordingStatus) -> bool:
        current = self._recordings.item(recording.sid)
        if current is None or current.status is not expected:
            return False
        self._recordings.put(recording.sid, recording)
        return True

    async def get_recording(self, account_sid: AccountSid, sid: str) -> Recording | None:
        rec = self._recordings.item(sid)
        return rec if rec is not None and rec.account_sid == account_sid else None

    async def list_recordings(
        self, account_sid: AccountSid, flt: RecordingFilter, req: PageRequest
    ) -> Page[Recording]:
        """Newest first; every `GroupingSid` must be the room's or the participant's SID."""

        def keep(r: Recording) -> bool:
            return (
                r.account_sid == account_sid
                and (flt.room_sid is None or r.room_sid == flt.room_sid)
                and (flt.status is None or r.status is flt.status)
                and (flt.source_sid is None or r.source_sid == flt.source_sid)
                and all(sid in (r.room_sid, r.participant_sid) for sid in flt.grouping_sids)
                and (flt.media_type is None or r.type is flt.media_type)
                and (flt.created_after is None or r.date_created >= flt.created_after)
                and (flt.created_before is None or r.date_created < flt.created_before)
            )

        return _page(self._recordings.rows(keep), req, descending=True)

    async def recordings_with_status(self, status: RecordingStatus) -> list[Recording]:
        return self._recordings.items_where(lambda r: r.status is status)

    # -- transcriptions -------------------------------------------------------------------

    async def insert_transcription(self, transcription: Transcription) -> None:
        if transcription.ttid in self._transcriptions:
            raise ValueError(f"transcription {transcription.ttid} exists")
        self._transcriptions.add(transcription.ttid, _transcription_copy(transcription))

    async def update_transcription(
        self, transcription: Transcription, *, expected: TranscriptionStatus
    ) -> bool:
        current = self._transcriptions.item(transcription.ttid)
        if current is None or current.status is not expected:
            return False
        self._transcriptions.put(transcription.ttid, _transcription_copy(transcription))
        return True

    async def get_transcription(
        self, account_sid: AccountSid, room_sid: RoomSid, ttid: str
    ) -> Transcription | None:
        t = self._transcriptions.item(ttid)
        if t is None or t.account_sid != account_sid or t.room_sid != room_sid:
            return None
        return _transcription_copy(t)

    async def list_transcriptions(
        self, account_sid: AccountSid, room_sid: RoomSid, req: PageRequest
    ) -> Page[Transcription]:
        rows = self._transcriptions.rows(
            lambda t: t.account_sid == account_sid and t.room_sid == room_sid
        )
        page = _page(rows, req, descending=False)
        return Page(
            [_transcription_copy(t) for t in page.items], page.next_token, page.previous_token
        )

    async def room_transcriptions(self, room_sid: RoomSid) -> list[Transcription]:
        found = self._transcriptions.items_where(lambda t: t.room_sid == room_sid)
        return [_transcription_copy(t) for t in found]

    # -- compositions ---------------------------------------------------------------------

    async def insert_composition(self, composition: Composition) -> None:
        if composition.sid in self._compositions:
            raise ValueError(f"composition {composition.sid} exists")
        self._compositions.add(composition.sid, composition)

    async def update_composition(
        self, composition: Composition, *, expected: CompositionStatus
    ) -> bool:
        current = self._compositions.item(composition.sid)
        if current is None or current.status is not expected:
            return False
        self._compositions.put(composition.sid, composition)
        return True

    async def get_composition(self, account_sid: AccountSid, sid: str) -> Composition | None:
        item = self._compositions.item(sid)
        return item if item is not None and item.account_sid == account_sid else None

    async def list_compositions(
        self, account_sid: AccountSid, flt: CompositionFilter, req: PageRequest
    ) -> Page[Composition]:
        def keep(c: Composition) -> bool:
            return (
                c.account_sid == account_sid
                and (flt.room_sid is None or c.room_sid == flt.room_sid)
                and (flt.status is None or c.status is flt.status)
                and (flt.created_after is None or c.date_created >= flt.created_after)
                and (flt.created_before is None or c.date_created < flt.created_before)
            )

        return _page(self._compositions.rows(keep), req, descending=True)

    async def compositions_with_status(self, status: CompositionStatus) -> list[Composition]:
        return self._compositions.items_where(lambda c: c.status is status)

    async def expired_compositions(
        self, account_sid: AccountSid, before: dt.datetime, limit: int
    ) -> list[Composition]:
        return self._compositions.items_where(
            lambda c: (
                c.account_sid == account_sid
                and c.status is CompositionStatus.COMPLETED
                and c.date_created < before
            )
        )[:limit]

    def _hook_name_taken(self, hook: CompositionHook) -> bool:
        return any(
            h.account_sid == hook.account_sid
            and h.friendly_name == hook.friendly_name
            and h.sid != hook.sid
            for h in self._hooks.items_where()
        )

    async def insert_composition_hook(self, hook: CompositionHook) -> bool:
        if self._hook_name_taken(hook):
            return False
        self._hooks.add(hook.sid, hook)
        return True

    async def update_composition_hook(self, hook: CompositionHook) -> bool:
        if hook.sid not in self._hooks or self._hook_name_taken(hook):
            return False
        self._hooks.put(hook.sid, hook)
        return True

    async def get_composition_hook(
        self, account_sid: AccountSid, sid: str
    ) -> CompositionHook | None:
        item = self._hooks.item(sid)
        return item if item is not None and item.account_sid == account_sid else None

    async def list_composition_hooks(
        self, account_sid: AccountSid, flt: CompositionHookFilter, req: PageRequest
    ) -> Page[CompositionHook]:
        name = name_pattern(flt.friendly_name) if flt.friendly_name is not None else None

        def keep(h: CompositionHook) -> bool:
            return (
                h.account_sid == account_sid
                and (flt.enabled is None or h.enabled is flt.enabled)
                and (name is None or name.match(h.friendly_name) is not None)
                and (flt.created_after is None or h.date_created >= flt.created_after)
                and (flt.created_before is None or h.date_created < flt.created_before)
            )

        return _page(self._hooks.rows(keep), req, descending=True)

    async def delete_composition_hook(self, account_sid: AccountSid, sid: str) -> bool:
        if await self.get_composition_hook(account_sid, sid) is None:
            return False
        del self._hooks[sid]
        return True

    # -- privacy --------------------------------------------------------------------------

    async def personal_data(self, account_sid: AccountSid, identity: str | None) -> PersonalData:
        def mine(p: Participant) -> bool:
            return p.account_sid == account_sid and (identity is None or p.identity == identity)

        people = self._participants.items_where(mine)
        psids = {p.sid for p in people}
        if identity is None:
            rooms = self._rooms.items_where(lambda r: r.account_sid == account_sid)
        else:
            room_sids = {p.room_sid for p in people}
            rooms = self._rooms.items_where(lambda r: r.sid in room_sids)
        published = self._published.items_where(lambda t: t.participant_sid in psids)
        subscribed = self._subscribed.items_where(
            lambda s: s.participant_sid in psids or s.publisher_sid in psids
        )
        recordings = self._recordings.items_where(
            lambda r: (
                r.account_sid == account_sid and (identity is None or r.participant_sid in psids)
            )
        )
        room_sids = {r.sid for r in rooms}
        compositions = self._compositions.items_where(
            lambda c: c.account_sid == account_sid and c.room_sid in room_sids
        )
        if identity is None:
            deliveries = self._deliveries.items_where(lambda d: d.account_sid == account_sid)
        else:
            names = {identity, *psids, *(t.sid for t in published), *(r.sid for r in recordings)}
            composition_sids = {c.sid for c in compositions}
            deliveries = self._deliveries.items_where(
                lambda d: (
                    d.account_sid == account_sid
                    and (
                        (d.resource_sid in room_sids and mentions(d, names))
                        or d.resource_sid in composition_sids
                    )
                )
            )
        room_sids = {r.sid for r in rooms}
        return PersonalData(
            transcriptions=[
                _transcription_copy(t)
                for t in self._transcriptions.items_where(lambda t: t.room_sid in room_sids)
            ],
            rooms=[_room_copy(r) for r in rooms],
            participants=people,
            published_tracks=published,
            subscribed_tracks=subscribed,
            recordings=recordings,
            callback_deliveries=[_delivery_copy(d) for d in deliveries],
            compositions=compositions,
        )

    async def erase_personal_data(
        self, account_sid: AccountSid, identity: str | None
    ) -> PersonalData:
        data = await self.personal_data(account_sid, identity)
        check_erasable(data, whole_account=identity is None)
        psids = {p.sid for p in data.participants}
        for key, (_, sub) in list(self._subscribed.items()):
            if sub.participant_sid in psids or sub.publisher_sid in psids:
                del self._subscribed[key]
        for table, keys in (
            (self._published, [t.sid for t in data.published_tracks]),
            (self._recordings, [r.sid for r in data.recordings]),
            (self._compositions, [c.sid for c in data.compositions]),
            (self._deliveries, [str(d.id) for d in data.callback_deliveries]),
            (self._participants, list(psids)),
            (self._rooms, [r.sid for r in data.rooms] if identity is None else []),
            (
                self._transcriptions,
                [t.ttid for t in data.transcriptions] if identity is None else [],
            ),
        ):
            for key in keys:
                table.pop(key, None)
        return data

    async def reclaim_space(self) -> None:
        return None

    # -- media settings and credentials ---------------------------------------------------

    async def insert_credential(self, credential: Credential) -> None:
        if credential.sid in self._credentials:
            raise errors.TwilioError("duplicate credential")
        self._credentials.add(credential.sid, credential)

    async def get_credential(self, account_sid: AccountSid, sid: str) -> Credential | None:
        credential = self._credentials.item(sid)
        return (
            credential if credential is not None and credential.account_sid == account_sid else None
        )

    async def list_credentials(
        self, account_sid: AccountSid, type: CredentialType, req: PageRequest
    ) -> Page[Credential]:
        wanted = AwsCredential if type is CredentialType.AWS else PublicKeyCredential

        def keep(c: Credential) -> bool:
            return c.account_sid == account_sid and isinstance(c, wanted)

        return _page(self._credentials.rows(keep), req, descending=False)

    async def rename_credential(
        self, account_sid: AccountSid, sid: str, friendly_name: str | None, now: dt.datetime
    ) -> Credential | None:
        credential = await self.get_credential(account_sid, sid)
        if credential is None:
            return None
        renamed = replace(credential, friendly_name=friendly_name, date_updated=now)
        self._credentials.put(sid, renamed)
        return renamed

    async def delete_credential(self, account_sid: AccountSid, sid: str) -> bool:
        if await self.get_credential(account_sid, sid) is None:
            return False
        self._credentials.pop(sid)
        return True

    async def get_media_settings(
        self, account_sid: AccountSid, kind: MediaKind
    ) -> MediaSettings | None:
        return self._media_settings.get((account_sid, kind))

    async def put_media_settings(self, settings: MediaSettings) -> None:
        self._media_settings[(settings.account_sid, settings.kind)] = settings

    async def get_retention(self, account_sid: AccountSid) -> RetentionSettings | None:
        return self._retention.get(account_sid)

    async def set_retention(
        self, account_sid: AccountSid, policy: RetentionPolicy, now: dt.datetime
    ) -> RetentionSettings:
        old = self._retention.get(account_sid)
        settings = RetentionSettings(account_sid, policy, old.date_created if old else now, now)
        self._retention[account_sid] = settings
        return settings

    async def account_sids(self) -> list[AccountSid]:
        ordered = sorted(self._accounts.values(), key=lambda a: (a.date_created, a.sid))
        return [a.sid for a in ordered]

    async def participants_to_anonymize(
        self, account_sid: AccountSid, ended_before: dt.datetime, limit: int
    ) -> list[Participant]:
        def due(p: Participant) -> bool:
            room = self._rooms.item(p.room_sid)
            return (
                p.account_sid == account_sid
                and p.identity != p.sid
                and room is not None
                and not room.in_progress
                and room.end_time is not None
                and room.end_time < ended_before
            )

        return self._participants.items_where(due)[:limit]

    async def expired_recordings(
        self, account_sid: AccountSid, before: dt.datetime, limit: int
    ) -> list[Recording]:
        done = (RecordingStatus.COMPLETED, RecordingStatus.FAILED)
        return self._recordings.items_where(
            lambda r: r.account_sid == account_sid and r.status in done and r.date_created < before
        )[:limit]

    async def purge_callback_deliveries(
        self, account_sid: AccountSid, before: dt.datetime, limit: int
    ) -> list[int]:
        live = {r.sid for r in self._rooms.items_where(lambda r: r.in_progress)}
        gone = self._deliveries.items_where(
            lambda d: (
                d.account_sid == account_sid
                and d.status is not DeliveryStatus.PENDING
                and (d.date_updated or d.date_created) < before
                and d.resource_sid not in live
            )
        )[:limit]
        for d in gone:
            del self._deliveries[str(d.id)]
        return [d.id for d in gone if d.id is not None]


def _implements_the_port(store: MemoryStore) -> Store:
    """mypy checks here that `MemoryStore` has every method of `Store`, with its signature."""
    return store
