"""Alembic migrations for the Parlour store (run by `parlour.store.migrate`)."""
