"""A pooled connection, the same to use on aiosqlite and asyncpg.

A :class:`Conn` speaks asyncpg's dialect of SQL (``$1`` placeholders; SQLite gets ``?1``),
counts the calls it awaits (the round trips), and exposes the driver's own connection as
``raw``. :mod:`server.patterns.db.pool` hands them out.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any, Literal

import aiosqlite
import asyncpg

Dialect = Literal["sqlite", "postgresql"]

_PLACEHOLDER = re.compile(r"\$(\d+)")


def sqlite_sql(sql: str) -> str:
    """asyncpg's ``$1`` placeholders as SQLite's numbered ``?1``."""
    return _PLACEHOLDER.sub(r"?\1", sql)


class Conn(ABC):
    """A pooled connection, the same to use on both backends."""

    dialect: Dialect
    #: the SQL function that sleeps for its argument in seconds (a stand-in slow query)
    sleep_fn: str
    #: SQL for the database's clock now, in seconds, read by :meth:`Clock.at_ms`: when a
    #: query really began and ended in the database (not when it was handed to the driver)
    clock_sql: str

    def __init__(self, connection: Any) -> None:
        self._connection = connection
        #: calls awaited on the driver: each one waits for the database (a network round
        #: trip on PostgreSQL, a hop to the connection's thread on aiosqlite)
        self.round_trips = 0
        #: how long the last acquire waited for this connection
        self.waited_s = 0.0

    @property
    def raw(self) -> Any:
        """The driver's own connection (``asyncpg.Connection`` or ``aiosqlite.Connection``)."""
        return self._connection

    @abstractmethod
    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        """Every row, as dicts."""

    async def fetchrow(self, sql: str, *args: Any) -> dict[str, Any] | None:
        """The first row, or ``None``."""
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    async def fetchval(self, sql: str, *args: Any) -> Any:
        """The first column of the first row, or ``None``."""
        row = await self.fetchrow(sql, *args)
        return next(iter(row.values())) if row else None

    @abstractmethod
    async def execute(self, sql: str, *args: Any) -> None:
        """Run one statement."""

    @abstractmethod
    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """One statement for many rows, in one call to the driver."""

    @abstractmethod
    def transaction(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Commit on success, roll back on any exception."""

    def in_list(self, param: str) -> str:
        """SQL for ``column IN`` a list passed as one parameter (see :meth:`list_param`)."""
        return f"= ANY({param})"

    def list_param(self, values: Iterable[int]) -> Any:
        """A list of integers as one query parameter (an array on PostgreSQL)."""
        return [int(v) for v in values]


class PgConn(Conn):
    """An asyncpg connection."""

    dialect: Dialect = "postgresql"
    sleep_fn = "pg_sleep"
    # the server's wall clock (seconds since the epoch), read at the moment it is called
    clock_sql = "extract(epoch FROM clock_timestamp())::float8"
    _connection: asyncpg.Connection

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        self.round_trips += 1
        return [dict(row) for row in await self._connection.fetch(sql, *args)]

    async def execute(self, sql: str, *args: Any) -> None:
        self.round_trips += 1
        await self._connection.execute(sql, *args)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        # asyncpg pipelines the whole batch: it does not wait for each row's answer.
        self.round_trips += 1
        await self._connection.executemany(sql, list(rows))

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        self.round_trips += 1  # BEGIN (COMMIT/ROLLBACK counted below)
        async with self._connection.transaction():
            try:
                yield
            finally:
                self.round_trips += 1


class SqliteConn(Conn):
    """An aiosqlite connection (its queries run on its own thread)."""

    dialect: Dialect = "sqlite"
    sleep_fn = "sleep_s"
    # time.perf_counter() in the connection's thread: this process's own monotonic clock
    clock_sql = "clock_s()"

    _connection: aiosqlite.Connection

    def __init__(self, connection: aiosqlite.Connection) -> None:
        super().__init__(connection)
        # rows that know their column names, so a query is one hop to the thread (below)
        connection.row_factory = sqlite3.Row
        #: an operation was cancelled mid-way: reset the connection before reuse
        self.interrupted = False

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        # One hop: execute and fetch in the same call on the connection's thread, so
        # concurrent calls on one connection run (and answer) strictly one after another.
        self.round_trips += 1
        rows = await self._connection.execute_fetchall(sqlite_sql(sql), args)
        return [dict(zip(row.keys(), row, strict=True)) for row in rows]

    async def execute(self, sql: str, *args: Any) -> None:
        self.round_trips += 1
        await self._connection.execute(sqlite_sql(sql), args)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self.round_trips += 1
        await self._connection.executemany(sqlite_sql(sql), list(rows))

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        # The connection is in autocommit mode (isolation_level=None): BEGIN is explicit.
        await self.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.round_trips += 1
            await self._connection.rollback()
            raise
        self.round_trips += 1
        await self._connection.commit()

    def in_list(self, param: str) -> str:
        # SQLite has no arrays: the list travels as a JSON text.
        return f"IN (SELECT value FROM json_each({param}))"

    def list_param(self, values: Iterable[int]) -> Any:
        return "[" + ",".join(str(int(v)) for v in values) + "]"
