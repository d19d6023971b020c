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
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
import sqlite3
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Mapping
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal, TypeVar, cast

import aiosqlite
import asyncpg
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import exc as sa_exc
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from server.deps import BlockingMode, provided
from server.json_types import JsonInt
from server.patterns.db import Conn, Database, PoolClosed, PoolStats, PoolTimeout, describe
from server.patterns.db.models import Order, User
from server.patterns.db.pool import PgConn, SqliteConn
from server.patterns.db.seed import EVENTS_KEPT
from server.state import state_of

log = logging.getLogger("fastasync.db")

T = TypeVar("T")

MAX_USER_ID = 2**31 - 1
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
    state.provide(Database, database)
    try:
        yield
    finally:
        state.withdraw(Database)
        await database.close()


router = APIRouter(prefix="/db", tags=["db"], lifespan=db_lifespan)


# -- dependencies ---------------------------------------------------------------------------


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


async def until_disconnected(request: Request) -> None:
    """Return when the client goes away (the request body has been read already)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


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


# -- status ---------------------------------------------------------------------------------


class PoolOut(BaseModel):
    """The pool gauge."""

    size: int
    in_use: int
    idle: int
    waiters: int = Field(description="Requests waiting for a connection right now.")
    opened: int = Field(description="Connections opened over the pool's life.")
    acquire_timeout_s: float


class OrmPoolOut(BaseModel):
    """The SQLAlchemy engine's own pool."""

    size: int
    checked_out: int
    commits: int = Field(description="AsyncSession dependency: requests committed.")
    rollbacks: int = Field(description="AsyncSession dependency: requests rolled back.")


class StatusOut(BaseModel):
    """``GET /db/status``: which backend is live, and how it is doing."""

    state: Literal["connecting", "seeding", "ready", "unavailable", "closed"]
    backend: Literal["sqlite", "postgresql"] | None
    driver: Literal["aiosqlite", "asyncpg"] | None
    orm: str | None = Field(description="The SQLAlchemy dialect+driver of the session.")
    location: str | None = Field(description="The live database (password hidden).")
    requested: str | None = Field(description="The URL asked for, if any (password hidden).")
    fallback_reason: str | None = Field(description="Why the requested URL is not the live one.")
    error: str | None = Field(description="Why there is no database at all (state unavailable).")
    seed_progress: float
    rows: dict[str, int]
    seeded_now: bool | None
    pool: PoolOut | None
    orm_pool: OrmPoolOut | None
    per_request_opened: int = Field(description="Connections the pool-per-request route opened.")
    sync_sqlite_file: str | None = Field(description="The file the sync-sqlite3 pitfall reads.")


def pool_out(stats: PoolStats, timeout_s: float) -> PoolOut:
    return PoolOut(**stats.__dict__, acquire_timeout_s=timeout_s)


def status_of(db: Database) -> StatusOut:
    """The database's state as the pane and curl read it."""
    target = db.target if db.pool is not None else None
    requested = db.requested
    stats = db.pool_stats()
    orm_pool = None
    if db.engine is not None:
        engine_pool: Any = db.engine.pool
        orm_pool = OrmPoolOut(
            size=engine_pool.size(),
            checked_out=engine_pool.checkedout(),
            commits=db.session_counts.commits,
            rollbacks=db.session_counts.rollbacks,
        )
    return StatusOut(
        state=db.state,
        backend=target.backend if target else None,
        driver=("asyncpg" if target.backend == "postgresql" else "aiosqlite") if target else None,
        orm=db.engine.url.drivername if db.engine is not None else None,
        location=target.display if target else None,
        requested=None
        if requested is None
        else (requested if isinstance(requested, str) else requested.display),
        fallback_reason=db.fallback_reason,
        error=db.error,
        seed_progress=db.seed_progress,
        rows=db.seed_report.rows if db.seed_report else {},
        seeded_now=db.seed_report.seeded_now if db.seed_report else None,
        pool=pool_out(stats, db.acquire_timeout_s) if stats else None,
        orm_pool=orm_pool,
        per_request_opened=db.per_request_opened,
        sync_sqlite_file=str(db.sqlite_path) if db.sqlite_ready else None,
    )


@router.get("/status")
async def database_status(db: DatabaseDep) -> StatusOut:
    """Backend, pool gauge, seed, and why a requested URL is not in use (if so)."""
    return status_of(db)


# -- fetch one row: direct, per-request pool, AsyncSession ----------------------------------

UserId = Annotated[int, Path(ge=1, le=MAX_USER_ID, description="A user id (1 to 2**31-1).")]


class UserOut(BaseModel):
    id: int
    name: str
    email: str
    orders: int = Field(description="How many orders the user has.")
    via: str = Field(description="Which way the connection was obtained.")
    round_trips: int
    connections_opened: int = Field(description="New connections this request opened.")


async def fetch_user(conn: Conn, user_id: int) -> dict[str, Any] | None:
    """One user and their order count, in one query."""
    return await conn.fetchrow(
        "SELECT u.id, u.name, u.email,"
        " (SELECT count(*) FROM orders o WHERE o.user_id = u.id) AS orders"
        " FROM users u WHERE u.id = $1",
        user_id,
    )


def no_such_user(user_id: int) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no user with id {user_id}")


@router.get("/users/{user_id}", responses={404: {}, 503: {}})
async def get_user(user_id: UserId, db: ReadyDatabase) -> UserOut:
    """A row through a direct driver connection from the lifespan pool (right)."""
    async with connection(db) as conn:
        row = await fetch_user(conn, user_id)
        trips = conn.round_trips
    if row is None:
        raise no_such_user(user_id)
    return UserOut(**row, via="lifespan pool", round_trips=trips, connections_opened=0)


@router.get("/per-request-pool/users/{user_id}", responses={404: {}, 503: {}})
async def get_user_pool_per_request(user_id: UserId, conn: PerRequestConn) -> UserOut:
    """The same row through the guide's dependency: a new pool for this one request."""
    try:
        row = await fetch_user(conn, user_id)
    except CONNECTION_LOST as exc:
        raise unavailable(exc) from None
    if row is None:
        raise no_such_user(user_id)
    opened = int(getattr(conn, "opened", 0))
    return UserOut(
        **row, via="pool per request", round_trips=conn.round_trips, connections_opened=opened
    )


@router.get("/orm/users/{user_id}", responses={404: {}, 503: {}})
async def get_user_orm(user_id: UserId, session: SessionDep) -> UserOut:
    """The row through the SQLAlchemy ``AsyncSession`` dependency."""
    try:
        user = await session.get(User, user_id)
        if user is None:
            raise no_such_user(user_id)
        orders = await session.scalar(
            select(func.count()).select_from(Order).where(Order.user_id == user_id)
        )
    except (sa_exc.TimeoutError, *CONNECTION_LOST) as exc:
        raise unavailable(exc) from None
    return UserOut(
        id=user.id,
        name=user.name,
        email=user.email,
        orders=orders or 0,
        via="AsyncSession dependency",
        round_trips=int(session.info.get("queries", 0)),
        connections_opened=0,
    )


class NewUser(BaseModel):
    """``POST /db/orm/users`` body."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str = Field(min_length=1, max_length=80)
    email: str = Field(min_length=3, max_length=120, pattern=r"^[^@\s]+@[^@\s]+$")


class CreatedUser(BaseModel):
    id: int
    name: str
    email: str
    committed: bool = Field(description="True: the dependency committed after the handler.")


@router.post("/orm/users", status_code=201, responses={409: {}, 503: {}})
async def create_user_orm(body: NewUser, session: SessionDep) -> CreatedUser:
    """Insert through the session; a duplicate email is a 409 and the session rolls back.

    The handler only adds and flushes. The dependency commits once the handler returns,
    or rolls back when it raises (the 409 below passes through it on its way out).
    """
    user = User(name=body.name, email=body.email)
    session.add(user)
    try:
        await session.flush()
    except sa_exc.IntegrityError:
        raise HTTPException(
            status.HTTP_409_CONFLICT, detail=f"email {body.email!r} is taken: rolled back"
        ) from None
    except (sa_exc.TimeoutError, *CONNECTION_LOST) as exc:
        raise unavailable(exc) from None
    return CreatedUser(id=user.id, name=user.name, email=user.email, committed=True)


# -- dashboard: several queries in parallel ---------------------------------------------------

DashboardMode = Literal["pool", "one_connection", "one_session"]

#: the dashboard's queries; each also waits ``latency`` in the database ($1)
DASHBOARD_QUERIES: dict[str, str] = {
    "users": "SELECT count(*) FROM users",
    "paid_cents": "SELECT coalesce(sum(amount_cents), 0) FROM orders WHERE status = 'paid'",
    "posts": "SELECT count(*) FROM posts",
    "comments": "SELECT count(*) FROM comments",
    "top_customer": "SELECT user_id FROM orders GROUP BY user_id"
    " ORDER BY sum(amount_cents) DESC, user_id LIMIT 1",
}


def slow(sql: str, sleep_fn: str) -> str:
    """``sql`` as one value, after the database has slept ``$1`` seconds."""
    return f"WITH pause AS (SELECT {sleep_fn}($1)) SELECT ({sql}) AS value FROM pause"


def clocked(sql: str, sleep_fn: str, clock_sql: str) -> str:
    """:func:`slow`, and the database's own clock when it began and when it had the value.

    That is when the query really ran, not when it was handed to the driver: on one
    connection the driver queues it (aiosqlite) or waits for a lock (SQLAlchemy), and
    the time it spends queued is not the database working.
    """
    return (
        f"WITH pause AS (SELECT {clock_sql} AS ran, {sleep_fn}($1) AS slept)"
        f" SELECT ({sql}) AS value, ran, {clock_sql} AS done FROM pause"
    )


class QueryRecord(BaseModel):
    name: str
    start_ms: float = Field(description="When the handler called the driver.")
    end_ms: float = Field(description="When the driver's answer (or error) came back.")
    ran_ms: float | None = Field(
        description="When the database began the query, by its own clock (None: it never ran)."
    )
    done_ms: float | None = Field(description="When the database had the query's value.")
    value: int | None
    error: str | None = Field(description="What the driver raised, as text.")


class DashboardOut(BaseModel):
    mode: DashboardMode
    effective: DashboardMode = Field(description="What ran (blocking mode: one connection).")
    backend: str
    latency_ms: float
    wall_ms: float
    queries: list[QueryRecord]
    ok: int
    failed: int
    overlapped: bool = Field(description="True: some queries ran in the database at the same time.")
    error: str | None = Field(description="The first error the driver raised, if any.")
    note: str


class Clock:
    """Milliseconds since the dashboard began, on this process's clock or the database's."""

    def __init__(self) -> None:
        self.began = time.perf_counter()
        self.began_epoch = time.time()

    def ms(self) -> float:
        return round((time.perf_counter() - self.began) * 1000.0, 3)

    def at_ms(self, seconds: float, dialect: str) -> float:
        """A reading of a connection's ``clock_sql``: SQLite's is ``time.perf_counter()``
        in its thread (this process's clock); PostgreSQL's is its server's wall clock."""
        began = self.began if dialect == "sqlite" else self.began_epoch
        return round((float(seconds) - began) * 1000.0, 3)


def within(value: float | None, low: float, high: float) -> float | None:
    """``value`` kept inside ``low..high`` (a database clock a little off cannot draw a query
    outside its own call)."""
    return None if value is None else min(high, max(low, value))


async def timed(
    clock: Clock,
    name: str,
    query: Awaitable[Mapping[str, Any] | None],
    records: list[QueryRecord],
    dialect: str,
) -> None:
    """Run one dashboard query and record when it ran and what it gave (or raised)."""
    start = clock.ms()
    value: int | None = None
    error: str | None = None
    ran = done = None
    try:
        row = await query
        if row is not None:
            value = None if row["value"] is None else int(row["value"])
            ran, done = clock.at_ms(row["ran"], dialect), clock.at_ms(row["done"], dialect)
    except Exception as exc:  # the lesson: the driver's own error, shown as data
        error = describe(exc)
    end = clock.ms()
    ran = within(ran, start, end)
    records.append(
        QueryRecord(
            name=name,
            start_ms=start,
            end_ms=end,
            ran_ms=ran,
            done_ms=None if ran is None else within(done, ran, end),
            value=value,
            error=error,
        )
    )


def overlapped(records: list[QueryRecord]) -> bool:
    """Did any two queries run in the database at the same moment (by its clock)?"""
    spans = sorted(
        (r.ran_ms, r.done_ms) for r in records if r.ran_ms is not None and r.done_ms is not None
    )
    return any(later[0] < earlier[1] for earlier, later in itertools.pairwise(spans))


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


def orm_sql(sql: str) -> str:
    """``$1`` placeholders as SQLAlchemy's ``:p1``."""
    return re.sub(r"\$(\d+)", r":p\1", sql)


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


# -- batch insert vs row by row -----------------------------------------------------------------

InsertMethod = Literal["batch", "row_by_row"]


class BatchIn(BaseModel):
    """``POST /db/batch-insert`` body."""

    model_config = ConfigDict(extra="forbid", strict=True)
    rows: JsonInt = Field(500, ge=1, le=5000, description="Rows to insert (1 to 5000).")
    method: InsertMethod = "batch"


class BatchOut(BaseModel):
    method: InsertMethod
    effective: InsertMethod
    backend: str
    rows: int
    ms: float
    round_trips: int = Field(description="Awaited driver calls, BEGIN and COMMIT included.")
    rows_per_s: float
    note: str


INSERT_EVENT = "INSERT INTO events (batch, seq, payload) VALUES ($1, $2, $3)"


async def insert_batch(conn: Conn, rows: list[tuple[str, int, str]]) -> None:
    """Right: every row in one ``executemany``, in one transaction."""
    async with conn.transaction():
        await conn.executemany(INSERT_EVENT, rows)


async def insert_row_by_row(conn: Conn, rows: list[tuple[str, int, str]]) -> None:
    """The pitfall: one awaited INSERT per row (a round trip each), in one transaction."""
    async with conn.transaction():
        for row in rows:
            await conn.execute(INSERT_EVENT, *row)


INSERTS = {"batch": insert_batch, "row_by_row": insert_row_by_row}


@router.post("/batch-insert", responses={503: {}})
async def batch_insert(body: BatchIn, db: ReadyDatabase, blocking: BlockingMode) -> BatchOut:
    """Insert ``rows`` events: in one batch, or row by row (blocking mode forces the latter)."""
    effective: InsertMethod = "row_by_row" if blocking else body.method
    batch = uuid.uuid4().hex[:12]
    rows = [(batch, i, f"event {i} of batch {batch}") for i in range(body.rows)]
    async with connection(db) as conn:
        began = time.perf_counter()
        await INSERTS[effective](conn, rows)
        elapsed = time.perf_counter() - began
        trips = conn.round_trips
        # Keep the scratch table bounded (not timed).
        await conn.execute(
            "DELETE FROM events WHERE id <= (SELECT max(id) FROM events) - $1", EVENTS_KEPT
        )
    assert db.target is not None
    ms = round(elapsed * 1000.0, 3)
    if effective == "batch":
        note = f"{body.rows} rows in one executemany: {trips} round trips in all."
    else:
        note = f"{body.rows} rows, one awaited INSERT each: {trips} round trips."
    return BatchOut(
        method=body.method,
        effective=effective,
        backend=db.target.backend,
        rows=body.rows,
        ms=ms,
        round_trips=trips,
        rows_per_s=round(body.rows / elapsed, 1) if elapsed > 0 else 0.0,
        note=note,
    )


# -- prefetch vs N+1 ------------------------------------------------------------------------------

LoadStrategy = Literal["prefetch", "n_plus_one"]


class CommentOut(BaseModel):
    id: int
    body: str


class PostOut(BaseModel):
    id: int
    title: str
    author: str
    comments: list[CommentOut]


class PostsOut(BaseModel):
    strategy: LoadStrategy
    effective: LoadStrategy
    backend: str
    posts: list[PostOut]
    queries: int
    ms: float
    note: str


async def posts_prefetch(conn: Conn, limit: int) -> list[PostOut]:
    """Right: the posts with their authors in one JOIN, all their comments in one IN query."""
    posts = await conn.fetch(
        "SELECT p.id, p.title, u.name AS author FROM posts p"
        " JOIN users u ON u.id = p.user_id ORDER BY p.id LIMIT $1",
        limit,
    )
    ids = [post["id"] for post in posts]
    comments = await conn.fetch(
        f"SELECT id, post_id, body FROM comments WHERE post_id {conn.in_list('$1')} ORDER BY id",
        conn.list_param(ids),
    )
    by_post: dict[int, list[CommentOut]] = {i: [] for i in ids}
    for c in comments:
        by_post[c["post_id"]].append(CommentOut(id=c["id"], body=c["body"]))
    return [PostOut(**post, comments=by_post[post["id"]]) for post in posts]


async def posts_n_plus_one(conn: Conn, limit: int) -> list[PostOut]:
    """The pitfall: one query for the posts, then two more for every post."""
    posts = await conn.fetch("SELECT id, title, user_id FROM posts ORDER BY id LIMIT $1", limit)
    out = []
    for post in posts:
        author = await conn.fetchval("SELECT name FROM users WHERE id = $1", post["user_id"])
        comments = await conn.fetch(
            "SELECT id, body FROM comments WHERE post_id = $1 ORDER BY id", post["id"]
        )
        out.append(
            PostOut(
                id=post["id"],
                title=post["title"],
                author=author,
                comments=[CommentOut(**c) for c in comments],
            )
        )
    return out


LOADERS = {"prefetch": posts_prefetch, "n_plus_one": posts_n_plus_one}


@router.get("/posts", responses={503: {}})
async def list_posts(
    request: Request,
    db: ReadyDatabase,
    blocking: BlockingMode,
    limit: Annotated[int, Query(ge=1, le=500, description="Posts to load (1 to 500).")] = 50,
    strategy: Annotated[LoadStrategy, Query(description="prefetch or n_plus_one.")] = "prefetch",
) -> PostsOut:
    """Posts with their authors and comments: prefetched, or N+1 (blocking mode)."""
    effective: LoadStrategy = "n_plus_one" if blocking else strategy

    async def load() -> tuple[list[PostOut], int, float]:
        async with connection(db) as conn:
            began = time.perf_counter()
            posts = await LOADERS[effective](conn, limit)
            return posts, conn.round_trips, time.perf_counter() - began

    posts, queries, elapsed = await unless_disconnected(request, load())
    assert db.target is not None
    if effective == "prefetch":
        note = f"{len(posts)} posts in {queries} queries: a JOIN and one IN list."
    else:
        note = f"{len(posts)} posts in {queries} queries: 1 for the posts + 2 per post."
    return PostsOut(
        strategy=strategy,
        effective=effective,
        backend=db.target.backend,
        posts=posts,
        queries=queries,
        ms=round(elapsed * 1000.0, 3),
        note=note,
    )


# -- pool exhaustion ------------------------------------------------------------------------------


class HoldOut(BaseModel):
    waited_ms: float = Field(description="Time spent waiting for a free connection.")
    held_ms: float
    pool: PoolOut = Field(description="The gauge right after this request got its connection.")


@router.get("/hold", responses={503: {"description": "No free connection in time."}})
async def hold_connection(
    request: Request,
    db: ReadyDatabase,
    blocking: BlockingMode,
    seconds: Annotated[
        float, Query(ge=0, le=5, description="How long the query holds its connection.")
    ] = 0.5,
    timeout_s: Annotated[
        float, Query(gt=0, le=10, description="Acquire timeout (s); blocking mode: none.")
    ] = 1.0,
) -> HoldOut:
    """Take a connection and keep it ``seconds`` in a query. More of these than the pool
    holds at once: the excess waits, and past ``timeout_s`` answers 503 instead of hanging.
    """

    async def hold() -> HoldOut:
        async with connection(db, None if blocking else timeout_s) as conn:
            gauge = pool_out(cast(Any, db.pool).stats(), db.acquire_timeout_s)
            began = time.perf_counter()
            await conn.execute(f"SELECT {conn.sleep_fn}($1)", seconds)
            held = time.perf_counter() - began
            return HoldOut(
                waited_ms=round(conn.waited_s * 1000.0, 3),
                held_ms=round(held * 1000.0, 3),
                pool=gauge,
            )

    return await unless_disconnected(request, hold())


# -- blocking: sync sqlite3 inside async def -------------------------------------------------


class ReportOut(BaseModel):
    orders: int
    total_cents: int
    driver: str = Field(description="What ran the query.")
    ms: float


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
