"""transcriptions: the Transcriptions resources of rooms

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 16:00:00.000000

One row per `/v1/Rooms/{RoomSid}/Transcriptions` resource: status, times and the
configuration it was started with. Transcript text is never stored.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "transcriptions",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("ttid", sa.String(length=64), nullable=False),
        sa.Column("account_sid", sa.String(length=34), nullable=False),
        sa.Column("room_sid", sa.String(length=34), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("configuration", sa.JSON(), nullable=False),
        sa.Column("date_created", sa.DateTime(), nullable=False),
        sa.Column("date_updated", sa.DateTime(), nullable=False),
        sa.Column("start_time", sa.DateTime(), nullable=True),
        sa.Column("end_time", sa.DateTime(), nullable=True),
        sa.Column("duration", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["account_sid"], ["accounts.sid"]),
        sa.ForeignKeyConstraint(["room_sid"], ["rooms.sid"]),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("ttid"),
    )
    op.create_index("ix_transcriptions_room_seq", "transcriptions", ["room_sid", "seq"])


def downgrade() -> None:
    op.drop_index("ix_transcriptions_room_seq", table_name="transcriptions")
    op.drop_table("transcriptions")
