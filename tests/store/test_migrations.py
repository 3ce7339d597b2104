"""Migrations on a database that an older Parlour filled (SQLite; PostgreSQL when the
session has its own cluster)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import Connection

from parlour.domain.participants import ParticipantStatus
from parlour.store import migrate
from parlour.store.sql import SqlStore, create_engine
from tests.store.factories import T0, at

LEGACY_NODE = "legacy"


def _upgrade_to(revision: str) -> Callable[[Connection], None]:
    def run(connection: Connection) -> None:
        command.upgrade(migrate.alembic_config(connection), revision)

    return run


async def test_participants_of_a_pre_node_server_belong_to_a_stale_legacy_node(
    sql_url: str,
) -> None:
    engine = create_engine(sql_url)
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade_to("0003"))
        await conn.execute(
            sa.text("INSERT INTO accounts VALUES ('AC1', 'a', 'h', :t, :t)"),
            {"t": T0.replace(tzinfo=None)},
        )
        await conn.execute(
            sa.text(
                "INSERT INTO rooms (sid, account_sid, unique_name, active_name, status, type,"
                " date_created, date_updated, ever_joined, settings, recording_rules)"
                " VALUES ('RM1', 'AC1', 'r', 'r', 'in-progress', 'group', :t, :t, true, '{}', '[]')"
            ),
            {"t": T0.replace(tzinfo=None)},
        )
        for sid, status in (("PA1", "connected"), ("PA2", "disconnected"), ("PA3", "reconnecting")):
            await conn.execute(
                sa.text(
                    "INSERT INTO participants (sid, room_sid, account_sid, identity, status,"
                    " date_created, date_updated, start_time)"
                    " VALUES (:sid, 'RM1', 'AC1', :sid, :status, :t, :t, :t)"
                ),
                {"sid": sid, "status": status, "t": T0.replace(tzinfo=None)},
            )
        # Twice the same live subscription (older servers did not prevent it).
        for _ in range(2):
            await conn.execute(
                sa.text(
                    "INSERT INTO subscribed_tracks (sid, room_sid, participant_sid,"
                    " publisher_sid, name, kind, enabled, date_created, date_updated)"
                    " VALUES ('MT1', 'RM1', 'PA1', 'PA3', 'mic', 'audio', true, :t, :t)"
                ),
                {"t": T0.replace(tzinfo=None)},
            )
    await engine.dispose()

    store = await SqlStore.open(sql_url)
    try:
        assert await store.stale_nodes(dt.datetime(2000, 1, 1, tzinfo=dt.UTC)) == [LEGACY_NODE]
        legacy = await store.active_participants_of_node(LEGACY_NODE)
        assert [(p.sid, p.status) for p in legacy] == [
            ("PA1", ParticipantStatus.CONNECTED),
            ("PA3", ParticipantStatus.RECONNECTING),
        ]
        assert all(p.node_id == LEGACY_NODE for p in legacy)
        gone = await store.disconnect_participant(legacy[0].sid, at(1))
        assert gone is not None and gone[0].node_id == LEGACY_NODE
        async with store.engine.connect() as conn:
            live = await conn.scalar(
                sa.text("SELECT count(*) FROM subscribed_tracks WHERE ended_at IS NULL")
            )
        assert live == 0  # one kept by the migration, then ended with PA1
        await store.delete_node(LEGACY_NODE)
        assert await store.stale_nodes(at(10**6)) == []
    finally:
        await store.close()


async def test_a_new_database_has_no_legacy_node(sql_url: str) -> None:
    store = await SqlStore.open(sql_url)
    try:
        assert await store.stale_nodes(at(10**9)) == []
    finally:
        await store.close()


async def test_downgrade_and_upgrade_again(sql_url: str) -> None:
    engine = create_engine(sql_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade_to("head"))
            await conn.run_sync(lambda c: command.downgrade(migrate.alembic_config(c), "0003"))
            await conn.run_sync(_upgrade_to("head"))
    finally:
        await engine.dispose()
