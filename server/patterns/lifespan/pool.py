"""A small real pool of SQLite connections, and the guide's context manager around it.

The pool keeps a strong reference to every connection it has handed out, with the task
that took it (as asyncpg's pool keeps its holders): a connection that is never released
is never reclaimed by the garbage collector either. It stays checked out, its transaction
open, until :meth:`ConnectionPool.reclaim_leaked` rolls it back and gives it back. So the
leak in the pitfall is real, and its gauge says which connections are lost: those held
by a request that has already ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiosqlite
from pydantic import BaseModel, Field

#: the pool's database file, in the data directory
POOL_DATABASE = "lifespan-pool.sqlite3"
POOL_SIZE = 5
ACQUIRE_TIMEOUT_S = 1.0


class PoolTimeout(Exception):
    """No connection became free in time; the message says what the pool holds."""


class PoolClosed(Exception):
    """The pool is closed (the app is shutting down)."""


class PoolGauge(BaseModel):
    """What the pool holds right now."""

    size: int
    idle: int = Field(description="Connections ready to be acquired.")
    in_use: int = Field(description="Checked out by a request still running.")
    leaked: int = Field(description="Checked out by a request that has ended: never released.")
    waiters: int = Field(description="Requests waiting for a connection right now.")
    acquire_timeout_s: float


@dataclass
class Checkout:
    """A connection handed out: who took it, and when."""

    conn: aiosqlite.Connection
    holder: asyncio.Task[object] | None
    since: float

    @property
    def leaked(self) -> bool:
        """Its request is over and it was never released."""
        return self.holder is not None and self.holder.done()


class ConnectionPool:
    """``size`` aiosqlite connections to one file, handed out from a queue."""

    def __init__(self, size: int, acquire_timeout_s: float) -> None:
        self.size = size
        self.acquire_timeout_s = acquire_timeout_s
        self._idle: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        self._out: dict[int, Checkout] = {}
        self._all: list[aiosqlite.Connection] = []
        self._waiters = 0
        self.closed = False

    @classmethod
    async def open(
        cls, path: Path, size: int = POOL_SIZE, acquire_timeout_s: float = ACQUIRE_TIMEOUT_S
    ) -> ConnectionPool:
        """Open ``size`` connections now, each with a per-connection scratch table."""
        path.parent.mkdir(parents=True, exist_ok=True)
        pool = cls(size, acquire_timeout_s)
        try:
            for _ in range(size):
                conn = await aiosqlite.connect(path, isolation_level=None)
                pool._all.append(conn)
                # TEMP: private to its connection, so an open transaction on one (a leaked
                # connection's) locks nothing the others need
                await conn.execute("CREATE TEMP TABLE scratch (note TEXT NOT NULL)")
                pool._idle.put_nowait(conn)
        except BaseException:
            await pool.close()
            raise
        return pool

    async def acquire(self, timeout_s: float | None = None) -> aiosqlite.Connection:
        """A connection, or :class:`PoolTimeout` after ``timeout_s`` (default: the pool's)."""
        if self.closed:
            raise PoolClosed("the pool is closed")
        wait = self.acquire_timeout_s if timeout_s is None else timeout_s
        self._waiters += 1
        try:
            async with asyncio.timeout(wait):
                conn = await self._idle.get()
        except TimeoutError:
            gauge = self.gauge()
            raise PoolTimeout(
                f"no free connection within {wait:g} s: {gauge.size - gauge.idle} of "
                f"{gauge.size} checked out ({gauge.leaked} leaked by requests that ended "
                "without releasing); POST /lifespan/pool/reset gives them back"
            ) from None
        finally:
            self._waiters -= 1
        self._out[id(conn)] = Checkout(conn, asyncio.current_task(), time.perf_counter())
        return conn

    async def release(self, conn: aiosqlite.Connection) -> None:
        """Give ``conn`` back. Nothing here awaits, so a cancellation cannot lose it."""
        if self._out.pop(id(conn), None) is not None and not self.closed:
            self._idle.put_nowait(conn)

    async def reclaim_leaked(self) -> int:
        """Roll back and give back every connection whose request ended without
        releasing it; how many."""
        leaked = [out for out in self._out.values() if out.leaked]
        for out in leaked:
            with contextlib.suppress(sqlite3.Error, ValueError):
                await out.conn.rollback()
            await self.release(out.conn)
        return len(leaked)

    def gauge(self) -> PoolGauge:
        leaked = sum(out.leaked for out in self._out.values())
        return PoolGauge(
            size=self.size,
            idle=0 if self.closed else self._idle.qsize(),
            in_use=len(self._out) - leaked,
            leaked=leaked,
            waiters=self._waiters,
            acquire_timeout_s=self.acquire_timeout_s,
        )

    async def close(self) -> None:
        """Close every connection, the checked-out ones too."""
        self.closed = True
        for conn in self._all:
            with contextlib.suppress(sqlite3.Error, ValueError, TimeoutError):
                await asyncio.wait_for(conn.close(), timeout=5.0)
        self._all.clear()
        self._out.clear()


# -- the guide's async context manager ----------------------------------------------------


@contextlib.asynccontextmanager
async def connection(
    pool: ConnectionPool, timeout_s: float | None = None
) -> AsyncIterator[aiosqlite.Connection]:
    """A pooled connection for the block: rolled back on any error, released always."""
    conn = await pool.acquire(timeout_s)
    try:
        yield conn
    except BaseException:
        await conn.rollback()
        raise
    finally:
        await pool.release(conn)
