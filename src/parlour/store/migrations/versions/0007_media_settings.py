"""media settings: Accounts API credentials, Recording/CompositionSettings, media location

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-02 16:00:00.000000

`credentials` holds AWS credentials (the secret sealed, never in clear) and RSA public keys
(`CR…`); `media_settings` the `Default` RecordingSettings and CompositionSettings of each
account that set them. Recordings learn where their media is (`media_credentials_sid`: the
bucket's credential, NULL for local storage) and how it is encrypted.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "credentials",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("sid", sa.String(length=34), nullable=False),
        sa.Column("account_sid", sa.String(length=34), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("friendly_name", sa.String(length=64), nullable=True),
        sa.Column("aws_access_key_id", sa.String(length=128), nullable=True),
        sa.Column("aws_secret_sealed", sa.String(length=512), nullable=True),
        sa.Column("public_key", sa.Text(), nullable=True),
        sa.Column("date_created", sa.DateTime(), nullable=False),
        sa.Column("date_updated", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["account_sid"], ["accounts.sid"]),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("sid"),
    )
    op.create_index(
        "ix_credentials_account_type_seq", "credentials", ["account_sid", "type", "seq"]
    )
    op.create_table(
        "media_settings",
        sa.Column("account_sid", sa.String(length=34), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("friendly_name", sa.String(length=255), nullable=True),
        sa.Column("aws_credentials_sid", sa.String(length=34), nullable=True),
        sa.Column("aws_s3_url", sa.String(length=1024), nullable=True),
        sa.Column("aws_storage_enabled", sa.Boolean(), nullable=False),
        sa.Column("encryption_key_sid", sa.String(length=34), nullable=True),
        sa.Column("encryption_enabled", sa.Boolean(), nullable=False),
        sa.Column("date_created", sa.DateTime(), nullable=False),
        sa.Column("date_updated", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["account_sid"], ["accounts.sid"]),
        sa.PrimaryKeyConstraint("account_sid", "kind"),
    )
    with op.batch_alter_table("recordings") as batch:
        batch.add_column(sa.Column("media_credentials_sid", sa.String(length=34), nullable=True))
        batch.add_column(sa.Column("encryption_key_sid", sa.String(length=34), nullable=True))
        batch.add_column(sa.Column("encryption", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("recordings") as batch:
        batch.drop_column("encryption")
        batch.drop_column("encryption_key_sid")
        batch.drop_column("media_credentials_sid")
    op.drop_table("media_settings")
    op.drop_index("ix_credentials_account_type_seq", table_name="credentials")
    op.drop_table("credentials")
