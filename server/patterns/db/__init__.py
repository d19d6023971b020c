"""The database behind ``/db``: one interface over aiosqlite and asyncpg, and SQLAlchemy.

- :mod:`.urls`: which database a URL names (password masked when shown);
- :mod:`.conn`: the connection wrapper, one interface over both drivers;
- :mod:`.pool`: the gauged, fixed-size pools that hand those connections out;
- :mod:`.tables`: the sample schema (SQLAlchemy 2 declarative);
- :mod:`.seed`: schema creation and the sample rows;
- :mod:`.service`: the lifespan-owned :class:`Database`, with its fallback to SQLite.

The ``/db`` routes: :mod:`.router` (the pattern's ``APIRouter`` and lifespan), which
includes :mod:`.status`, :mod:`.users`, :mod:`.round_trips` and :mod:`.exhaustion`; they
share :mod:`.deps` (the dependencies), :mod:`.models` (the API models) and
:mod:`.timing` (the dashboard's timed queries).
"""

from __future__ import annotations

from server.patterns.db.conn import Conn
from server.patterns.db.pool import GaugedPool, PoolClosed, PoolStats, PoolTimeout
from server.patterns.db.service import Database
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
    "mask_password",
    "parse_url",
]
