"""Tables. Changes go through a new Alembic revision in `migrations/versions/`.

Nothing here is SQLite-only: the same schema runs on PostgreSQL. Each listable table has an
integer `seq` primary key that orders lists and backs keyset paging.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

__all__ = [
    "accounts",
    "api_keys",
    "callback_deliveries",
    "composition_hooks",
    "compositions",
    "credentials",
    "instance",
    "media_settings",
    "metadata",
    "nodes",
    "participants",
    "published_tracks",
    "recordings",
    "retention_policies",
    "rooms",
    "subscribed_tracks",
    "transcriptions",
]


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Stored as naive UTC (portable), returned timezone-aware."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None)  # type: ignore[no-any-return]

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC)  # type: ignore[no-any-return]


metadata = sa.MetaData()

SID = sa.String(34)

instance = sa.Table(
    "instance",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(256), nullable=False),
)

accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("sid", SID, primary_key=True),
    sa.Column("friendly_name", sa.String(256), nullable=False),
    sa.Column("auth_token_hash", sa.String(64), nullable=False),
    sa.Column("date_created", UTCDateTime, nullable=False),
    sa.Column("date_updated", UTCDateTime, nullable=False),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("sid", SID, primary_key=True),
    sa.Column("account_sid", SID, sa.ForeignKey("accounts.sid"), nullable=False, index=True),
    sa.Column("friendly_name", sa.String(256), nullable=False),
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("date_created", UTCDateTime, nullable=False),
    sa.Column("date_updated", UTCDateTime, nullable=False),
)

rooms = sa.Table(
    "rooms",
    metadata,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("sid", SID, nullable=False, unique=True),
    sa.Column("account_sid", SID, sa.ForeignKey("accounts.sid"), nullable=False),
    sa.Column("unique_name", sa.String(256), nullable=False),
    # Equal to unique_name while in progress, NULL after: a unique index on it makes
    # UniqueName unique among in-progress rooms on any database.
    sa.Column("active_name", sa.String(256), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("date_created", UTCDateTime, nullable=False),
    sa.Column("date_updated", UTCDateTime, nullable=False),
    sa.Column("end_time", UTCDateTime, nullable=True),
    sa.Column("duration", sa.Integer, nullable=True),
    sa.Column("empty_since", UTCDateTime, nullable=True),
    sa.Column("ever_joined", sa.Boolean, nullable=False, default=False),
    sa.Column("settings", sa.JSON, nullable=False),
    sa.Column("recording_rules", sa.JSON, nullable=False),
    sa.Column("recording_rules_updated", UTCDateTime, nullable=True),
    sa.Index("ix_rooms_account_seq", "account_sid", "seq"),
    sa.Index("ix_rooms_active_name", "account_sid", "active_name", unique=True),
    sa.Index("ix_rooms_status_empty", "status", "empty_since"),
)

participants = sa.Table(
    "participants",
    metadata,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("sid", SID, nullable=False, unique=True),
    sa.Column("room_sid", SID, sa.ForeignKey("rooms.sid"), nullable=False),
    sa.Column("account_sid", SID, nullable=False),
    sa.Column("identity", sa.String(256), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("date_created", UTCDateTime, nullable=False),
    sa.Column("date_updated", UTCDateTime, nullable=False),
    sa.Column("start_time", UTCDateTime, nullable=True),
    sa.Column("end_time", UTCDateTime, nullable=True),
    sa.Column("duration", sa.Integer, nullable=True),
    sa.Column("subscribe_rules", sa.JSON, nullable=True),
    sa.Column("subscribe_rules_created", UTCDateTime, nullable=True),
    sa.Column("subscribe_rules_updated", UTCDateTime, nullable=True),
    # The node (server process) holding the participant's signaling session; `legacy` for
    # participants left active by a server older than nodes (revision 0004).
    sa.Column("node_id", sa.String(64), nullable=True),
    sa.Index("ix_participants_room_seq", "room_sid", "seq"),
    sa.Index("ix_participants_room_identity", "room_sid", "identity"),
    sa.Index("ix_participants_node_status", "node_id", "status"),
)

published_tracks = sa.Table(
    "published_tracks",
    metadata,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("sid", SID, nullable=False, unique=True),
    sa.Column("room_sid", SID, nullable=False),
    sa.Column("participant_sid", SID, sa.ForeignKey("participants.sid"), nullable=False),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("date_created", UTCDateTime, nullable=False),
    sa.Column("date_updated", UTCDateTime, nullable=False),
    sa.Column("ended_at", UTCDateTime, nullable=True),
    sa.Index("ix_published_participant_seq", "participant_sid", "seq"),
)

subscribed_tracks = sa.Table(
    "subscribed_tracks",
    metadata,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("sid", SID, nullable=False),
    sa.Column("room_sid", SID, nullable=False),
    sa.Column("participant_sid", SID, sa.ForeignKey("participants.sid"), nullable=False),
    sa.Column("publisher_sid", SID, nullable=False),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("date_created", UTCDateTime, nullable=False),
    sa.Column("date_updated", UTCDateTime, nullable=False),
    sa.Column("ended_at", UTCDateTime, nullable=True),
    sa.Index("ix_subscribed_participant_seq", "participant_sid", "seq"),
    sa.Index("ix_subscribed_participant_sid", "participant_sid", "sid"),
    # At most one live subscription per subscriber and track, whoever races to insert it.
    sa.Index(
        "ux_subscribed_live",
        "participant_sid",
        "sid",
        unique=True,
        sqlite_where=sa.text("ended_at IS NULL"),
        postgresql_where=sa.text("ended_at IS NULL"),
    ),
)

# Server processes: each heartbeats while it runs; one whose heartbeat is stale is gone, and
# the participants it held (`participants.node_id`) are disconnected by a live node.
nodes = sa.Table(
    "nodes",
    metadata,
    sa.Column("node_id", sa.String(64), primary_key=True),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("heartbeat_at", UTCDateTime, nullable=False),
    sa.Index("ix_nodes_heartbeat", "heartbeat_at"),
)

# Status callbacks waiting to be delivered, and the record of those that were (or failed).
# `sequence_number` counts per resource (room) from 0 and orders delivery.
callback_deliveries = sa.Table(
    "callback_deliveries",
    metadata,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("account_sid", SID, nullable=False),
    sa.Column("resource_sid", SID, nullable=False),
    sa.Column("sequence_number", sa.Integer, nullable=False),
    sa.Column("event", sa.String(64), nullable=False),
    sa.Column("url", sa.String(1024), nullable=False),
    sa.Column("method", sa.String(8), nullable=False),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("last_status", sa.Integer, nullable=True),
    sa.Column("last_error", sa.String(512), nullable=True),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("date_created", UTCDateTime, nullable=False),
    sa.Column("date_updated", UTCDateTime, nullable=False),
    # The node delivering it; NULL for rows written before nodes owned their callbacks.
    sa.Column("node_id", sa.String(64), nullable=True),
    sa.Index(
        "ix_callback_deliveries_resource_sequence",
        "resource_sid",
        "sequence_number",
        unique=True,
    ),
    sa.Index("ix_callback_deliveries_status", "status", "resource_sid", "sequence_number"),
)

# Track recordings (`RT…`). `offset_ms` is the resource's `offset` (a SQL keyword as a name).
recordings = sa.Table(
    "recordings",
    metadata,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("sid", SID, nullable=False, unique=True),
    sa.Column("account_sid", SID, sa.ForeignKey("accounts.sid"), nullable=False),
    sa.Column("room_sid", SID, sa.ForeignKey("rooms.sid"), nullable=False),
    sa.Column("participant_sid", SID, nullable=False),
    sa.Column("source_sid", SID, nullable=False),
    sa.Column("track_name", sa.String(256), nullable=False),
    sa.Column("type", sa.String(8), nullable=False),
    sa.Column("container_format", sa.String(8), nullable=False),
    sa.Column("codec", sa.String(8), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("date_created", UTCDateTime, nullable=False),
    sa.Column("date_updated", UTCDateTime, nullable=False),
    sa.Column("offset_ms", sa.BigInteger, nullable=False),
    sa.Column("duration", sa.Integer, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("media_external_location", sa.String(1024), nullable=True),
    sa.Column("status_callback", sa.String(1024), nullable=True),
    sa.Column("status_callback_method", sa.String(8), nullable=False),
    sa.Column("failure_reason", sa.String(512), nullable=True),
    # Revision 0007: the bucket's credential (NULL: local storage) and the encryption.
    sa.Column("media_credentials_sid", SID, nullable=True),
    sa.Column("encryption_key_sid", SID, nullable=True),
    sa.Column("encryption", sa.JSON, nullable=True),
    sa.Index("ix_recordings_account_seq", "account_sid", "seq"),
    sa.Index("ix_recordings_room_seq", "room_sid", "seq"),
    sa.Index("ix_recordings_status", "status"),
    sa.Index("ix_recordings_source", "source_sid"),
)

# Per-account retention (revision 0005): days before identities of ended rooms are
# anonymised, recordings deleted and finished callbacks removed; NULL keeps them.
retention_policies = sa.Table(
    "retention_policies",
    metadata,
    sa.Column("account_sid", SID, sa.ForeignKey("accounts.sid"), primary_key=True),
    sa.Column("identity_days", sa.Integer, nullable=True),
    sa.Column("recording_days", sa.Integer, nullable=True),
    sa.Column("callback_days", sa.Integer, nullable=True),
    sa.Column("date_created", UTCDateTime, nullable=False),
    sa.Column("date_updated", UTCDateTime, nullable=False),
)

# Real-time transcriptions of rooms (revision 0009): the resource only (status, times,
# configuration). Transcript text is never stored (docs/privacy.md).
transcriptions = sa.Table(
    "transcriptions",
    metadata,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("ttid", sa.String(64), nullable=False, unique=True),
    sa.Column("account_sid", SID, sa.ForeignKey("accounts.sid"), nullable=False),
    sa.Column("room_sid", SID, sa.ForeignKey("rooms.sid"), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("configuration", sa.JSON, nullable=False),
    sa.Column("date_created", UTCDateTime, nullable=False),
    sa.Column("date_updated", UTCDateTime, nullable=False),
    sa.Column("start_time", UTCDateTime, nullable=True),
    sa.Column("end_time", UTCDateTime, nullable=True),
    sa.Column("duration", sa.Integer, nullable=True),
    sa.Index("ix_transcriptions_room_seq", "room_sid", "seq"),
)

# Accounts API credentials (revision 0007): AWS credentials and RSA public keys (`CR…`).
# `aws_secret_sealed` is the secret access key sealed with a key derived from the server
# secret (AES-256-GCM, services/credentials.py): never the secret itself.
credentials = sa.Table(
    "credentials",
    metadata,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("sid", SID, nullable=False, unique=True),
    sa.Column("account_sid", SID, sa.ForeignKey("accounts.sid"), nullable=False),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("friendly_name", sa.String(64), nullable=True),
    sa.Column("aws_access_key_id", sa.String(128), nullable=True),
    sa.Column("aws_secret_sealed", sa.String(512), nullable=True),
    sa.Column("public_key", sa.Text, nullable=True),
    sa.Column("date_created", UTCDateTime, nullable=False),
    sa.Column("date_updated", UTCDateTime, nullable=False),
    sa.Index("ix_credentials_account_type_seq", "account_sid", "type", "seq"),
)

# RecordingSettings / CompositionSettings `Default` (revision 0007): one row per account
# and kind ("recordings" | "compositions") that set them.
media_settings = sa.Table(
    "media_settings",
    metadata,
    sa.Column("account_sid", SID, sa.ForeignKey("accounts.sid"), primary_key=True),
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("friendly_name", sa.String(255), nullable=True),
    sa.Column("aws_credentials_sid", SID, nullable=True),
    sa.Column("aws_s3_url", sa.String(1024), nullable=True),
    sa.Column("aws_storage_enabled", sa.Boolean, nullable=False),
    sa.Column("encryption_key_sid", SID, nullable=True),
    sa.Column("encryption_enabled", sa.Boolean, nullable=False),
    sa.Column("date_created", UTCDateTime, nullable=False),
    sa.Column("date_updated", UTCDateTime, nullable=False),
)


compositions = sa.Table(
    "compositions",
    metadata,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("sid", SID, nullable=False, unique=True),
    sa.Column("account_sid", SID, sa.ForeignKey("accounts.sid"), nullable=False),
    sa.Column("room_sid", SID, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("date_created", UTCDateTime, nullable=False),
    sa.Column("date_updated", UTCDateTime, nullable=False),
    sa.Column("date_completed", UTCDateTime, nullable=True),
    sa.Column("date_deleted", UTCDateTime, nullable=True),
    sa.Column("duration", sa.Integer, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("bitrate", sa.Integer, nullable=False),
    sa.Column("progress", sa.Integer, nullable=False),
    sa.Column("media_external_location", sa.String(1024), nullable=True),
    sa.Column("status_callback", sa.String(1024), nullable=True),
    sa.Column("status_callback_method", sa.String(8), nullable=False),
    sa.Column("hook_sid", SID, nullable=True),
    sa.Column("failure_reason", sa.String(512), nullable=True),
    sa.Column("node_id", sa.String(64), nullable=True),
    # Revision 0010: the bucket's credential (NULL: local storage) and the encryption.
    sa.Column("media_credentials_sid", SID, nullable=True),
    sa.Column("encryption_key_sid", SID, nullable=True),
    sa.Column("encryption", sa.JSON, nullable=True),
    sa.Index("ix_compositions_account_seq", "account_sid", "seq"),
    sa.Index("ix_compositions_room", "room_sid"),
    sa.Index("ix_compositions_status", "status"),
)

composition_hooks = sa.Table(
    "composition_hooks",
    metadata,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("sid", SID, nullable=False, unique=True),
    sa.Column("account_sid", SID, sa.ForeignKey("accounts.sid"), nullable=False),
    sa.Column("friendly_name", sa.String(100), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("date_created", UTCDateTime, nullable=False),
    sa.Column("date_updated", UTCDateTime, nullable=True),
    sa.Column("status_callback", sa.String(1024), nullable=True),
    sa.Column("status_callback_method", sa.String(8), nullable=False),
    sa.UniqueConstraint("account_sid", "friendly_name", name="uq_composition_hooks_name"),
    sa.Index("ix_composition_hooks_account_seq", "account_sid", "seq"),
)
