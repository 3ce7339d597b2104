"""The SQL store: SQLAlchemy Core over an async engine (aiosqlite or asyncpg).

SQLite runs in WAL mode with a busy timeout, so the `parlour` CLI can write while
`parlour serve` runs on the same data dir.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from parlour.domain import errors
from parlour.domain.accounts import Account, ApiKey
from parlour.domain.compositions import (
    Composition,
    CompositionFormat,
    CompositionHook,
    CompositionSpec,
    CompositionStatus,
    like_pattern,
)
from parlour.domain.events import CallbackDelivery, DeliveryStatus
from parlour.domain.media_settings import (
    AwsCredential,
    Credential,
    CredentialType,
    Envelope,
    MediaKind,
    MediaSettings,
    PublicKeyCredential,
)
from parlour.domain.paging import Page, PageRequest
from parlour.domain.participants import Participant, ParticipantStatus
from parlour.domain.ports import (
    CompositionFilter,
    CompositionHookFilter,
    ErasureBlocked,
    ParticipantFilter,
    PersonalData,
    RecordingFilter,
    RetentionPolicy,
    RetentionSettings,
    RoomFilter,
    Store,
)
from parlour.domain.recordings import (
    ContainerFormat,
    Recording,
    RecordingCodec,
    RecordingStatus,
    RecordingType,
)
from parlour.domain.rooms import Room, RoomStatus, RoomType
from parlour.domain.rules import Rule
from parlour.domain.sids import (
    AccountSid,
    ApiKeySid,
    ParticipantSid,
    RecordingSid,
    RoomSid,
    TrackSid,
    is_sid,
)
from parlour.domain.tracks import PublishedTrack, SubscribedTrack, TrackKind
from parlour.domain.transcriptions import Transcription, TranscriptionStatus
from parlour.store import migrate
from parlour.store.personal import check_erasable, mentions
from parlour.store.schema import (
    accounts,
    api_keys,
    callback_deliveries,
    composition_hooks,
    compositions,
    credentials,
    instance,
    media_settings,
    nodes,
    participants,
    published_tracks,
    recordings,
    retention_policies,
    rooms,
    subscribed_tracks,
    transcriptions,
)

__all__ = ["SqlStore", "create_engine"]

log = logging.getLogger(__name__)

_ROOM_SETTINGS = (
    "status_callback",
    "status_callback_method",
    "max_participants",
    "max_participant_duration",
    "max_concurrent_published_tracks",
    "record_participants_on_connect",
    "transcribe_participants_on_connect",
    "transcriptions_configuration",
    "video_codecs",
    "media_region",
    "audio_only",
    "empty_room_timeout",
    "unused_room_timeout",
    "large_room",
)


#: Database drivers whose debug log prints every statement with its parameters (identities,
#: room names, callback bodies). Kept at INFO unless personal data may be logged.
_PARAMETER_LOGGERS = ("aiosqlite",)


def create_engine(url: str, *, log_personal_data: bool = False) -> AsyncEngine:
    """An async engine; SQLite connections get WAL, a busy timeout and foreign keys.

    Args:
        log_personal_data: leave the driver's debug log (statements with their parameters)
            on when the log level is debug; off, it is held at INFO (docs/privacy.md).
    """
    if not log_personal_data:
        for name in _PARAMETER_LOGGERS:
            driver_log = logging.getLogger(name)
            if driver_log.level < logging.INFO:
                driver_log.setLevel(logging.INFO)
    engine = create_async_engine(url, pool_pre_ping=not url.startswith("sqlite"))
    if engine.dialect.name == "sqlite":

        @sa.event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            # Deleted and overwritten content is zeroed in the file, not left in free space
            # (docs/privacy.md: erasure and retention).
            cur.execute("PRAGMA secure_delete=ON")
            cur.close()

    return engine


def _rule_rows(rules: Sequence[Rule]) -> list[dict[str, Any]]:
    return [{k: v for k, v in vars(r).items() if v is not None and v is not False} for r in rules]


def _rules(data: list[dict[str, Any]] | None) -> tuple[Rule, ...]:
    return tuple(Rule(**item) for item in data or ())


def _room(row: Row[Any]) -> Room:
    settings = dict(row.settings)
    settings["video_codecs"] = tuple(settings.get("video_codecs", ()))
    return Room(
        sid=RoomSid(row.sid),
        account_sid=AccountSid(row.account_sid),
        unique_name=row.unique_name,
        status=RoomStatus(row.status),
        type=RoomType(row.type),
        date_created=row.date_created,
        date_updated=row.date_updated,
        end_time=row.end_time,
        duration=row.duration,
        empty_since=row.empty_since,
        ever_joined=bool(row.ever_joined),
        recording_rules=_rules(row.recording_rules),
        recording_rules_updated=row.recording_rules_updated,
        **settings,
    )


def _room_values(room: Room) -> dict[str, Any]:
    settings = {name: getattr(room, name) for name in _ROOM_SETTINGS}
    settings["video_codecs"] = list(room.video_codecs)
    return {
        "sid": room.sid,
        "account_sid": room.account_sid,
        "unique_name": room.unique_name,
        "active_name": room.unique_name if room.in_progress else None,
        "status": room.status.value,
        "type": room.type.value,
        "date_created": room.date_created,
        "date_updated": room.date_updated,
        "end_time": room.end_time,
        "duration": room.duration,
        "empty_since": room.empty_since,
        "ever_joined": room.ever_joined,
        "settings": settings,
        "recording_rules": _rule_rows(room.recording_rules),
        "recording_rules_updated": room.recording_rules_updated,
    }


def _participant(row: Row[Any]) -> Participant:
    return Participant(
        sid=ParticipantSid(row.sid),
        room_sid=RoomSid(row.room_sid),
        account_sid=AccountSid(row.account_sid),
        identity=row.identity,
        status=ParticipantStatus(row.status),
        date_created=row.date_created,
        date_updated=row.date_updated,
        start_time=row.start_time,
        end_time=row.end_time,
        duration=row.duration,
        subscribe_rules=(_rules(row.subscribe_rules) if row.subscribe_rules is not None else None),
        subscribe_rules_created=row.subscribe_rules_created,
        subscribe_rules_updated=row.subscribe_rules_updated,
        node_id=row.node_id,
    )


def _participant_values(p: Participant) -> dict[str, Any]:
    return {
        "sid": p.sid,
        "room_sid": p.room_sid,
        "account_sid": p.account_sid,
        "identity": p.identity,
        "status": p.status.value,
        "date_created": p.date_created,
        "date_updated": p.date_updated,
        "start_time": p.start_time,
        "end_time": p.end_time,
        "duration": p.duration,
        "subscribe_rules": (
            _rule_rows(p.subscribe_rules) if p.subscribe_rules is not None else None
        ),
        "subscribe_rules_created": p.subscribe_rules_created,
        "subscribe_rules_updated": p.subscribe_rules_updated,
        "node_id": p.node_id,
    }


def _published(row: Row[Any]) -> PublishedTrack:
    return PublishedTrack(
        sid=TrackSid(row.sid),
        room_sid=RoomSid(row.room_sid),
        participant_sid=ParticipantSid(row.participant_sid),
        name=row.name,
        kind=TrackKind(row.kind),
        enabled=bool(row.enabled),
        date_created=row.date_created,
        date_updated=row.date_updated,
        ended_at=row.ended_at,
    )


def _subscribed(row: Row[Any]) -> SubscribedTrack:
    return SubscribedTrack(
        sid=TrackSid(row.sid),
        room_sid=RoomSid(row.room_sid),
        participant_sid=ParticipantSid(row.participant_sid),
        publisher_sid=ParticipantSid(row.publisher_sid),
        name=row.name,
        kind=TrackKind(row.kind),
        enabled=bool(row.enabled),
        date_created=row.date_created,
        date_updated=row.date_updated,
        ended_at=row.ended_at,
    )


def _delivery(row: Row[Any]) -> CallbackDelivery:
    return CallbackDelivery(
        id=row.seq,
        account_sid=row.account_sid,
        resource_sid=row.resource_sid,
        sequence_number=row.sequence_number,
        event=row.event,
        url=row.url,
        method=row.method,
        params=dict(row.params),
        status=DeliveryStatus(row.status),
        attempts=row.attempts,
        last_status=row.last_status,
        last_error=row.last_error,
        next_attempt_at=row.next_attempt_at,
        date_created=row.date_created,
        date_updated=row.date_updated,
        node_id=row.node_id,
    )


def _recording(row: Row[Any]) -> Recording:
    return Recording(
        sid=RecordingSid(row.sid),
        account_sid=AccountSid(row.account_sid),
        room_sid=RoomSid(row.room_sid),
        participant_sid=ParticipantSid(row.participant_sid),
        source_sid=TrackSid(row.source_sid),
        track_name=row.track_name,
        type=RecordingType(row.type),
        container_format=ContainerFormat(row.container_format),
        codec=RecordingCodec(row.codec),
        status=RecordingStatus(row.status),
        date_created=row.date_created,
        date_updated=row.date_updated,
        offset=row.offset_ms,
        duration=row.duration,
        size=row.size,
        media_external_location=row.media_external_location,
        status_callback=row.status_callback,
        status_callback_method=row.status_callback_method,
        failure_reason=row.failure_reason,
        media_credentials_sid=row.media_credentials_sid,
        encryption=Envelope.from_json(row.encryption) if row.encryption else None,
        encryption_key_sid=row.encryption_key_sid,
    )


def _recording_values(r: Recording) -> dict[str, Any]:
    return {
        "sid": r.sid,
        "account_sid": r.account_sid,
        "room_sid": r.room_sid,
        "participant_sid": r.participant_sid,
        "source_sid": r.source_sid,
        "track_name": r.track_name,
        "type": r.type.value,
        "container_format": r.container_format.value,
        "codec": r.codec.value,
        "status": r.status.value,
        "date_created": r.date_created,
        "date_updated": r.date_updated,
        "offset_ms": r.offset,
        "duration": r.duration,
        "size": r.size,
        "media_external_location": r.media_external_location,
        "status_callback": r.status_callback,
        "status_callback_method": r.status_callback_method,
        "failure_reason": r.failure_reason,
        "media_credentials_sid": r.media_credentials_sid,
        "encryption": r.encryption.to_json() if r.encryption is not None else None,
        "encryption_key_sid": r.encryption_key_sid,
    }


def _transcription(row: Row[Any]) -> Transcription:
    return Transcription(
        ttid=row.ttid,
        account_sid=AccountSid(row.account_sid),
        room_sid=RoomSid(row.room_sid),
        status=TranscriptionStatus(row.status),
        configuration=dict(row.configuration or {}),
        date_created=row.date_created,
        date_updated=row.date_updated,
        start_time=row.start_time,
        end_time=row.end_time,
        duration=row.duration,
    )


def _transcription_values(t: Transcription) -> dict[str, Any]:
    return {
        "ttid": t.ttid,
        "account_sid": t.account_sid,
        "room_sid": t.room_sid,
        "status": t.status.value,
        "configuration": t.configuration,
        "date_created": t.date_created,
        "date_updated": t.date_updated,
        "start_time": t.start_time,
        "end_time": t.end_time,
        "duration": t.duration,
    }


def _spec_values(spec: CompositionSpec) -> dict[str, Any]:
    return {
        "video_layout": spec.video_layout,
        "audio_sources": list(spec.audio_sources),
        "audio_sources_excluded": list(spec.audio_sources_excluded),
        "resolution": spec.resolution,
        "format": spec.format.value,
        "trim": spec.trim,
    }


def _spec(data: dict[str, Any]) -> CompositionSpec:
    return CompositionSpec(
        video_layout=data.get("video_layout"),
        audio_sources=tuple(data.get("audio_sources", ())),
        audio_sources_excluded=tuple(data.get("audio_sources_excluded", ())),
        resolution=data.get("resolution", "640x480"),
        format=CompositionFormat(data.get("format", "webm")),
        trim=bool(data.get("trim", True)),
    )


def _composition(row: Row[Any]) -> Composition:
    return Composition(
        sid=row.sid,
        account_sid=AccountSid(row.account_sid),
        room_sid=RoomSid(row.room_sid),
        spec=_spec(row.spec),
        status=CompositionStatus(row.status),
        date_created=row.date_created,
        date_updated=row.date_updated,
        date_completed=row.date_completed,
        date_deleted=row.date_deleted,
        duration=row.duration,
        size=row.size,
        bitrate=row.bitrate,
        progress=row.progress,
        media_external_location=row.media_external_location,
        status_callback=row.status_callback,
        status_callback_method=row.status_callback_method,
        hook_sid=row.hook_sid,
        failure_reason=row.failure_reason,
        node_id=row.node_id,
        media_credentials_sid=row.media_credentials_sid,
        encryption_key_sid=row.encryption_key_sid,
        encryption=Envelope.from_json(row.encryption) if row.encryption else None,
    )


def _composition_values(c: Composition) -> dict[str, Any]:
    return {
        "sid": c.sid,
        "account_sid": c.account_sid,
        "room_sid": c.room_sid,
        "status": c.status.value,
        "spec": _spec_values(c.spec),
        "date_created": c.date_created,
        "date_updated": c.date_updated,
        "date_completed": c.date_completed,
        "date_deleted": c.date_deleted,
        "duration": c.duration,
        "size": c.size,
        "bitrate": c.bitrate,
        "progress": c.progress,
        "media_external_location": c.media_external_location,
        "status_callback": c.status_callback,
        "status_callback_method": c.status_callback_method,
        "hook_sid": c.hook_sid,
        "failure_reason": c.failure_reason,
        "node_id": c.node_id,
        "media_credentials_sid": c.media_credentials_sid,
        "encryption_key_sid": c.encryption_key_sid,
        "encryption": c.encryption.to_json() if c.encryption is not None else None,
    }


def _hook(row: Row[Any]) -> CompositionHook:
    return CompositionHook(
        sid=row.sid,
        account_sid=AccountSid(row.account_sid),
        friendly_name=row.friendly_name,
        enabled=bool(row.enabled),
        spec=_spec(row.spec),
        date_created=row.date_created,
        date_updated=row.date_updated,
        status_callback=row.status_callback,
        status_callback_method=row.status_callback_method,
    )


def _hook_values(h: CompositionHook) -> dict[str, Any]:
    return {
        "sid": h.sid,
        "account_sid": h.account_sid,
        "friendly_name": h.friendly_name,
        "enabled": h.enabled,
        "spec": _spec_values(h.spec),
        "date_created": h.date_created,
        "date_updated": h.date_updated,
        "status_callback": h.status_callback,
        "status_callback_method": h.status_callback_method,
    }


def _credential(row: Row[Any]) -> Credential:
    if row.type == CredentialType.AWS:
        return AwsCredential(
            sid=row.sid,
            account_sid=AccountSid(row.account_sid),
            friendly_name=row.friendly_name,
            access_key_id=row.aws_access_key_id,
            secret_sealed=row.aws_secret_sealed,
            date_created=row.date_created,
            date_updated=row.date_updated,
        )
    return PublicKeyCredential(
        sid=row.sid,
        account_sid=AccountSid(row.account_sid),
        friendly_name=row.friendly_name,
        public_key=row.public_key,
        date_created=row.date_created,
        date_updated=row.date_updated,
    )


def _credential_values(c: Credential) -> dict[str, Any]:
    values: dict[str, Any] = {
        "sid": c.sid,
        "account_sid": c.account_sid,
        "friendly_name": c.friendly_name,
        "date_created": c.date_created,
        "date_updated": c.date_updated,
    }
    if isinstance(c, AwsCredential):
        values |= {
            "type": CredentialType.AWS.value,
            "aws_access_key_id": c.access_key_id,
            "aws_secret_sealed": c.secret_sealed,
        }
    else:
        values |= {"type": CredentialType.PUBLIC_KEY.value, "public_key": c.public_key}
    return values


def _media_settings(row: Row[Any]) -> MediaSettings:
    return MediaSettings(
        account_sid=AccountSid(row.account_sid),
        kind=MediaKind(row.kind),
        friendly_name=row.friendly_name,
        aws_credentials_sid=row.aws_credentials_sid,
        aws_s3_url=row.aws_s3_url,
        aws_storage_enabled=row.aws_storage_enabled,
        encryption_key_sid=row.encryption_key_sid,
        encryption_enabled=row.encryption_enabled,
        date_created=row.date_created,
        date_updated=row.date_updated,
    )


class SqlStore:
    """Every persistent record of Parlour, on one SQL database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @classmethod
    async def open(cls, url: str, *, log_personal_data: bool = False) -> SqlStore:
        """Connect and migrate to the newest schema."""
        engine = create_engine(url, log_personal_data=log_personal_data)
        try:
            await migrate.upgrade(engine)
        except BaseException:
            await engine.dispose()  # no pool or connection thread left behind
            raise
        return cls(engine)

    async def close(self) -> None:
        await self.engine.dispose()

    # -- paging ---------------------------------------------------------------------------

    async def _page(
        self,
        query: sa.Select[Any],
        seq: sa.ColumnElement[int],
        req: PageRequest,
        *,
        descending: bool,
    ) -> tuple[list[Row[Any]], str | None, str | None]:
        """Run a keyset-paged query; returns rows and the next/previous page tokens."""
        forward = req.before is None
        if req.after is not None:
            query = query.where(seq < req.after if descending else seq > req.after)
        if req.before is not None:
            query = query.where(seq > req.before if descending else seq < req.before)
        ascending = descending != forward
        query = query.order_by(seq.asc() if ascending else seq.desc())
        query = query.offset(req.offset).limit(req.page_size + 1)
        query = query.add_columns(seq.label("_seq"))
        async with self.engine.connect() as conn:
            rows = list((await conn.execute(query)).all())
        more = len(rows) > req.page_size
        rows = rows[: req.page_size]
        if not forward:
            rows.reverse()
        if not rows:
            return rows, None, None
        first, last = rows[0]._seq, rows[-1]._seq
        has_next = more if forward else True
        has_prev = (req.page > 0 or req.offset > 0 or req.after is not None) if forward else more
        return (
            rows,
            f"PA{last}" if has_next else None,
            f"PB{first}" if has_prev else None,
        )

    # -- instance / accounts / keys -------------------------------------------------------

    async def get_instance_value(self, key: str) -> str | None:
        async with self.engine.connect() as conn:
            value = await conn.scalar(sa.select(instance.c.value).where(instance.c.key == key))
        return value

    async def set_instance_value_once(self, key: str, value: str) -> str:
        """Set `key` unless already set; returns the value that won."""
        try:
            async with self.engine.begin() as conn:
                await conn.execute(sa.insert(instance).values(key=key, value=value))
            return value
        except IntegrityError:
            existing = await self.get_instance_value(key)
            assert existing is not None
            return existing

    async def insert_account(self, account: Account) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(sa.insert(accounts).values(**vars(account)))

    async def delete_account(self, sid: AccountSid) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(sa.delete(media_settings).where(media_settings.c.account_sid == sid))
            await conn.execute(sa.delete(credentials).where(credentials.c.account_sid == sid))
            await conn.execute(sa.delete(accounts).where(accounts.c.sid == sid))

    async def get_account(self, sid: str) -> Account | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(accounts).where(accounts.c.sid == sid))).first()
        if row is None:
            return None
        return Account(
            sid=AccountSid(row.sid),
            friendly_name=row.friendly_name,
            auth_token_hash=row.auth_token_hash,
            date_created=row.date_created,
            date_updated=row.date_updated,
        )

    async def insert_api_key(self, key: ApiKey) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(sa.insert(api_keys).values(**vars(key)))

    @staticmethod
    def _api_key(row: Row[Any]) -> ApiKey:
        return ApiKey(
            sid=ApiKeySid(row.sid),
            account_sid=AccountSid(row.account_sid),
            friendly_name=row.friendly_name,
            secret_hash=row.secret_hash,
            date_created=row.date_created,
            date_updated=row.date_updated,
        )

    async def get_api_key(self, sid: str) -> ApiKey | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(api_keys).where(api_keys.c.sid == sid))).first()
        return None if row is None else self._api_key(row)

    async def list_api_keys(self, account_sid: AccountSid) -> list[ApiKey]:
        query = (
            sa.select(api_keys)
            .where(api_keys.c.account_sid == account_sid)
            .order_by(api_keys.c.date_created, api_keys.c.sid)
        )
        async with self.engine.connect() as conn:
            return [self._api_key(r) for r in (await conn.execute(query)).all()]

    async def delete_api_key(self, account_sid: AccountSid, sid: str) -> bool:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                sa.delete(api_keys).where(
                    api_keys.c.sid == sid, api_keys.c.account_sid == account_sid
                )
            )
        return bool(result.rowcount)

    # -- rooms ----------------------------------------------------------------------------

    async def insert_room(self, room: Room) -> None:
        """Insert a new room.

        Raises:
            RoomError: 53113 when an in-progress room of the account has its UniqueName.
        """
        try:
            async with self.engine.begin() as conn:
                await conn.execute(sa.insert(rooms).values(**_room_values(room)))
        except IntegrityError:
            raise errors.RoomError("Room exists", code=errors.Code.ROOM_EXISTS) from None

    async def get_room(self, account_sid: AccountSid, sid_or_name: str) -> Room | None:
        """A room by SID (any status) or by UniqueName (in-progress rooms only)."""
        query = sa.select(rooms).where(rooms.c.account_sid == account_sid)
        if is_sid(sid_or_name, "RM"):
            query = query.where(rooms.c.sid == sid_or_name)
        else:
            query = query.where(rooms.c.active_name == sid_or_name)
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _room(row)

    async def list_rooms(
        self, account_sid: AccountSid, flt: RoomFilter, req: PageRequest
    ) -> Page[Room]:
        query = sa.select(rooms).where(rooms.c.account_sid == account_sid)
        if flt.status is not None:
            query = query.where(rooms.c.status == flt.status.value)
        if flt.unique_name is not None:
            query = query.where(rooms.c.unique_name == flt.unique_name)
        if flt.created_after is not None:
            query = query.where(rooms.c.date_created >= flt.created_after)
        if flt.created_before is not None:
            query = query.where(rooms.c.date_created < flt.created_before)
        rows, nxt, prev = await self._page(query, rooms.c.seq, req, descending=True)
        return Page([_room(r) for r in rows], nxt, prev)

    async def idle_rooms(self) -> list[Room]:
        """In-progress rooms that nobody is in (candidates for the idle timeouts)."""
        query = sa.select(rooms).where(
            rooms.c.status == RoomStatus.IN_PROGRESS.value, rooms.c.empty_since.is_not(None)
        )
        async with self.engine.connect() as conn:
            return [_room(r) for r in (await conn.execute(query.order_by(rooms.c.seq))).all()]

    # Every transition below is one transaction whose first statement is a conditional
    # write: concurrent callers serialise on the row lock (PostgreSQL re-checks the WHERE
    # clause after waiting; SQLite has one writer), so exactly one of them sees the row, and
    # SQLite never has to upgrade a read snapshot to a write (SQLITE_BUSY_SNAPSHOT).

    async def complete_room(self, sid: RoomSid, now: dt.datetime) -> Room | None:
        """`in-progress` → `completed`; None if it was not in progress.

        Sets `end_time` and `date_updated` to `now`, `duration` to the whole seconds since
        `date_created` (as `Room.completed`), clears `empty_since`, and frees the UniqueName.
        """
        async with self.engine.begin() as conn:
            created = (
                await conn.execute(
                    sa.update(rooms)
                    .where(rooms.c.sid == sid, rooms.c.status == RoomStatus.IN_PROGRESS.value)
                    .values(
                        status=RoomStatus.COMPLETED.value,
                        active_name=None,
                        end_time=now,
                        date_updated=now,
                        empty_since=None,
                    )
                    .returning(rooms.c.date_created)
                )
            ).scalar()
            if created is None:
                return None
            duration = max(0, int((now - created).total_seconds()))
            row = (
                await conn.execute(
                    sa.update(rooms)
                    .where(rooms.c.sid == sid)
                    .values(duration=duration)
                    .returning(*rooms.c)
                )
            ).one()
        return _room(row)

    async def set_room_occupied(self, sid: RoomSid, now: dt.datetime) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                sa.update(rooms)
                .where(rooms.c.sid == sid, rooms.c.status == RoomStatus.IN_PROGRESS.value)
                .values(empty_since=None, ever_joined=True, date_updated=now)
            )

    async def set_room_empty_if_vacant(self, sid: RoomSid, now: dt.datetime) -> bool:
        p = participants
        someone = sa.exists().where(
            p.c.room_sid == sid, p.c.status != ParticipantStatus.DISCONNECTED.value
        )
        async with self.engine.begin() as conn:
            result = await conn.execute(
                sa.update(rooms)
                .where(
                    rooms.c.sid == sid,
                    rooms.c.status == RoomStatus.IN_PROGRESS.value,
                    rooms.c.empty_since.is_(None),
                    ~someone,
                )
                .values(empty_since=now, date_updated=now)
            )
        return bool(result.rowcount)

    async def set_recording_rules(
        self, sid: RoomSid, rules: tuple[Rule, ...], now: dt.datetime
    ) -> Room | None:
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    sa.update(rooms)
                    .where(rooms.c.sid == sid, rooms.c.status == RoomStatus.IN_PROGRESS.value)
                    .values(
                        recording_rules=_rule_rows(rules),
                        recording_rules_updated=now,
                        date_updated=now,
                    )
                    .returning(*rooms.c)
                )
            ).first()
        return None if row is None else _room(row)

    # -- participants ---------------------------------------------------------------------

    async def insert_participant(self, participant: Participant) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(sa.insert(participants).values(**_participant_values(participant)))

    async def get_participant(self, room_sid: RoomSid, sid_or_identity: str) -> Participant | None:
        """By PA SID, or by identity (the connected one first, else the latest)."""
        query = sa.select(participants).where(participants.c.room_sid == room_sid)
        if is_sid(sid_or_identity, "PA"):
            query = query.where(participants.c.sid == sid_or_identity)
        else:
            query = query.where(participants.c.identity == sid_or_identity).order_by(
                (participants.c.status == ParticipantStatus.DISCONNECTED.value).asc(),
                participants.c.seq.desc(),
            )
        async with self.engine.connect() as conn:
            row = (await conn.execute(query.limit(1))).first()
        return None if row is None else _participant(row)

    async def list_participants(
        self, room_sid: RoomSid, flt: ParticipantFilter, req: PageRequest
    ) -> Page[Participant]:
        query = sa.select(participants).where(participants.c.room_sid == room_sid)
        if flt.statuses is not None:
            query = query.where(participants.c.status.in_([s.value for s in flt.statuses]))
        if flt.identity is not None:
            query = query.where(participants.c.identity == flt.identity)
        if flt.created_after is not None:
            query = query.where(participants.c.date_created >= flt.created_after)
        if flt.created_before is not None:
            query = query.where(participants.c.date_created < flt.created_before)
        rows, nxt, prev = await self._page(query, participants.c.seq, req, descending=False)
        return Page([_participant(r) for r in rows], nxt, prev)

    async def active_participants(self, room_sid: RoomSid) -> list[Participant]:
        query = (
            sa.select(participants)
            .where(
                participants.c.room_sid == room_sid,
                participants.c.status != ParticipantStatus.DISCONNECTED.value,
            )
            .order_by(participants.c.seq)
        )
        async with self.engine.connect() as conn:
            return [_participant(r) for r in (await conn.execute(query)).all()]

    async def disconnect_participant(
        self, sid: ParticipantSid, now: dt.datetime
    ) -> tuple[Participant, list[PublishedTrack]] | None:
        """Active → `disconnected` (end time, duration as `Participant.disconnected`), its
        live tracks and every subscription to them or of it ended, in one transaction."""
        p, pub, sub = participants, published_tracks, subscribed_tracks
        async with self.engine.begin() as conn:
            started = (
                await conn.execute(
                    sa.update(p)
                    .where(p.c.sid == sid, p.c.status != ParticipantStatus.DISCONNECTED.value)
                    .values(
                        status=ParticipantStatus.DISCONNECTED.value, end_time=now, date_updated=now
                    )
                    .returning(sa.func.coalesce(p.c.start_time, p.c.date_created))
                )
            ).scalar()
            if started is None:
                return None
            if started.tzinfo is None:  # coalesce() loses the column type's conversion
                started = started.replace(tzinfo=dt.UTC)
            duration = max(0, int((now - started).total_seconds()))
            row = (
                await conn.execute(
                    sa.update(p).where(p.c.sid == sid).values(duration=duration).returning(*p.c)
                )
            ).one()
            ended = (
                await conn.execute(
                    sa.update(pub)
                    .where(pub.c.participant_sid == sid, pub.c.ended_at.is_(None))
                    .values(ended_at=now, date_updated=now)
                    .returning(*pub.c)
                )
            ).all()
            await conn.execute(
                sa.update(sub)
                .where(
                    sa.or_(sub.c.participant_sid == sid, sub.c.publisher_sid == sid),
                    sub.c.ended_at.is_(None),
                )
                .values(ended_at=now, date_updated=now)
            )
        tracks = [_published(r) for r in sorted(ended, key=lambda r: r.seq)]
        return _participant(row), tracks

    async def set_participant_status(
        self, sid: ParticipantSid, status: ParticipantStatus, now: dt.datetime
    ) -> Participant | None:
        """Raises ValueError for `disconnected`: that is `disconnect_participant`."""
        if status is ParticipantStatus.DISCONNECTED:
            raise ValueError("disconnect with disconnect_participant")
        return await self._update_participant(
            sid,
            {"status": status.value, "date_updated": now},
            participants.c.status != ParticipantStatus.DISCONNECTED.value,
        )

    async def anonymize_participant(
        self, sid: ParticipantSid, now: dt.datetime
    ) -> Participant | None:
        return await self._update_participant(
            sid, {"identity": participants.c.sid, "date_updated": now}
        )

    async def set_subscribe_rules(
        self, sid: ParticipantSid, rules: tuple[Rule, ...], now: dt.datetime
    ) -> Participant | None:
        p = participants
        values = {
            "subscribe_rules": _rule_rows(rules),
            "subscribe_rules_created": sa.func.coalesce(
                p.c.subscribe_rules_created, sa.literal(now, p.c.subscribe_rules_created.type)
            ),
            "subscribe_rules_updated": now,
            "date_updated": now,
        }
        return await self._update_participant(sid, values)

    async def _update_participant(
        self, sid: ParticipantSid, values: dict[str, Any], *conditions: sa.ColumnElement[bool]
    ) -> Participant | None:
        p = participants
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    sa.update(p).where(p.c.sid == sid, *conditions).values(**values).returning(*p.c)
                )
            ).first()
        return None if row is None else _participant(row)

    # -- tracks ---------------------------------------------------------------------------

    async def insert_published_track(self, track: PublishedTrack) -> bool:
        pub, p = published_tracks, participants
        values = vars(track) | {"kind": track.kind.value}
        active = sa.and_(
            p.c.sid == track.participant_sid,
            p.c.status != ParticipantStatus.DISCONNECTED.value,
        )
        async with self.engine.begin() as conn:
            if self.engine.dialect.name == "postgresql":
                # Lock the participant's row: a disconnect in flight (which ends the
                # participant's tracks) commits first, or waits for this insert to commit.
                await conn.execute(sa.select(p.c.sid).where(active).with_for_update())
            inserted = await conn.execute(
                sa.insert(pub).from_select(
                    list(values),
                    sa.select(
                        *(sa.literal(v, type_=pub.c[k].type) for k, v in values.items())
                    ).where(sa.exists().where(active)),
                )
            )
        return inserted.rowcount == 1

    async def end_published_track(self, sid: TrackSid, now: dt.datetime) -> PublishedTrack | None:
        pub, sub = published_tracks, subscribed_tracks
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    sa.update(pub)
                    .where(pub.c.sid == sid, pub.c.ended_at.is_(None))
                    .values(ended_at=now, date_updated=now)
                    .returning(*pub.c)
                )
            ).first()
            if row is None:
                return None
            await conn.execute(
                sa.update(sub)
                .where(sub.c.sid == sid, sub.c.ended_at.is_(None))
                .values(ended_at=now, date_updated=now)
            )
        return _published(row)

    async def set_track_enabled(
        self, sid: TrackSid, enabled: bool, now: dt.datetime
    ) -> PublishedTrack | None:
        """Only the published track changes (subscriptions keep what they started with)."""
        pub = published_tracks
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    sa.update(pub)
                    .where(pub.c.sid == sid, pub.c.ended_at.is_(None), pub.c.enabled != enabled)
                    .values(enabled=enabled, date_updated=now)
                    .returning(*pub.c)
                )
            ).first()
        return None if row is None else _published(row)

    async def get_published_track(
        self, participant_sid: ParticipantSid, sid_or_name: str
    ) -> PublishedTrack | None:
        """A currently published track by MT SID or name."""
        column = published_tracks.c.sid if is_sid(sid_or_name, "MT") else published_tracks.c.name
        query = sa.select(published_tracks).where(
            published_tracks.c.participant_sid == participant_sid,
            published_tracks.c.ended_at.is_(None),
            column == sid_or_name,
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _published(row)

    async def list_published_tracks(
        self, participant_sid: ParticipantSid, req: PageRequest
    ) -> Page[PublishedTrack]:
        query = sa.select(published_tracks).where(
            published_tracks.c.participant_sid == participant_sid,
            published_tracks.c.ended_at.is_(None),
        )
        rows, nxt, prev = await self._page(query, published_tracks.c.seq, req, descending=False)
        return Page([_published(r) for r in rows], nxt, prev)

    async def insert_subscribed_track(self, track: SubscribedTrack) -> bool:
        """One INSERT … SELECT whose WHERE holds the conditions.

        On PostgreSQL the SELECT takes a share lock on the subscriber and track rows, so it
        waits for a concurrent `disconnect_participant` / `end_published_track` and then
        sees its result (and they, in turn, see this subscription). A unique partial index
        keeps one live subscription per subscriber and track against a concurrent insert.
        """
        p, pub, sub = participants, published_tracks, subscribed_tracks
        values = vars(track) | {"kind": track.kind.value}
        names = list(values)
        already = sa.exists().where(
            sub.c.participant_sid == track.participant_sid,
            sub.c.sid == track.sid,
            sub.c.ended_at.is_(None),
        )
        source = (
            sa.select(*(sa.literal(v, sub.c[k].type) for k, v in values.items()))
            .select_from(p.join(pub, sa.true()))
            .where(
                p.c.sid == track.participant_sid,
                p.c.status != ParticipantStatus.DISCONNECTED.value,
                pub.c.sid == track.sid,
                pub.c.ended_at.is_(None),
                ~already,
            )
            .with_for_update(read=True)
        )
        try:
            async with self.engine.begin() as conn:
                result = await conn.execute(sa.insert(sub).from_select(names, source))
        except IntegrityError:
            return False
        return bool(result.rowcount)

    async def end_subscribed_track(
        self, participant_sid: ParticipantSid, sid: TrackSid, now: dt.datetime
    ) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                sa.update(subscribed_tracks)
                .where(
                    subscribed_tracks.c.participant_sid == participant_sid,
                    subscribed_tracks.c.sid == sid,
                    subscribed_tracks.c.ended_at.is_(None),
                )
                .values(ended_at=now, date_updated=now)
            )

    async def get_subscribed_track(
        self, participant_sid: ParticipantSid, sid: str
    ) -> SubscribedTrack | None:
        query = (
            sa.select(subscribed_tracks)
            .where(
                subscribed_tracks.c.participant_sid == participant_sid,
                subscribed_tracks.c.sid == sid,
                subscribed_tracks.c.ended_at.is_(None),
            )
            .order_by(subscribed_tracks.c.seq.desc())
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(query.limit(1))).first()
        return None if row is None else _subscribed(row)

    async def list_subscribed_tracks(
        self, participant_sid: ParticipantSid, req: PageRequest
    ) -> Page[SubscribedTrack]:
        query = sa.select(subscribed_tracks).where(
            subscribed_tracks.c.participant_sid == participant_sid,
            subscribed_tracks.c.ended_at.is_(None),
        )
        rows, nxt, prev = await self._page(query, subscribed_tracks.c.seq, req, descending=False)
        return Page([_subscribed(r) for r in rows], nxt, prev)

    async def active_published_tracks(
        self, participant_sid: ParticipantSid
    ) -> list[PublishedTrack]:
        """A participant's currently published tracks, in publication order."""
        query = (
            sa.select(published_tracks)
            .where(
                published_tracks.c.participant_sid == participant_sid,
                published_tracks.c.ended_at.is_(None),
            )
            .order_by(published_tracks.c.seq)
        )
        async with self.engine.connect() as conn:
            return [_published(r) for r in (await conn.execute(query)).all()]

    # -- nodes ----------------------------------------------------------------------------

    async def heartbeat_node(self, node_id: str, now: dt.datetime) -> None:
        """One upsert: `started_at` is the first heartbeat, `heartbeat_at` the latest."""
        dialect = self.engine.dialect.name
        if dialect == "postgresql":
            pg = postgresql.insert(nodes).values(node_id=node_id, started_at=now, heartbeat_at=now)
            stmt: Any = pg.on_conflict_do_update(
                index_elements=[nodes.c.node_id], set_={"heartbeat_at": pg.excluded.heartbeat_at}
            )
        elif dialect == "sqlite":
            lite = sqlite.insert(nodes).values(node_id=node_id, started_at=now, heartbeat_at=now)
            stmt = lite.on_conflict_do_update(
                index_elements=[nodes.c.node_id],
                set_={"heartbeat_at": lite.excluded.heartbeat_at},
            )
        else:  # pragma: no cover - only SQLite and PostgreSQL are supported
            raise NotImplementedError(dialect)
        async with self.engine.begin() as conn:
            await conn.execute(stmt)

    async def stale_nodes(self, before: dt.datetime) -> list[str]:
        """Oldest heartbeat first."""
        query = (
            sa.select(nodes.c.node_id)
            .where(nodes.c.heartbeat_at < before)
            .order_by(nodes.c.heartbeat_at, nodes.c.node_id)
        )
        async with self.engine.connect() as conn:
            return list((await conn.scalars(query)).all())

    async def active_participants_of_node(self, node_id: str) -> list[Participant]:
        """In the order they joined."""
        p = participants
        query = (
            sa.select(p)
            .where(p.c.node_id == node_id, p.c.status != ParticipantStatus.DISCONNECTED.value)
            .order_by(p.c.seq)
        )
        async with self.engine.connect() as conn:
            return [_participant(r) for r in (await conn.execute(query)).all()]

    async def delete_node(self, node_id: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(sa.delete(nodes).where(nodes.c.node_id == node_id))

    # -- status callbacks -----------------------------------------------------------------

    async def insert_callback_delivery(self, delivery: CallbackDelivery) -> CallbackDelivery:
        """Store a pending callback with the next sequence number of its resource.

        The number is taken inside the insert statement itself, so it is atomic on SQLite;
        callers serialise the callbacks of one resource (the unique index catches the rest).
        """
        t = callback_deliveries
        next_number = (
            sa.select(sa.func.coalesce(sa.func.max(t.c.sequence_number) + 1, 0))
            .where(t.c.resource_sid == delivery.resource_sid)
            .scalar_subquery()
        )
        updated = delivery.date_updated or delivery.date_created
        values = {
            "account_sid": delivery.account_sid,
            "resource_sid": delivery.resource_sid,
            "sequence_number": next_number,
            "event": delivery.event,
            "url": delivery.url,
            "method": delivery.method,
            "params": delivery.params,
            "status": delivery.status.value,
            "attempts": delivery.attempts,
            "last_status": delivery.last_status,
            "last_error": delivery.last_error,
            "next_attempt_at": delivery.next_attempt_at,
            "date_created": delivery.date_created,
            "date_updated": updated,
            "node_id": delivery.node_id,
        }
        async with self.engine.begin() as conn:
            result = await conn.execute(
                sa.insert(t).values(**values).returning(t.c.seq, t.c.sequence_number)
            )
            row = result.one()
        return replace(
            delivery, id=row.seq, sequence_number=row.sequence_number, date_updated=updated
        )

    async def update_callback_delivery(self, delivery: CallbackDelivery) -> None:
        """Record an attempt: status, attempts, last status/error and the next attempt time."""
        t = callback_deliveries
        async with self.engine.begin() as conn:
            await conn.execute(
                sa.update(t)
                .where(t.c.seq == delivery.id)
                .values(
                    status=delivery.status.value,
                    attempts=delivery.attempts,
                    last_status=delivery.last_status,
                    last_error=delivery.last_error[:512] if delivery.last_error else None,
                    next_attempt_at=delivery.next_attempt_at,
                    date_updated=delivery.date_updated or delivery.date_created,
                )
            )

    async def pending_callback_deliveries(self) -> list[CallbackDelivery]:
        t = callback_deliveries
        query = (
            sa.select(t)
            .where(t.c.status == DeliveryStatus.PENDING.value)
            .order_by(t.c.resource_sid, t.c.sequence_number)
        )
        async with self.engine.connect() as conn:
            return [_delivery(r) for r in (await conn.execute(query)).all()]

    async def adopt_callback_deliveries(
        self, node_id: str, *, alive_since: dt.datetime | None = None
    ) -> list[CallbackDelivery]:
        """Take over other nodes' pending callbacks, in one conditional update: all of
        them (`alive_since` None), or only those of nodes that have not beaten since
        `alive_since` or are forgotten (and those of no node). In sequence order."""
        t = callback_deliveries
        conditions = [
            t.c.status == DeliveryStatus.PENDING.value,
            sa.or_(t.c.node_id.is_(None), t.c.node_id != node_id),
        ]
        if alive_since is not None:
            alive = sa.select(nodes.c.node_id).where(nodes.c.heartbeat_at >= alive_since)
            conditions.append(sa.or_(t.c.node_id.is_(None), t.c.node_id.not_in(alive)))
        query = sa.update(t).where(*conditions).values(node_id=node_id).returning(*t.c)
        async with self.engine.begin() as conn:
            taken = [_delivery(r) for r in (await conn.execute(query)).all()]
        return sorted(taken, key=lambda d: (d.resource_sid, d.sequence_number or 0))

    async def list_callback_deliveries(self, resource_sid: str) -> list[CallbackDelivery]:
        """Every callback of one resource (room), in sequence order."""
        t = callback_deliveries
        query = sa.select(t).where(t.c.resource_sid == resource_sid).order_by(t.c.sequence_number)
        async with self.engine.connect() as conn:
            return [_delivery(r) for r in (await conn.execute(query)).all()]

    # -- recordings -----------------------------------------------------------------------

    async def insert_recording(self, recording: Recording) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(sa.insert(recordings).values(**_recording_values(recording)))

    async def update_recording(self, recording: Recording, *, expected: RecordingStatus) -> bool:
        values = _recording_values(recording)
        del values["sid"]
        query = (
            sa.update(recordings)
            .where(recordings.c.sid == recording.sid, recordings.c.status == expected.value)
            .values(**values)
        )
        async with self.engine.begin() as conn:
            result = await conn.execute(query)
        return bool(result.rowcount)

    async def get_recording(self, account_sid: AccountSid, sid: str) -> Recording | None:
        query = sa.select(recordings).where(
            recordings.c.account_sid == account_sid, recordings.c.sid == sid
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _recording(row)

    async def list_recordings(
        self, account_sid: AccountSid, flt: RecordingFilter, req: PageRequest
    ) -> Page[Recording]:
        """Newest first; every `GroupingSid` must be the room's or the participant's SID."""
        t = recordings
        query = sa.select(t).where(t.c.account_sid == account_sid)
        if flt.room_sid is not None:
            query = query.where(t.c.room_sid == flt.room_sid)
        if flt.status is not None:
            query = query.where(t.c.status == flt.status.value)
        if flt.source_sid is not None:
            query = query.where(t.c.source_sid == flt.source_sid)
        for sid in flt.grouping_sids:
            query = query.where(sa.or_(t.c.room_sid == sid, t.c.participant_sid == sid))
        if flt.media_type is not None:
            query = query.where(t.c.type == flt.media_type.value)
        if flt.created_after is not None:
            query = query.where(t.c.date_created >= flt.created_after)
        if flt.created_before is not None:
            query = query.where(t.c.date_created < flt.created_before)
        rows, nxt, prev = await self._page(query, t.c.seq, req, descending=True)
        return Page([_recording(r) for r in rows], nxt, prev)

    async def recordings_with_status(self, status: RecordingStatus) -> list[Recording]:
        query = sa.select(recordings).where(recordings.c.status == status.value)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query.order_by(recordings.c.seq))).all()
        return [_recording(r) for r in rows]

    # -- transcriptions -------------------------------------------------------------------

    async def insert_transcription(self, transcription: Transcription) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                sa.insert(transcriptions).values(**_transcription_values(transcription))
            )

    async def update_transcription(
        self, transcription: Transcription, *, expected: TranscriptionStatus
    ) -> bool:
        t = transcriptions
        values = _transcription_values(transcription)
        del values["ttid"]
        query = (
            sa.update(t)
            .where(t.c.ttid == transcription.ttid, t.c.status == expected.value)
            .values(**values)
        )
        async with self.engine.begin() as conn:
            result = await conn.execute(query)
        return bool(result.rowcount)

    # -- compositions ---------------------------------------------------------------------

    async def insert_composition(self, composition: Composition) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(sa.insert(compositions).values(**_composition_values(composition)))

    async def update_composition(
        self, composition: Composition, *, expected: CompositionStatus
    ) -> bool:
        values = _composition_values(composition)
        del values["sid"]
        t = compositions
        query = (
            sa.update(t)
            .where(t.c.sid == composition.sid, t.c.status == expected.value)
            .values(**values)
        )
        async with self.engine.begin() as conn:
            result = await conn.execute(query)
        return bool(result.rowcount)

    async def get_transcription(
        self, account_sid: AccountSid, room_sid: RoomSid, ttid: str
    ) -> Transcription | None:
        t = transcriptions
        query = sa.select(t).where(
            t.c.account_sid == account_sid, t.c.room_sid == room_sid, t.c.ttid == ttid
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _transcription(row)

    async def list_transcriptions(
        self, account_sid: AccountSid, room_sid: RoomSid, req: PageRequest
    ) -> Page[Transcription]:
        """In the order they were created."""
        t = transcriptions
        query = sa.select(t).where(t.c.account_sid == account_sid, t.c.room_sid == room_sid)
        rows, nxt, prev = await self._page(query, t.c.seq, req, descending=False)
        return Page([_transcription(r) for r in rows], nxt, prev)

    async def room_transcriptions(self, room_sid: RoomSid) -> list[Transcription]:
        t = transcriptions
        query = sa.select(t).where(t.c.room_sid == room_sid).order_by(t.c.seq)
        async with self.engine.connect() as conn:
            return [_transcription(r) for r in (await conn.execute(query)).all()]

    async def get_composition(self, account_sid: AccountSid, sid: str) -> Composition | None:
        t = compositions
        query = sa.select(t).where(t.c.account_sid == account_sid, t.c.sid == sid)
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _composition(row)

    async def list_compositions(
        self, account_sid: AccountSid, flt: CompositionFilter, req: PageRequest
    ) -> Page[Composition]:
        t = compositions
        query = sa.select(t).where(t.c.account_sid == account_sid)
        if flt.room_sid is not None:
            query = query.where(t.c.room_sid == flt.room_sid)
        if flt.status is not None:
            query = query.where(t.c.status == flt.status.value)
        if flt.created_after is not None:
            query = query.where(t.c.date_created >= flt.created_after)
        if flt.created_before is not None:
            query = query.where(t.c.date_created < flt.created_before)
        rows, nxt, prev = await self._page(query, t.c.seq, req, descending=True)
        return Page([_composition(r) for r in rows], nxt, prev)

    async def compositions_with_status(self, status: CompositionStatus) -> list[Composition]:
        t = compositions
        query = sa.select(t).where(t.c.status == status.value).order_by(t.c.seq)
        async with self.engine.connect() as conn:
            return [_composition(r) for r in (await conn.execute(query)).all()]

    async def expired_compositions(
        self, account_sid: AccountSid, before: dt.datetime, limit: int
    ) -> list[Composition]:
        t = compositions
        query = (
            sa.select(t)
            .where(
                t.c.account_sid == account_sid,
                t.c.status == CompositionStatus.COMPLETED.value,
                t.c.date_created < before,
            )
            .order_by(t.c.seq)
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            return [_composition(r) for r in (await conn.execute(query)).all()]

    async def insert_composition_hook(self, hook: CompositionHook) -> bool:
        try:
            async with self.engine.begin() as conn:
                await conn.execute(sa.insert(composition_hooks).values(**_hook_values(hook)))
        except IntegrityError:
            return False
        return True

    async def update_composition_hook(self, hook: CompositionHook) -> bool:
        values = _hook_values(hook)
        del values["sid"]
        t = composition_hooks
        try:
            async with self.engine.begin() as conn:
                result = await conn.execute(
                    sa.update(t)
                    .where(t.c.sid == hook.sid, t.c.account_sid == hook.account_sid)
                    .values(**values)
                )
        except IntegrityError:
            return False
        return bool(result.rowcount)

    async def get_composition_hook(
        self, account_sid: AccountSid, sid: str
    ) -> CompositionHook | None:
        t = composition_hooks
        query = sa.select(t).where(t.c.account_sid == account_sid, t.c.sid == sid)
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _hook(row)

    async def list_composition_hooks(
        self, account_sid: AccountSid, flt: CompositionHookFilter, req: PageRequest
    ) -> Page[CompositionHook]:
        t = composition_hooks
        query = sa.select(t).where(t.c.account_sid == account_sid)
        if flt.enabled is not None:
            query = query.where(t.c.enabled == flt.enabled)
        if flt.friendly_name is not None:
            query = query.where(
                sa.func.lower(t.c.friendly_name).like(like_pattern(flt.friendly_name), escape="\\")
            )
        if flt.created_after is not None:
            query = query.where(t.c.date_created >= flt.created_after)
        if flt.created_before is not None:
            query = query.where(t.c.date_created < flt.created_before)
        rows, nxt, prev = await self._page(query, t.c.seq, req, descending=True)
        return Page([_hook(r) for r in rows], nxt, prev)

    async def delete_composition_hook(self, account_sid: AccountSid, sid: str) -> bool:
        t = composition_hooks
        async with self.engine.begin() as conn:
            result = await conn.execute(
                sa.delete(t).where(t.c.account_sid == account_sid, t.c.sid == sid)
            )
        return bool(result.rowcount)

    # -- media settings and credentials ---------------------------------------------------

    async def insert_credential(self, credential: Credential) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(sa.insert(credentials).values(**_credential_values(credential)))

    async def get_credential(self, account_sid: AccountSid, sid: str) -> Credential | None:
        t = credentials
        query = sa.select(t).where(t.c.account_sid == account_sid, t.c.sid == sid)
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _credential(row)

    async def list_credentials(
        self, account_sid: AccountSid, type: CredentialType, req: PageRequest
    ) -> Page[Credential]:
        t = credentials
        query = sa.select(t).where(t.c.account_sid == account_sid, t.c.type == type.value)
        rows, nxt, prev = await self._page(query, t.c.seq, req, descending=False)
        return Page([_credential(r) for r in rows], nxt, prev)

    async def rename_credential(
        self, account_sid: AccountSid, sid: str, friendly_name: str | None, now: dt.datetime
    ) -> Credential | None:
        t = credentials
        async with self.engine.begin() as conn:
            await conn.execute(
                sa.update(t)
                .where(t.c.account_sid == account_sid, t.c.sid == sid)
                .values(friendly_name=friendly_name, date_updated=now)
            )
            row = (
                await conn.execute(
                    sa.select(t).where(t.c.account_sid == account_sid, t.c.sid == sid)
                )
            ).first()
        return None if row is None else _credential(row)

    async def delete_credential(self, account_sid: AccountSid, sid: str) -> bool:
        t = credentials
        async with self.engine.begin() as conn:
            result = await conn.execute(
                sa.delete(t).where(t.c.account_sid == account_sid, t.c.sid == sid)
            )
        return bool(result.rowcount)

    async def get_media_settings(
        self, account_sid: AccountSid, kind: MediaKind
    ) -> MediaSettings | None:
        t = media_settings
        query = sa.select(t).where(t.c.account_sid == account_sid, t.c.kind == kind.value)
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _media_settings(row)

    async def put_media_settings(self, settings: MediaSettings) -> None:
        t = media_settings
        values = {
            "friendly_name": settings.friendly_name,
            "aws_credentials_sid": settings.aws_credentials_sid,
            "aws_s3_url": settings.aws_s3_url,
            "aws_storage_enabled": settings.aws_storage_enabled,
            "encryption_key_sid": settings.encryption_key_sid,
            "encryption_enabled": settings.encryption_enabled,
            "date_created": settings.date_created,
            "date_updated": settings.date_updated,
        }
        key = (t.c.account_sid == settings.account_sid, t.c.kind == settings.kind.value)
        for _ in range(2):  # two first POSTs at once: the loser's insert becomes an update
            try:
                async with self.engine.begin() as conn:
                    result = await conn.execute(sa.update(t).where(*key).values(**values))
                    if not result.rowcount:
                        await conn.execute(
                            sa.insert(t).values(
                                account_sid=settings.account_sid,
                                kind=settings.kind.value,
                                **values,
                            )
                        )
                return
            except IntegrityError:
                continue

    # -- privacy --------------------------------------------------------------------------

    async def personal_data(self, account_sid: AccountSid, identity: str | None) -> PersonalData:
        async with self.engine.connect() as conn:
            return await _personal_data(conn, account_sid, identity)

    async def erase_personal_data(
        self, account_sid: AccountSid, identity: str | None
    ) -> PersonalData:
        async with self.engine.begin() as conn:
            # A write first: on SQLite it takes the write lock (so what is read next is the
            # newest state and stays so until commit); on PostgreSQL it locks the rows.
            if identity is None:
                await conn.execute(
                    sa.update(rooms)
                    .where(rooms.c.account_sid == account_sid)
                    .values(status=rooms.c.status)
                )
            else:
                await conn.execute(
                    sa.update(participants)
                    .where(
                        participants.c.account_sid == account_sid,
                        participants.c.identity == identity,
                    )
                    .values(status=participants.c.status)
                )
            data = await _personal_data(conn, account_sid, identity)
            check_erasable(data, whole_account=identity is None)
            sub, pub = subscribed_tracks, published_tracks
            psids = [p.sid for p in data.participants]
            await _delete_in(conn, sub, sub.c.participant_sid, psids)
            await _delete_in(conn, sub, sub.c.publisher_sid, psids)
            await _delete_in(conn, pub, pub.c.sid, [t.sid for t in data.published_tracks])
            await _delete_in(conn, recordings, recordings.c.sid, [r.sid for r in data.recordings])
            await _delete_in(
                conn, compositions, compositions.c.sid, [c.sid for c in data.compositions]
            )
            await _delete_in(
                conn,
                callback_deliveries,
                callback_deliveries.c.seq,
                [d.id for d in data.callback_deliveries],
            )
            await _delete_in(
                conn, participants, participants.c.sid, [p.sid for p in data.participants]
            )
            if identity is None:
                tr = transcriptions
                await _delete_in(conn, tr, tr.c.ttid, [t.ttid for t in data.transcriptions])
                await _delete_in(conn, rooms, rooms.c.sid, [r.sid for r in data.rooms])
        return data

    async def reclaim_space(self) -> None:
        dialect = self.engine.dialect.name
        async with self.engine.connect() as conn:
            auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
            if dialect == "sqlite":
                await _sqlite_checkpoint(auto)
                await auto.exec_driver_sql("VACUUM")
                await _sqlite_checkpoint(auto)
            elif dialect == "postgresql":
                names = ", ".join(
                    t.name
                    for t in (
                        rooms,
                        participants,
                        published_tracks,
                        subscribed_tracks,
                        recordings,
                        compositions,
                        callback_deliveries,
                    )
                )
                await auto.exec_driver_sql(f"VACUUM {names}")
                await _postgres_reclaim(auto)

    async def get_retention(self, account_sid: AccountSid) -> RetentionSettings | None:
        t = retention_policies
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(t).where(t.c.account_sid == account_sid))).first()
        return None if row is None else _retention(row)

    async def set_retention(
        self, account_sid: AccountSid, policy: RetentionPolicy, now: dt.datetime
    ) -> RetentionSettings:
        t = retention_policies
        days = {
            "identity_days": policy.identity_days,
            "recording_days": policy.recording_days,
            "callback_days": policy.callback_days,
        }
        async with self.engine.begin() as conn:
            updated = await conn.execute(
                sa.update(t).where(t.c.account_sid == account_sid).values(**days, date_updated=now)
            )
            if not updated.rowcount:
                try:
                    async with conn.begin_nested():
                        await conn.execute(
                            sa.insert(t).values(
                                account_sid=account_sid, date_created=now, date_updated=now, **days
                            )
                        )
                except IntegrityError:  # inserted meanwhile: ours is the newer write
                    await conn.execute(
                        sa.update(t)
                        .where(t.c.account_sid == account_sid)
                        .values(**days, date_updated=now)
                    )
            row = (await conn.execute(sa.select(t).where(t.c.account_sid == account_sid))).one()
        return _retention(row)

    async def account_sids(self) -> list[AccountSid]:
        query = sa.select(accounts.c.sid).order_by(accounts.c.date_created, accounts.c.sid)
        async with self.engine.connect() as conn:
            return [AccountSid(sid) for sid in (await conn.scalars(query)).all()]

    async def participants_to_anonymize(
        self, account_sid: AccountSid, ended_before: dt.datetime, limit: int
    ) -> list[Participant]:
        p, r = participants, rooms
        query = (
            sa.select(p)
            .join(r, r.c.sid == p.c.room_sid)
            .where(
                p.c.account_sid == account_sid,
                r.c.status != RoomStatus.IN_PROGRESS.value,
                r.c.end_time < ended_before,
                p.c.identity != p.c.sid,
            )
            .order_by(p.c.seq)
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            return [_participant(row) for row in (await conn.execute(query)).all()]

    async def expired_recordings(
        self, account_sid: AccountSid, before: dt.datetime, limit: int
    ) -> list[Recording]:
        t = recordings
        query = (
            sa.select(t)
            .where(
                t.c.account_sid == account_sid,
                t.c.status.in_([RecordingStatus.COMPLETED.value, RecordingStatus.FAILED.value]),
                t.c.date_created < before,
            )
            .order_by(t.c.seq)
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            return [_recording(row) for row in (await conn.execute(query)).all()]

    async def purge_callback_deliveries(
        self, account_sid: AccountSid, before: dt.datetime, limit: int
    ) -> list[int]:
        t = callback_deliveries
        live_rooms = sa.select(rooms.c.sid).where(rooms.c.status == RoomStatus.IN_PROGRESS.value)
        query = (
            sa.select(t.c.seq)
            .where(
                t.c.account_sid == account_sid,
                t.c.status != DeliveryStatus.PENDING.value,
                t.c.date_updated < before,
                t.c.resource_sid.not_in(live_rooms),
            )
            .order_by(t.c.seq)
            .limit(limit)
        )
        async with self.engine.begin() as conn:
            ids = list((await conn.scalars(query)).all())
            await _delete_in(conn, t, t.c.seq, ids)
        return ids


_CHUNK = 500


async def _delete_in(conn: Any, table: sa.Table, column: Any, values: Sequence[Any]) -> None:
    for i in range(0, len(values), _CHUNK):
        await conn.execute(sa.delete(table).where(column.in_(values[i : i + _CHUNK])))


async def _select_in(conn: Any, query: Any, column: Any, values: Sequence[Any]) -> list[Any]:
    rows: list[Any] = []
    for i in range(0, len(values), _CHUNK):
        rows.extend((await conn.execute(query.where(column.in_(values[i : i + _CHUNK])))).all())
    return rows


async def _personal_data(conn: Any, account_sid: AccountSid, identity: str | None) -> PersonalData:
    p, r, pub, sub = participants, rooms, published_tracks, subscribed_tracks
    rec, cb = recordings, callback_deliveries
    if identity is None:
        room_rows = (
            await conn.execute(sa.select(r).where(r.c.account_sid == account_sid).order_by(r.c.seq))
        ).all()
        part_rows = (
            await conn.execute(sa.select(p).where(p.c.account_sid == account_sid).order_by(p.c.seq))
        ).all()
    else:
        part_rows = (
            await conn.execute(
                sa.select(p)
                .where(p.c.account_sid == account_sid, p.c.identity == identity)
                .order_by(p.c.seq)
            )
        ).all()
        room_sids = sorted({row.room_sid for row in part_rows})
        room_rows = sorted(
            await _select_in(conn, sa.select(r), r.c.sid, room_sids), key=lambda row: row.seq
        )
    psids = [row.sid for row in part_rows]
    pub_rows = sorted(
        await _select_in(conn, sa.select(pub), pub.c.participant_sid, psids),
        key=lambda row: row.seq,
    )
    sub_rows = {
        row.seq: row
        for column in (sub.c.participant_sid, sub.c.publisher_sid)
        for row in await _select_in(conn, sa.select(sub), column, psids)
    }
    comp = compositions
    comp_rows = sorted(
        await _select_in(
            conn,
            sa.select(comp).where(comp.c.account_sid == account_sid),
            comp.c.room_sid,
            [row.sid for row in room_rows],
        ),
        key=lambda row: row.seq,
    )
    if identity is None:
        rec_rows = (
            await conn.execute(
                sa.select(rec).where(rec.c.account_sid == account_sid).order_by(rec.c.seq)
            )
        ).all()
        cb_rows = (
            await conn.execute(
                sa.select(cb).where(cb.c.account_sid == account_sid).order_by(cb.c.seq)
            )
        ).all()
        deliveries = [_delivery(row) for row in cb_rows]
    else:
        rec_rows = sorted(
            await _select_in(
                conn,
                sa.select(rec).where(rec.c.account_sid == account_sid),
                rec.c.participant_sid,
                psids,
            ),
            key=lambda row: row.seq,
        )
        names = {identity, *psids, *(row.sid for row in pub_rows), *(row.sid for row in rec_rows)}
        cb_rows = await _select_in(
            conn,
            sa.select(cb).where(cb.c.account_sid == account_sid),
            cb.c.resource_sid,
            [row.sid for row in room_rows],
        )
        comp_cb_rows = await _select_in(
            conn,
            sa.select(cb).where(cb.c.account_sid == account_sid),
            cb.c.resource_sid,
            [row.sid for row in comp_rows],
        )
        deliveries = sorted(
            [
                *(d for d in map(_delivery, cb_rows) if mentions(d, names)),
                *map(_delivery, comp_cb_rows),
            ],
            key=lambda d: d.id or 0,
        )
    tr = transcriptions
    tr_rows = await _select_in(
        conn,
        sa.select(tr).where(tr.c.account_sid == account_sid),
        tr.c.room_sid,
        [row.sid for row in room_rows],
    )
    return PersonalData(
        transcriptions=[_transcription(row) for row in sorted(tr_rows, key=lambda r: r.seq)],
        rooms=[_room(row) for row in room_rows],
        participants=[_participant(row) for row in part_rows],
        published_tracks=[_published(row) for row in pub_rows],
        subscribed_tracks=[_subscribed(sub_rows[k]) for k in sorted(sub_rows)],
        recordings=[_recording(row) for row in rec_rows],
        callback_deliveries=deliveries,
        compositions=[_composition(row) for row in comp_rows],
    )


_PERSONAL_TABLES = (
    rooms,
    participants,
    published_tracks,
    subscribed_tracks,
    recordings,
    callback_deliveries,
    transcriptions,
)


async def _postgres_reclaim(conn: Any) -> None:
    """Drop the bytes of deleted rows on PostgreSQL.

    A plain VACUUM only marks dead tuples' space reusable: their bytes stay in the heap
    and index pages until overwritten. `VACUUM (FULL)` rewrites each table and its indexes
    into new files (the old ones are truncated at commit and unlinked at the next
    checkpoint). The rows also live on in the WAL segments written since the last
    checkpoint: switching to a new segment and checkpointing lets PostgreSQL remove them
    (with `wal_recycle = off`, removed rather than renamed for reuse; docs/privacy.md).
    CHECKPOINT and pg_switch_wal() need a superuser or the pg_checkpoint role and an
    EXECUTE grant: without them the erasure stands and a warning says what is left.
    """
    names = ", ".join(t.name for t in _PERSONAL_TABLES)
    await conn.exec_driver_sql(f"VACUUM (FULL) {names}")
    try:
        await conn.exec_driver_sql("CHECKPOINT")
        await conn.exec_driver_sql("SELECT pg_switch_wal()")
        await conn.exec_driver_sql("CHECKPOINT")
    except sa.exc.DBAPIError as exc:
        log.warning(
            "erasure: the database user may not checkpoint or switch WAL (%s): erased rows "
            "stay in PostgreSQL's WAL segments until it recycles them (docs/privacy.md)",
            type(exc.orig).__name__,
        )


async def _sqlite_checkpoint(conn: Any) -> None:
    """Copy the WAL into the database and truncate it to zero bytes (retried while a
    reader of the running server holds an old snapshot)."""
    for _ in range(100):
        busy, _log, _done = (await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")).one()
        if not busy:
            return
        await asyncio.sleep(0.05)
    raise ErasureBlocked("the SQLite WAL could not be checkpointed (a reader kept it busy)")


def _retention(row: Row[Any]) -> RetentionSettings:
    return RetentionSettings(
        account_sid=AccountSid(row.account_sid),
        policy=RetentionPolicy(
            identity_days=row.identity_days,
            recording_days=row.recording_days,
            callback_days=row.callback_days,
        ),
        date_created=row.date_created,
        date_updated=row.date_updated,
    )


def _implements_the_port(store: SqlStore) -> Store:
    """mypy checks here that `SqlStore` has every method of `Store`, with its signature."""
    return store
