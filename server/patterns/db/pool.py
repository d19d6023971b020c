"""One small interface over two drivers: a fixed-size pool of connections with a gauge.

``PgPool`` wraps an ``asyncpg`` pool; ``SqlitePool`` keeps ``aiosqlite`` connections (one
thread each) in a queue. Both hand out a :class:`~server.patterns.db.conn.Conn`.

The gauge is real: ``in_use`` and ``waiters`` are counted by :meth:`GaugedPool.acquire`
around the driver's own acquire, so a request waiting for a connection is seen waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite
import asyncpg
from pydantic import BaseModel, ConfigDict, Field

from server.patterns.db.conn import Conn, Dialect, PgConn, SqliteConn

log = logging.getLogger("fastasync.db")

#: connecting to PostgreSQL gives up after this long (an unreachable host must not hang)
CONNECT_TIMEOUT_S = 3.0
#: a SQLite writer waits this long for another connection's lock before failing
SQLITE_BUSY_MS = 5000


class PoolTimeout(Exception):
    """No connection became free in time; the message gives the pool's state."""


class PoolClosed(Exception):
    """The pool is closed (the app is shutting down)."""


class PoolStats(BaseModel):
    """The gauge: what the pool holds right now (``/db/status`` adds its acquire timeout)."""

    model_config = ConfigDict(frozen=True)
    size: int
    in_use: int
    idle: int
    waiters: int = Field(description="Requests waiting for a connection right now.")
    # a reconnect after a failure counts too
    opened: int = Field(description="Connections opened over the pool's life.")


class GaugedPool(ABC):
    """A fixed-size pool that counts its waiters and connections in use."""

    dialect: Dialect

    def __init__(self, size: int, acquire_timeout_s: float) -> None:
        self.size = size
        self.acquire_timeout_s = acquire_timeout_s
        self._in_use = 0
        self._waiters = 0
        self.opened = 0
        self.closed = False

    @abstractmethod
    async def _get(self) -> Conn: ...

    @abstractmethod
    async def _put(self, conn: Conn, failed: bool) -> None: ...

    @abstractmethod
    def _idle(self) -> int: ...

    @abstractmethod
    async def close(self) -> None:
        """Close every connection; returns promptly even with connections checked out."""

    def stats(self) -> PoolStats:
        return PoolStats(
            size=self.size,
            in_use=self._in_use,
            idle=self._idle(),
            waiters=self._waiters,
            opened=self.opened,
        )

    @contextlib.asynccontextmanager
    async def acquire(self, wait_s: float | None = -1.0) -> AsyncIterator[Conn]:
        """A connection for the block; :class:`PoolTimeout` after ``wait_s`` seconds.

        ``wait_s=-1`` (the default) means the pool's ``acquire_timeout_s``; ``None``
        waits as long as it takes (the pitfall). Cancellation at any point gives the
        connection back.
        """
        if self.closed:
            raise PoolClosed("the database pool is closed")
        wait = self.acquire_timeout_s if wait_s is not None and wait_s < 0 else wait_s
        self._waiters += 1
        began = time.perf_counter()
        try:
            async with asyncio.timeout(wait):
                conn = await self._get()
        except TimeoutError:
            raise PoolTimeout(
                f"no free database connection within {wait:g} s "
                f"(pool of {self.size}: {self._in_use} in use, {self._waiters - 1} "
                "other request(s) waiting)"
            ) from None
        finally:
            self._waiters -= 1
        conn.round_trips = 0
        conn.waited_s = time.perf_counter() - began
        self._in_use += 1
        failed = False
        try:
            yield conn
        except BaseException:
            failed = True
            raise
        finally:
            self._in_use -= 1
            await self._put(conn, failed)


class PgPool(GaugedPool):
    """An asyncpg pool of exactly ``size`` connections."""

    dialect: Dialect = "postgresql"

    def __init__(self, pool: asyncpg.Pool, size: int, acquire_timeout_s: float) -> None:
        super().__init__(size, acquire_timeout_s)
        self._pool = pool

    @classmethod
    async def open(
        cls,
        dsn: str,
        size: int,
        acquire_timeout_s: float,
        server_settings: dict[str, str],
    ) -> PgPool:
        """Connect ``size`` connections now: a bad URL fails here, not at the first query."""
        holder: list[PgPool] = []

        async def counted(_: asyncpg.Connection) -> None:
            if holder:
                holder[0].opened += 1

        pool = await asyncpg.create_pool(
            dsn,
            min_size=size,
            max_size=size,
            timeout=CONNECT_TIMEOUT_S,
            server_settings=server_settings,
            init=counted,
        )
        gauged = cls(pool, size, acquire_timeout_s)
        gauged.opened = size
        holder.append(gauged)
        return gauged

    @property
    def raw(self) -> asyncpg.Pool:
        return self._pool

    async def _get(self) -> Conn:
        return PgConn(await self._pool.acquire())

    async def _put(self, conn: Conn, failed: bool) -> None:
        # asyncpg resets the connection, and closes it if the reset cannot finish; the
        # release itself is shielded from cancellation inside asyncpg.
        await self._pool.release(conn.raw)

    def _idle(self) -> int:
        return 0 if self.closed else self._pool.get_idle_size()

    async def close(self) -> None:
        self.closed = True
        try:
            await asyncio.wait_for(self._pool.close(), timeout=5.0)
        except TimeoutError:
            log.warning("database pool did not close in 5 s; terminating its connections")
            self._pool.terminate()


async def _open_sqlite(path: Path) -> aiosqlite.Connection:
    connection = await aiosqlite.connect(path, isolation_level=None)
    try:
        await connection.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_MS}")
        await connection.execute("PRAGMA journal_mode = WAL")
        await connection.execute("PRAGMA foreign_keys = ON")
        # Runs in the connection's own thread: the loop does not wait for it.
        await connection.create_function("sleep_s", 1, time.sleep)
        await connection.create_function("clock_s", 0, time.perf_counter)
    except BaseException:
        await connection.close()
        raise
    return connection


class SqlitePool(GaugedPool):
    """``size`` aiosqlite connections to one file, handed out from a queue."""

    dialect: Dialect = "sqlite"

    def __init__(self, path: Path, size: int, acquire_timeout_s: float) -> None:
        super().__init__(size, acquire_timeout_s)
        self.path = path
        self._idle_queue: asyncio.Queue[SqliteConn] = asyncio.Queue()
        self._all: list[aiosqlite.Connection] = []
        self._resets: set[asyncio.Task[None]] = set()

    @classmethod
    async def open(cls, path: Path, size: int, acquire_timeout_s: float) -> SqlitePool:
        path.parent.mkdir(parents=True, exist_ok=True)
        pool = cls(path, size, acquire_timeout_s)
        try:
            for _ in range(size):
                connection = await _open_sqlite(path)
                pool._all.append(connection)
                pool.opened += 1
                pool._idle_queue.put_nowait(SqliteConn(connection))
        except BaseException:
            await pool.close()
            raise
        return pool

    async def _get(self) -> Conn:
        return await self._idle_queue.get()

    async def _put(self, conn: Conn, failed: bool) -> None:
        assert isinstance(conn, SqliteConn)
        if self.closed:
            return
        if not (failed or conn.interrupted or conn.raw.in_transaction):
            self._idle_queue.put_nowait(conn)
            return
        # The block failed or was cancelled: an operation may still be queued on the
        # connection's thread, and a transaction may be open. Roll back behind it (the
        # thread runs calls in order) before anyone else gets the connection. A task, so
        # that a second cancellation cannot lose the connection half-way.
        conn.interrupted = True
        task = asyncio.create_task(self._reset(conn), name="db-sqlite-reset")
        self._resets.add(task)
        task.add_done_callback(self._resets.discard)
        await asyncio.shield(task)  # cancelled here, the reset still finishes (held)

    async def _reset(self, conn: SqliteConn) -> None:
        with contextlib.suppress(sqlite3.Error, ValueError):
            await conn.raw.rollback()
        conn.interrupted = False
        if not self.closed:
            self._idle_queue.put_nowait(conn)

    def _idle(self) -> int:
        return self._idle_queue.qsize()

    async def close(self) -> None:
        self.closed = True
        if self._resets:
            await asyncio.wait(set(self._resets), timeout=2.0)
        for connection in self._all:
            try:
                await asyncio.wait_for(connection.close(), timeout=5.0)
            except (TimeoutError, sqlite3.Error, ValueError) as exc:
                log.warning("could not close an SQLite connection: %s", exc)
        self._all.clear()
