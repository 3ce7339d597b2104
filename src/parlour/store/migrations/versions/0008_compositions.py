"""compositions and composition_hooks

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 16:00:00.000000

`/v1/Compositions` (CJ…) and `/v1/CompositionHooks` (HK…). A composition's `spec` holds what
to compose (layout, audio sources, resolution, format, trim) as JSON; its media lives in the
media storage under `compositions/CJ….{mp4|webm}`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "compositions",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("sid", sa.String(length=34), nullable=False),
        sa.Column("account_sid", sa.String(length=34), nullable=False),
        sa.Column("room_sid", sa.String(length=34), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("date_created", sa.DateTime(), nullable=False),
        sa.Column("date_updated", sa.DateTime(), nullable=False),
        sa.Column("date_completed", sa.DateTime(), nullable=True),
        sa.Column("date_deleted", sa.DateTime(), nullable=True),
        sa.Column("duration", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("bitrate", sa.Integer(), nullable=False),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("media_external_location", sa.String(length=1024), nullable=True),
        sa.Column("status_callback", sa.String(length=1024), nullable=True),
        sa.Column("status_callback_method", sa.String(length=8), nullable=False),
        sa.Column("hook_sid", sa.String(length=34), nullable=True),
        sa.Column("failure_reason", sa.String(length=512), nullable=True),
        sa.Column("node_id", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["account_sid"], ["accounts.sid"]),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("sid"),
    )
    with op.batch_alter_table("compositions", schema=None) as batch_op:
        batch_op.create_index("ix_compositions_account_seq", ["account_sid", "seq"], unique=False)
        batch_op.create_index("ix_compositions_room", ["room_sid"], unique=False)
        batch_op.create_index("ix_compositions_status", ["status"], unique=False)
    op.create_table(
        "composition_hooks",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("sid", sa.String(length=34), nullable=False),
        sa.Column("account_sid", sa.String(length=34), nullable=False),
        sa.Column("friendly_name", sa.String(length=100), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("date_created", sa.DateTime(), nullable=False),
        sa.Column("date_updated", sa.DateTime(), nullable=True),
        sa.Column("status_callback", sa.String(length=1024), nullable=True),
        sa.Column("status_callback_method", sa.String(length=8), nullable=False),
        sa.ForeignKeyConstraint(["account_sid"], ["accounts.sid"]),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("sid"),
        sa.UniqueConstraint("account_sid", "friendly_name", name="uq_composition_hooks_name"),
    )
    with op.batch_alter_table("composition_hooks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_composition_hooks_account_seq", ["account_sid", "seq"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("composition_hooks", schema=None) as batch_op:
        batch_op.drop_index("ix_composition_hooks_account_seq")
    op.drop_table("composition_hooks")
    with op.batch_alter_table("compositions", schema=None) as batch_op:
        batch_op.drop_index("ix_compositions_status")
        batch_op.drop_index("ix_compositions_room")
        batch_op.drop_index("ix_compositions_account_seq")
    op.drop_table("compositions")
