"""composition media: where a composition's media is and how it is encrypted

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 17:00:00.000000

CompositionSettings apply to compositions as RecordingSettings do to recordings: each
composition learns the bucket's credential it was stored with (`media_credentials_sid`,
NULL for local storage; `media_external_location` is the object's URL), the public key it
is encrypted for (`encryption_key_sid`) and the stored file's envelope (`encryption`).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("compositions") as batch:
        batch.add_column(sa.Column("media_credentials_sid", sa.String(length=34), nullable=True))
        batch.add_column(sa.Column("encryption_key_sid", sa.String(length=34), nullable=True))
        batch.add_column(sa.Column("encryption", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("compositions") as batch:
        batch.drop_column("encryption")
        batch.drop_column("encryption_key_sid")
        batch.drop_column("media_credentials_sid")
