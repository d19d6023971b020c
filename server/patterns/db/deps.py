"""The ``/db`` routes' dependencies: the database, a pooled connection, a session.

- :data:`ReadyDatabase`: the lifespan's :class:`~server.patterns.db.Database`, or 503 saying
  why it cannot be used yet (connecting, seeding) or at all;
- :func:`connection`: a connection from the lifespan pool, a timeout or a lost connection
  turned into a 503 (:func:`unavailable`);
- :data:`SessionDep`: the SQLAlchemy ``AsyncSession`` that commits or rolls back;
- :data:`PerRequestConn`: the guide's pitfall, a brand-new pool per request;
- :func:`unless_disconnected`: a query cancelled when its client hangs up.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Annotated, TypeVar

import aiosqlite
import asyncpg
from fastapi import Depends, HTTPException, Request, status
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncSession

from server.deps import provided
from server.disconnect import until_disconnected
from server.errors import describe
from server.patterns.db.conn import Conn, PgConn, SqliteConn
from server.patterns.db.pool import PoolClosed, PoolTimeout
from server.patterns.db.service import Database

log = logging.getLogger("fastasync.db")

T = TypeVar("T")

get_database = provided(Database)


async def ready_database(db: Annotated[Database, Depends(get_database)]) -> Database:
    """The database, or 503 saying why it cannot be used yet (or at all)."""
    if db.state != "ready" or db.pool is None:
        why = f": {db.error}" if db.error else ""
        progress = f" ({db.seed_progress:.0%})" if db.state == "seeding" else ""
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, detail=f"database {db.state}{progress}{why}"
        )
    return db


DatabaseDep = Annotated[Database, Depends(get_database)]
ReadyDatabase = Annotated[Database, Depends(ready_database)]

#: what "the database went away" looks like from each driver
CONNECTION_LOST = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.InterfaceError,
    sqlite3.OperationalError,
    PoolClosed,
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
)


def unavailable(exc: BaseException) -> HTTPException:
    """A 503 naming what the driver said; logged as one line, no traceback."""
    if isinstance(exc, PoolTimeout | sa_exc.TimeoutError):
        detail = str(exc) if isinstance(exc, PoolTimeout) else f"ORM pool: {describe(exc)}"
    else:
        detail = f"database error mid-query: {describe(exc)}"
        log.warning("db request failed: %s", detail)
    return HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=detail[:500])


@asynccontextmanager
async def connection(db: Database, wait_s: float | None = -1.0) -> AsyncIterator[Conn]:
    """A pooled connection for the block; a timeout or a lost connection is a 503."""
    assert db.pool is not None
    try:
        async with db.pool.acquire(wait_s) as conn:
            yield conn
    except (PoolTimeout, *CONNECTION_LOST) as exc:
        raise unavailable(exc) from None


async def get_session(db: ReadyDatabase) -> AsyncIterator[AsyncSession]:
    """The AsyncSession dependency: commit if the handler returns, roll back if it raises.

    ``scope="function"`` (below) runs the commit before the response is sent, so a
    failing commit is still the client's error response, not a lost write.
    """
    assert db.sessions is not None
    async with db.sessions() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            db.session_counts.rollbacks += 1
            raise
        try:
            await session.commit()
        except (sa_exc.TimeoutError, *CONNECTION_LOST) as exc:
            raise unavailable(exc) from None
        db.session_counts.commits += 1


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def per_request_connection(db: ReadyDatabase) -> AsyncGenerator[Conn, None]:
    """The guide's dependency: a brand-new pool for every request (the pitfall).

    As in the guide, ``asyncpg.create_pool(url)`` with its defaults opens ten connections
    before the first query. The guide never closes that pool, leaking ten connections per
    request; this version closes it, so only the cost remains. On SQLite, a new aiosqlite
    connection (a new thread, a new file handle) stands for the same mistake.
    """
    assert db.target is not None
    if db.target.backend == "postgresql":
        settings = {"application_name": db.application_name}
        if db.target.schema:
            settings["search_path"] = db.target.schema
        try:
            pool = await asyncpg.create_pool(db.target.dsn, server_settings=settings)
        except CONNECTION_LOST as exc:
            raise unavailable(exc) from None
        db.per_request_opened += pool.get_size()
        try:
            async with pool.acquire() as raw:
                conn: Conn = PgConn(raw)
                conn.opened = pool.get_size()  # type: ignore[attr-defined]
                yield conn
        finally:
            await pool.close()  # the guide's version stops before this line
    else:
        assert db.target.path is not None
        sqlite_connection = await aiosqlite.connect(db.target.path)
        db.per_request_opened += 1
        try:
            conn = SqliteConn(sqlite_connection)
            conn.opened = 1  # type: ignore[attr-defined]
            yield conn
        finally:
            await sqlite_connection.close()


PerRequestConn = Annotated[Conn, Depends(per_request_connection, scope="function")]


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """Await ``work``; if the client hangs up first, cancel it (its connection goes back).

    Without this, a query keeps its pooled connection busy for a client that left.
    """
    task = asyncio.ensure_future(work)
    gone = asyncio.create_task(until_disconnected(request), name="db:watch-disconnect")
    try:
        await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        task.cancel()  # a no-op when it has finished
        await asyncio.gather(task, gone, return_exceptions=True)
    if task.cancelled():
        raise HTTPException(499, detail="client disconnected: the query was cancelled")
    return task.result()
