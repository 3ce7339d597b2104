"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23 10:18:21.019734
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "accounts",
        sa.Column("sid", sa.String(length=34), nullable=False),
        sa.Column("friendly_name", sa.String(length=256), nullable=False),
        sa.Column("auth_token_hash", sa.String(length=64), nullable=False),
        sa.Column("date_created", sa.DateTime(), nullable=False),
        sa.Column("date_updated", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("sid"),
    )
    op.create_table(
        "instance",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=256), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "api_keys",
        sa.Column("sid", sa.String(length=34), nullable=False),
        sa.Column("account_sid", sa.String(length=34), nullable=False),
        sa.Column("friendly_name", sa.String(length=256), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("date_created", sa.DateTime(), nullable=False),
        sa.Column("date_updated", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_sid"],
            ["accounts.sid"],
        ),
        sa.PrimaryKeyConstraint("sid"),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_keys_account_sid"), ["account_sid"], unique=False)

    op.create_table(
        "rooms",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("sid", sa.String(length=34), nullable=False),
        sa.Column("account_sid", sa.String(length=34), nullable=False),
        sa.Column("unique_name", sa.String(length=256), nullable=False),
        sa.Column("active_name", sa.String(length=256), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("date_created", sa.DateTime(), nullable=False),
        sa.Column("date_updated", sa.DateTime(), nullable=False),
        sa.Column("end_time", sa.DateTime(), nullable=True),
        sa.Column("duration", sa.Integer(), nullable=True),
        sa.Column("empty_since", sa.DateTime(), nullable=True),
        sa.Column("ever_joined", sa.Boolean(), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("recording_rules", sa.JSON(), nullable=False),
        sa.Column("recording_rules_updated", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_sid"],
            ["accounts.sid"],
        ),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("sid"),
    )
    with op.batch_alter_table("rooms", schema=None) as batch_op:
        batch_op.create_index("ix_rooms_account_seq", ["account_sid", "seq"], unique=False)
        batch_op.create_index("ix_rooms_active_name", ["account_sid", "active_name"], unique=True)
        batch_op.create_index("ix_rooms_status_empty", ["status", "empty_since"], unique=False)

    op.create_table(
        "participants",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("sid", sa.String(length=34), nullable=False),
        sa.Column("room_sid", sa.String(length=34), nullable=False),
        sa.Column("account_sid", sa.String(length=34), nullable=False),
        sa.Column("identity", sa.String(length=256), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("date_created", sa.DateTime(), nullable=False),
        sa.Column("date_updated", sa.DateTime(), nullable=False),
        sa.Column("start_time", sa.DateTime(), nullable=True),
        sa.Column("end_time", sa.DateTime(), nullable=True),
        sa.Column("duration", sa.Integer(), nullable=True),
        sa.Column("subscribe_rules", sa.JSON(), nullable=True),
        sa.Column("subscribe_rules_created", sa.DateTime(), nullable=True),
        sa.Column("subscribe_rules_updated", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["room_sid"],
            ["rooms.sid"],
        ),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("sid"),
    )
    with op.batch_alter_table("participants", schema=None) as batch_op:
        batch_op.create_index(
            "ix_participants_room_identity", ["room_sid", "identity"], unique=False
        )
        batch_op.create_index("ix_participants_room_seq", ["room_sid", "seq"], unique=False)

    op.create_table(
        "published_tracks",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("sid", sa.String(length=34), nullable=False),
        sa.Column("room_sid", sa.String(length=34), nullable=False),
        sa.Column("participant_sid", sa.String(length=34), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("date_created", sa.DateTime(), nullable=False),
        sa.Column("date_updated", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["participant_sid"],
            ["participants.sid"],
        ),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("sid"),
    )
    with op.batch_alter_table("published_tracks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_published_participant_seq", ["participant_sid", "seq"], unique=False
        )

    op.create_table(
        "subscribed_tracks",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("sid", sa.String(length=34), nullable=False),
        sa.Column("room_sid", sa.String(length=34), nullable=False),
        sa.Column("participant_sid", sa.String(length=34), nullable=False),
        sa.Column("publisher_sid", sa.String(length=34), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("date_created", sa.DateTime(), nullable=False),
        sa.Column("date_updated", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["participant_sid"],
            ["participants.sid"],
        ),
        sa.PrimaryKeyConstraint("seq"),
    )
    with op.batch_alter_table("subscribed_tracks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_subscribed_participant_seq", ["participant_sid", "seq"], unique=False
        )
        batch_op.create_index(
            "ix_subscribed_participant_sid", ["participant_sid", "sid"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("subscribed_tracks", schema=None) as batch_op:
        batch_op.drop_index("ix_subscribed_participant_sid")
        batch_op.drop_index("ix_subscribed_participant_seq")

    op.drop_table("subscribed_tracks")
    with op.batch_alter_table("published_tracks", schema=None) as batch_op:
        batch_op.drop_index("ix_published_participant_seq")

    op.drop_table("published_tracks")
    with op.batch_alter_table("participants", schema=None) as batch_op:
        batch_op.drop_index("ix_participants_room_seq")
        batch_op.drop_index("ix_participants_room_identity")

    op.drop_table("participants")
    with op.batch_alter_table("rooms", schema=None) as batch_op:
        batch_op.drop_index("ix_rooms_status_empty")
        batch_op.drop_index("ix_rooms_active_name")
        batch_op.drop_index("ix_rooms_account_seq")

    op.drop_table("rooms")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_keys_account_sid"))

    op.drop_table("api_keys")
    op.drop_table("instance")
    op.drop_table("accounts")
