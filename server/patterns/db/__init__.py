"""The database behind ``/db``: one interface over aiosqlite and asyncpg, and SQLAlchemy.

- :mod:`.urls`: which database a URL names (password masked when shown);
- :mod:`.pool`: the gauged, fixed-size pools and the connection wrapper;
- :mod:`.models`: the sample schema (SQLAlchemy 2 declarative);
- :mod:`.seed`: schema creation and the sample rows;
- :mod:`.service`: the lifespan-owned :class:`Database`, with its fallback to SQLite.
"""

from __future__ import annotations

from server.patterns.db.pool import Conn, GaugedPool, PoolClosed, PoolStats, PoolTimeout
from server.patterns.db.service import Database, describe
from server.patterns.db.urls import BadDatabaseUrl, Target, mask_password, parse_url

__all__ = [
    "BadDatabaseUrl",
    "Conn",
    "Database",
    "GaugedPool",
    "PoolClosed",
    "PoolStats",
    "PoolTimeout",
    "Target",
    "describe",
    "mask_password",
    "parse_url",
]
