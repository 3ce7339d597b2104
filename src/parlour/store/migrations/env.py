"""Alembic environment: migrations run on a connection handed in by `parlour.store.migrate`."""

from __future__ import annotations

from alembic import context

from parlour.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only via `alembic` CLI for autogenerate
    from sqlalchemy import create_engine

    url = context.config.get_main_option("sqlalchemy.url") or "sqlite://"
    with create_engine(url).connect() as conn:
        context.configure(connection=conn, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
