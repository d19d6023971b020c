"""Database patterns on a live backend: aiosqlite by default, asyncpg on PostgreSQL.

The router's lifespan opens one :class:`~server.patterns.db.Database` (a gauged pool of direct
driver connections, a SQLAlchemy async engine, the seeded sample tables) and closes it on
the way out. Every pattern comes with its pitfall; blocking mode switches to it:

=====================  ==========================================  ==========================
route                  right                                       pitfall (blocking mode)
=====================  ==========================================  ==========================
/db/users/{id}         a connection from the lifespan pool         /db/per-request-pool/...:
                                                                   a pool per request
/db/orm/users          AsyncSession dependency: commit / rollback
/db/dashboard          gather, one pooled connection per query     gather on ONE connection
                                                                   (or one session)
/db/batch-insert       executemany: one call for all rows          one INSERT per row
/db/posts              prefetch: a JOIN and one IN query           N+1: two queries per post
/db/hold               acquire with a timeout: 503, never a hang   no timeout: wait and wait
/db/slow-report        the query on the pool (another thread/host) sync sqlite3 in async def
=====================  ==========================================  ==========================

The routes live by theme in :mod:`.status`, :mod:`.users`, :mod:`.round_trips` and
:mod:`.exhaustion`, included here; the dashboard and the slow report stay in this module
(the stall inspector and the pane name their lines here). Their models are in
:mod:`.models`, their dependencies in :mod:`.deps`.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, HTTPException, Query, Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from server.deps import BlockingMode
from server.patterns.db import exhaustion, round_trips, status, users
from server.patterns.db.conn import Conn, PgConn, SqliteConn
from server.patterns.db.deps import (
    ReadyDatabase,
    connection,
    get_session,
    per_request_connection,
    unavailable,
    unless_disconnected,
)
from server.patterns.db.exhaustion import hold_connection
from server.patterns.db.models import DashboardMode, DashboardOut, QueryRecord, ReportOut
from server.patterns.db.round_trips import (
    insert_batch,
    insert_row_by_row,
    posts_n_plus_one,
    posts_prefetch,
)
from server.patterns.db.service import Database
from server.patterns.db.timing import (
    DASHBOARD_QUERIES,
    Clock,
    clocked,
    orm_sql,
    overlapped,
    slow,
    timed,
)
from server.patterns.db.users import get_user
from server.state import state_of

#: what the panes and the bench show from here (they import it as ``router``'s)
__all__ = [
    "clocked",
    "dashboard_on_one_connection",
    "dashboard_on_one_session",
    "dashboard_on_pool",
    "get_session",
    "get_user",
    "hold_connection",
    "insert_batch",
    "insert_row_by_row",
    "per_request_connection",
    "posts_n_plus_one",
    "posts_prefetch",
    "report_async",
    "report_sync_sqlite3",
    "router",
    "slow",
]

#: the stand-in latency of each dashboard query (ms), by default
DASHBOARD_LATENCY_MS = 50


@asynccontextmanager
async def db_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the database for the app's life (connecting in the background), then close it.

    FastAPI nests this inside the app's own lifespan. The app starts serving at once:
    ``/db/status`` says ``connecting`` until the pool is up and seeded.
    """
    state = state_of(app)
    settings = state.settings
    database = Database(settings.data_dir, settings.database_url)
    database.start()
    async with state.opened(Database, database, database.close):
        yield


router = APIRouter(prefix="/db", tags=["db"], lifespan=db_lifespan)

# The routes in the order /docs lists them: status, one row three ways, the dashboard
# (here), round trips, pool exhaustion, the slow report (here).
router.include_router(status.router)
router.include_router(users.router)


# -- dashboard: several queries in parallel ---------------------------------------------------


async def dashboard_on_pool(db: Database, latency_s: float, clock: Clock) -> list[QueryRecord]:
    """Right: each query takes its own connection from the pool, all at once."""
    records: list[QueryRecord] = []

    async def one(sql: str) -> dict[str, Any] | None:
        async with connection(db) as conn:
            return await conn.fetchrow(clocked(sql, conn.sleep_fn, conn.clock_sql), latency_s)

    assert db.pool is not None
    await asyncio.gather(
        *(
            timed(clock, name, one(sql), records, db.pool.dialect)
            for name, sql in DASHBOARD_QUERIES.items()
        )
    )
    return records


async def dashboard_on_one_connection(
    db: Database, latency_s: float, clock: Clock
) -> list[QueryRecord]:
    """The guide's mistake: ``gather`` of every query on ONE connection.

    asyncpg refuses at once ("another operation is in progress"); aiosqlite accepts and
    runs them one after another on its thread, so nothing overlaps.
    """
    records: list[QueryRecord] = []
    async with connection(db) as conn:
        await asyncio.gather(
            *(
                timed(
                    clock,
                    name,
                    conn.fetchrow(clocked(sql, conn.sleep_fn, conn.clock_sql), latency_s),
                    records,
                    conn.dialect,
                )
                for name, sql in DASHBOARD_QUERIES.items()
            )
        )
    return records


async def dashboard_on_one_session(
    db: Database, latency_s: float, clock: Clock
) -> list[QueryRecord]:
    """The same mistake through SQLAlchemy: ``gather`` on ONE ``AsyncSession``."""
    assert db.sessions is not None
    assert db.pool is not None
    dialect = db.pool.dialect
    like: type[Conn] = PgConn if dialect == "postgresql" else SqliteConn
    records: list[QueryRecord] = []

    async def one(session: AsyncSession, sql: str) -> Mapping[str, Any] | None:
        statement = text(orm_sql(clocked(sql, like.sleep_fn, like.clock_sql)))
        row = (await session.execute(statement, {"p1": latency_s})).mappings().first()
        return None if row is None else dict(row)

    async with db.sessions() as session:
        try:
            await asyncio.gather(
                *(
                    timed(clock, name, one(session, sql), records, dialect)
                    for name, sql in DASHBOARD_QUERIES.items()
                )
            )
        finally:
            with contextlib.suppress(Exception):  # the session may be in a broken state
                await session.rollback()
    return records


DASHBOARDS = {
    "pool": dashboard_on_pool,
    "one_connection": dashboard_on_one_connection,
    "one_session": dashboard_on_one_session,
}


@router.get("/dashboard", responses={503: {}})
async def dashboard(
    request: Request,
    db: ReadyDatabase,
    blocking: BlockingMode,
    mode: Annotated[
        DashboardMode, Query(description="pool (right), one_connection or one_session.")
    ] = "pool",
    latency_ms: Annotated[
        float, Query(ge=0, le=2000, description="Database-side wait per query (0 to 2000 ms).")
    ] = DASHBOARD_LATENCY_MS,
) -> DashboardOut:
    """Five queries with ``asyncio.gather``: on the pool, or on one connection/session."""
    effective: DashboardMode = "one_connection" if blocking and mode == "pool" else mode
    clock = Clock()
    records = await unless_disconnected(
        request, DASHBOARDS[effective](db, latency_ms / 1000.0, clock)
    )
    records.sort(key=lambda r: r.start_ms)
    assert db.target is not None
    failed = [r for r in records if r.error]
    out = DashboardOut(
        mode=mode,
        effective=effective,
        backend=db.target.backend,
        latency_ms=latency_ms,
        wall_ms=clock.ms(),
        queries=records,
        ok=len(records) - len(failed),
        failed=len(failed),
        overlapped=overlapped(records),
        error=failed[0].error if failed else None,
        note="",
    )
    out.note = explain_dashboard(out)
    return out


def explain_dashboard(out: DashboardOut) -> str:
    """One or two sentences for the pane (and curl)."""
    n, wall = len(out.queries), out.wall_ms
    if out.effective == "pool":
        return (
            f"{n} queries of {out.latency_ms:g} ms, one pooled connection each, ran in the "
            f"database at the same time: {wall:.0f} ms in all, about one query's time."
        )
    where = "session" if out.effective == "one_session" else "connection"
    if out.failed:
        return (
            f"A {where} runs one query at a time: the driver refused {out.failed} of {n}. "
            "Take one connection per query from the pool."
        )
    how = (
        "SQLAlchemy's adapter locks the session's connection"
        if out.effective == "one_session"
        else "the driver queues them on its thread"
    )
    return (
        f"No error, but the database ran the {n} queries one after another ({how}; ░ is "
        f"the wait): {wall:.0f} ms, their sum. gather needs one connection per query."
    )


router.include_router(round_trips.router)
router.include_router(exhaustion.router)


# -- blocking: sync sqlite3 inside async def -------------------------------------------------


REPORT = (
    "WITH pause AS (SELECT {sleep}($1)) SELECT"
    " (SELECT count(*) FROM orders) AS orders,"
    " (SELECT coalesce(sum(amount_cents), 0) FROM orders) AS total_cents FROM pause"
)


async def report_async(db: Database, seconds: float) -> dict[str, Any] | None:
    """Right: the slow query on a pooled connection; the loop serves others meanwhile."""
    async with connection(db) as conn:
        return await conn.fetchrow(REPORT.format(sleep=conn.sleep_fn), seconds)


async def report_sync_sqlite3(db: Database, seconds: float) -> dict[str, Any] | None:
    """The pitfall: the standard library's sync ``sqlite3`` inside ``async def``.

    Every call below runs on the event loop's thread: for ``seconds`` nothing else on this
    loop runs (the monitor records the stall at the execute line).
    """
    assert db.sqlite_path is not None
    conn = sqlite3.connect(db.sqlite_path)
    try:
        conn.create_function("sleep_s", 1, time.sleep)
        cursor = conn.execute(REPORT.format(sleep="sleep_s").replace("$1", "?"), (seconds,))
        orders, total_cents = cursor.fetchone()
    finally:
        conn.close()
    return {"orders": orders, "total_cents": total_cents}


@router.get("/slow-report", responses={503: {}})
async def slow_report(
    request: Request,
    db: ReadyDatabase,
    blocking: BlockingMode,
    seconds: Annotated[
        float, Query(ge=0, le=2, description="How long the report query takes (0 to 2 s).")
    ] = 0.2,
) -> ReportOut:
    """A slow report query: on the pool (right), or sync sqlite3 in async def (blocking)."""
    began = time.perf_counter()
    if blocking:
        if not db.sqlite_ready:
            raise HTTPException(503, detail="the SQLite file for this pitfall is not ready yet")
        try:
            row = await report_sync_sqlite3(db, seconds)
        except sqlite3.Error as exc:
            raise unavailable(exc) from None
        driver = "sqlite3 (sync, on the event loop)"
    else:
        row = await unless_disconnected(request, report_async(db, seconds))
        assert db.target is not None
        driver = "asyncpg" if db.target.backend == "postgresql" else "aiosqlite (its thread)"
    assert row is not None
    return ReportOut(
        orders=int(row["orders"]),
        total_cents=int(row["total_cents"]),
        driver=driver,
        ms=round((time.perf_counter() - began) * 1000.0, 3),
    )
