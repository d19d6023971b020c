"""Where the race's stock level lives: memory, an SQLite file, PostgreSQL.

Each store has the same two ways to sell one item:

- ``buy_racy``: read the level, ``await`` (a real round trip; 2 ms of sleep in memory), write
  ``read - 1``. Concurrent buyers read the same level and overwrite each other: lost updates.
- ``buy_safe``: memory takes an ``asyncio.Lock`` around read and write; the databases do it
  in one atomic ``UPDATE ... SET n = n - 1 ... RETURNING n``.

Both return ``(read, written)``; ``written`` is ``None`` when the stock was already 0.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from pathlib import Path

import aiosqlite
import asyncpg

#: the SQLite file of the race, under ``Settings.data_dir``
SQLITE_FILE = "correctness-race.sqlite3"
#: the table in the PostgreSQL database (in the URL's ``?schema=`` when it names one)
PG_TABLE = "correctness_race_stock"
#: connecting to PostgreSQL gives up after this long
CONNECT_TIMEOUT_S = 3.0

#: the memory store's pretend round trip between read and write
ROUND_TRIP_S = 0.002

Sale = tuple[int, int | None]


class StoreUnavailable(Exception):
    """The store cannot be used here; the message says why (the API answers 409)."""


class Store(ABC):
    """One stock level (a single row or integer)."""

    @abstractmethod
    async def reset(self, stock: int) -> None:
        """Set the level to ``stock``."""

    @abstractmethod
    async def level(self) -> int:
        """The level now."""

    @abstractmethod
    async def buy_racy(self) -> Sale:
        """Read, await, write ``read - 1``: the pitfall."""

    @abstractmethod
    async def buy_safe(self) -> Sale:
        """Sell one item so that no concurrent sale is lost."""

    @abstractmethod
    async def close(self) -> None:
        """Release what the store holds."""


class MemoryStore(Store):
    """An integer on the server, shared by every request."""

    def __init__(self) -> None:
        self.stock = 0
        self.lock = asyncio.Lock()

    async def reset(self, stock: int) -> None:
        self.stock = stock

    async def level(self) -> int:
        return self.stock

    async def buy_racy(self) -> Sale:
        read = self.stock
        # any await (here a pretend 2 ms round trip): other requests run, with the same read
        await asyncio.sleep(ROUND_TRIP_S)
        if read <= 0:
            return read, None
        self.stock = read - 1
        return read, read - 1

    async def buy_safe(self) -> Sale:
        async with self.lock:  # read and write with no other buyer in between
            read = self.stock
            await asyncio.sleep(ROUND_TRIP_S)
            if read <= 0:
                return read, None
            self.stock = read - 1
            return read, read - 1

    async def close(self) -> None:
        """Nothing to release: an integer."""


class SqliteStore(Store):
    """One row in an SQLite file, through one aiosqlite connection (autocommit)."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self.db = db

    @classmethod
    async def open(cls, data_dir: Path) -> SqliteStore:
        await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True)
        db = await aiosqlite.connect(data_dir / SQLITE_FILE, isolation_level=None)
        await db.execute("CREATE TABLE IF NOT EXISTS stock (id INTEGER PRIMARY KEY, n INTEGER)")
        await db.execute("INSERT OR IGNORE INTO stock (id, n) VALUES (1, 0)")
        return cls(db)

    async def reset(self, stock: int) -> None:
        await self.db.execute("UPDATE stock SET n = ? WHERE id = 1", (stock,))

    async def level(self) -> int:
        async with self.db.execute("SELECT n FROM stock WHERE id = 1") as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def buy_racy(self) -> Sale:
        read = await self.level()
        if read <= 0:
            return read, None
        await self.db.execute("UPDATE stock SET n = ? WHERE id = 1", (read - 1,))
        return read, read - 1

    async def buy_safe(self) -> Sale:
        sql = "UPDATE stock SET n = n - 1 WHERE id = 1 AND n > 0 RETURNING n"
        async with self.db.execute(sql) as cursor:
            row = await cursor.fetchone()
        if row is None:
            return 0, None
        return int(row[0]) + 1, int(row[0])

    async def close(self) -> None:
        await self.db.close()


class PgStore(Store):
    """One row in PostgreSQL, through a small asyncpg pool (one connection per request)."""

    def __init__(self, pool: asyncpg.Pool, table: str) -> None:
        self.pool = pool
        self.table = table

    @classmethod
    async def open(cls, dsn: str, schema: str | None) -> PgStore:
        try:
            pool = await asyncpg.create_pool(
                dsn, min_size=1, max_size=10, timeout=CONNECT_TIMEOUT_S
            )
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            raise StoreUnavailable(f"PostgreSQL did not answer: {type(exc).__name__}") from None
        table = f'"{schema}".{PG_TABLE}' if schema else PG_TABLE
        async with pool.acquire() as conn:
            if schema:
                await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            await conn.execute(f"CREATE TABLE IF NOT EXISTS {table} (id int PRIMARY KEY, n int)")
            await conn.execute(f"INSERT INTO {table} VALUES (1, 0) ON CONFLICT (id) DO NOTHING")
        return cls(pool, table)

    async def reset(self, stock: int) -> None:
        await self.pool.execute(f"UPDATE {self.table} SET n = $1 WHERE id = 1", stock)

    async def level(self) -> int:
        return int(await self.pool.fetchval(f"SELECT n FROM {self.table} WHERE id = 1") or 0)

    async def buy_racy(self) -> Sale:
        async with self.pool.acquire() as conn:
            read = int(await conn.fetchval(f"SELECT n FROM {self.table} WHERE id = 1") or 0)
            if read <= 0:
                return read, None
            await conn.execute(f"UPDATE {self.table} SET n = $1 WHERE id = 1", read - 1)
            return read, read - 1

    async def buy_safe(self) -> Sale:
        sql = f"UPDATE {self.table} SET n = n - 1 WHERE id = 1 AND n > 0 RETURNING n"
        left = await self.pool.fetchval(sql)
        if left is None:
            return 0, None
        return int(left) + 1, int(left)

    async def close(self) -> None:
        await self.pool.close()
