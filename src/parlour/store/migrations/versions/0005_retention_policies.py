"""retention_policies: how long each account keeps personal data

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-10 09:00:00.000000

One row per account that set its own policy (`parlour retention`, `/v1/Parlour/Retention`);
an account without a row has the server's defaults. A NULL number of days keeps that kind
of data until it is deleted.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "retention_policies",
        sa.Column("account_sid", sa.String(length=34), nullable=False),
        sa.Column("identity_days", sa.Integer(), nullable=True),
        sa.Column("recording_days", sa.Integer(), nullable=True),
        sa.Column("callback_days", sa.Integer(), nullable=True),
        sa.Column("date_created", sa.DateTime(), nullable=False),
        sa.Column("date_updated", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["account_sid"], ["accounts.sid"]),
        sa.PrimaryKeyConstraint("account_sid"),
    )


def downgrade() -> None:
    op.drop_table("retention_policies")
