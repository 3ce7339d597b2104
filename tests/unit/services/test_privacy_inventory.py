"""docs/privacy.md lists every column of the migrated schema, and nothing that is gone."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from parlour.config import Config
from parlour.store.sql import SqlStore
from tests.privacy_inventory import inventory


async def schema_columns(tmp_path: Path) -> set[str]:
    store = await SqlStore.open(Config(data_dir=tmp_path).db_url)
    try:
        async with store.engine.connect() as conn:
            tables = (
                await conn.scalars(
                    sa.text(
                        "SELECT name FROM sqlite_master WHERE type = 'table' "
                        "AND name NOT LIKE 'sqlite_%'"
                    )
                )
            ).all()
            columns = set()
            for table in tables:
                rows = (await conn.execute(sa.text(f'PRAGMA table_info("{table}")'))).all()
                columns.update(f"{table}.{row.name}" for row in rows)
    finally:
        await store.close()
    return columns


async def test_every_column_is_in_the_inventory(tmp_path: Path) -> None:
    columns = await schema_columns(tmp_path)
    listed = inventory().columns
    missing = sorted(columns - listed)
    assert not missing, f"columns missing from docs/privacy.md's inventory: {missing}"
    stale = sorted(listed - columns)
    assert not stale, f"docs/privacy.md lists columns that do not exist: {stale}"


def test_the_inventory_lists_the_file_kinds() -> None:
    inv = inventory()
    for name in (
        "parlour.db",
        "parlour.db-wal",
        "secret.key",
        "media/recordings/RT0123.mka",
        "media/spool/RT0123.recovered.mkv",
        "media/spool/RT0123.probe",
    ):
        assert inv.file_kind(name) is not None, name
    assert inv.file_kind("media/other/x.txt") is None
    assert inv.file_kind("notes.txt") is None
