"""Outbound storage adapter: the `Store` port (`parlour.domain.ports`), twice.

`sql.SqlStore` is SQLAlchemy Core on SQLite (default) or PostgreSQL, with Alembic
migrations (`migrations/versions/`); `memory.MemoryStore` is its in-memory twin (re-exported
by `parlour.testing`). One contract suite, `tests/store/`, runs on both (and on both SQL
databases). Every state change is one conditional write or one transaction, never a
read-modify-write of a whole row, so concurrent callers cannot undo each other.

May import: `parlour.domain`, `parlour.protocol`, SQLAlchemy, Alembic.
Must never import: `parlour.services`, `parlour.api`, or any inbound adapter.
"""
