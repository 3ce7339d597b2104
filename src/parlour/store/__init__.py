"""Outbound storage adapter: SQLAlchemy Core on SQLite (default) or PostgreSQL.

May import: `parlour.domain`, `parlour.protocol`, SQLAlchemy, Alembic.
Must never import: `parlour.services`, `parlour.api`, or any inbound adapter.
"""
