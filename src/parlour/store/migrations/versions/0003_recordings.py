"""recordings

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 11:44:09.601119
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recordings",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("sid", sa.String(length=34), nullable=False),
        sa.Column("account_sid", sa.String(length=34), nullable=False),
        sa.Column("room_sid", sa.String(length=34), nullable=False),
        sa.Column("participant_sid", sa.String(length=34), nullable=False),
        sa.Column("source_sid", sa.String(length=34), nullable=False),
        sa.Column("track_name", sa.String(length=256), nullable=False),
        sa.Column("type", sa.String(length=8), nullable=False),
        sa.Column("container_format", sa.String(length=8), nullable=False),
        sa.Column("codec", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("date_created", sa.DateTime(), nullable=False),
        sa.Column("date_updated", sa.DateTime(), nullable=False),
        sa.Column("offset_ms", sa.BigInteger(), nullable=False),
        sa.Column("duration", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("media_external_location", sa.String(length=1024), nullable=True),
        sa.Column("status_callback", sa.String(length=1024), nullable=True),
        sa.Column("status_callback_method", sa.String(length=8), nullable=False),
        sa.Column("failure_reason", sa.String(length=512), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_sid"],
            ["accounts.sid"],
        ),
        sa.ForeignKeyConstraint(
            ["room_sid"],
            ["rooms.sid"],
        ),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("sid"),
    )
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.create_index("ix_recordings_account_seq", ["account_sid", "seq"], unique=False)
        batch_op.create_index("ix_recordings_room_seq", ["room_sid", "seq"], unique=False)
        batch_op.create_index("ix_recordings_source", ["source_sid"], unique=False)
        batch_op.create_index("ix_recordings_status", ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.drop_index("ix_recordings_status")
        batch_op.drop_index("ix_recordings_source")
        batch_op.drop_index("ix_recordings_room_seq")
        batch_op.drop_index("ix_recordings_account_seq")

    op.drop_table("recordings")
