"""nodes: participants.node_id, the nodes table, one live subscription per track

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 09:00:00.000000

Participants that a server older than this revision left active get node_id `legacy`, and
a `legacy` node with a heartbeat far in the past is recorded: it is stale from the first
check, so a live node disconnects them as it would those of any node that died.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

LEGACY_NODE = "legacy"
_LONG_AGO = dt.datetime(1970, 1, 1)  # naive UTC, as every stored time


def upgrade() -> None:
    op.create_table(
        "nodes",
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("node_id"),
    )
    with op.batch_alter_table("nodes", schema=None) as batch_op:
        batch_op.create_index("ix_nodes_heartbeat", ["heartbeat_at"], unique=False)

    with op.batch_alter_table("participants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("node_id", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_participants_node_status", ["node_id", "status"], unique=False)

    participants = sa.table(
        "participants",
        sa.column("node_id", sa.String),
        sa.column("status", sa.String),
    )
    nodes = sa.table(
        "nodes",
        sa.column("node_id", sa.String),
        sa.column("started_at", sa.DateTime),
        sa.column("heartbeat_at", sa.DateTime),
    )
    op.execute(
        participants.update()
        .where(participants.c.status != "disconnected")
        .values(node_id=LEGACY_NODE)
    )
    legacy_exists = sa.exists().where(participants.c.node_id == LEGACY_NODE)
    op.execute(
        nodes.insert().from_select(
            ["node_id", "started_at", "heartbeat_at"],
            sa.select(
                sa.literal(LEGACY_NODE, sa.String),
                sa.literal(_LONG_AGO, sa.DateTime),
                sa.literal(_LONG_AGO, sa.DateTime),
            ).where(legacy_exists),
        )
    )

    # Older servers could record the same live subscription twice: keep the newest.
    subscribed = sa.table(
        "subscribed_tracks",
        sa.column("seq", sa.Integer),
        sa.column("participant_sid", sa.String),
        sa.column("sid", sa.String),
        sa.column("ended_at", sa.DateTime),
        sa.column("date_updated", sa.DateTime),
    )
    newest = (
        sa.select(sa.func.max(subscribed.c.seq))
        .where(subscribed.c.ended_at.is_(None))
        .group_by(subscribed.c.participant_sid, subscribed.c.sid)
    )
    op.execute(
        subscribed.update()
        .where(subscribed.c.ended_at.is_(None), subscribed.c.seq.not_in(newest))
        .values(ended_at=subscribed.c.date_updated)
    )
    with op.batch_alter_table("subscribed_tracks", schema=None) as batch_op:
        batch_op.create_index(
            "ux_subscribed_live",
            ["participant_sid", "sid"],
            unique=True,
            sqlite_where=sa.text("ended_at IS NULL"),
            postgresql_where=sa.text("ended_at IS NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("subscribed_tracks", schema=None) as batch_op:
        batch_op.drop_index("ux_subscribed_live")
    with op.batch_alter_table("participants", schema=None) as batch_op:
        batch_op.drop_index("ix_participants_node_status")
        batch_op.drop_column("node_id")
    with op.batch_alter_table("nodes", schema=None) as batch_op:
        batch_op.drop_index("ix_nodes_heartbeat")
    op.drop_table("nodes")
