"""The `store` fixture: every contract test runs on memory, SQLite and PostgreSQL.

PostgreSQL is a throwaway cluster that this session starts (`tests/pg.py`, one per run) or,
when PARLOUR_TEST_POSTGRES_DSN is set (e.g. ``postgresql://postgres@127.0.0.1:5432/t``),
that database: the tests empty its tables before each test, so give them one of their own.
Without PostgreSQL binaries and without the variable, the postgres params are skipped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from parlour.config import Config
from parlour.domain.ports import Store
from parlour.store.memory import MemoryStore
from parlour.store.schema import metadata
from parlour.store.sql import SqlStore
from tests.pg import PostgresCluster, missing_reason

BACKENDS = ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
SQL_BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster | None]:
    """The session's own cluster; None when PARLOUR_TEST_POSTGRES_DSN names another."""
    if os.environ.get("PARLOUR_TEST_POSTGRES_DSN"):
        yield None
        return
    reason = missing_reason()
    if reason is not None:
        pytest.skip(reason)
    cluster = PostgresCluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def postgres_url(pg_cluster: PostgresCluster | None) -> str:
    """The SQLAlchemy URL of the database the postgres params use."""
    override = os.environ.get("PARLOUR_TEST_POSTGRES_DSN")
    if override:
        return Config(database_url=override).db_url
    assert pg_cluster is not None
    return pg_cluster.create_database("parlour_test")


@pytest.fixture
def fresh_postgres_url(request: pytest.FixtureRequest) -> str:
    """A new empty database of the session's cluster (skipped with an override DSN)."""
    cluster: PostgresCluster | None = request.getfixturevalue("pg_cluster")
    if cluster is None:
        pytest.skip("needs the session's own cluster, not PARLOUR_TEST_POSTGRES_DSN")
    return cluster.create_database(f"t_{uuid.uuid4().hex}")


async def _emptied(store: SqlStore) -> SqlStore:
    names = ", ".join(t.name for t in reversed(metadata.sorted_tables))
    async with store.engine.begin() as conn:
        await conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    return store


def sqlite_url(directory: Path) -> str:
    return Config(data_dir=directory).db_url


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "memory":
        yield MemoryStore()
        return
    if request.param == "sqlite":
        s = await SqlStore.open(sqlite_url(tmp_path))
    else:
        s = await _emptied(await SqlStore.open(request.getfixturevalue("postgres_url")))
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture(params=SQL_BACKENDS)
def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database (no schema yet) on each SQL backend."""
    if request.param == "sqlite":
        return sqlite_url(tmp_path)
    url: str = request.getfixturevalue("fresh_postgres_url")
    return url
