"""callback delivery nodes: which server node delivers each pending status callback

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 23:00:00.000000

Several nodes share one database: each delivers the callbacks it recorded, and the pending
callbacks of a node that is gone are taken over by one live node (`node_id` is changed in
one conditional update). NULL: recorded before this column, taken over like a gone node's.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("callback_deliveries") as batch:
        batch.add_column(sa.Column("node_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("callback_deliveries") as batch:
        batch.drop_column("node_id")
