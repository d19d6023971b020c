"""The lifespan-owned database: which backend is live, its pool, its ORM engine, its seed.

:meth:`Database.start` returns at once and connects in a task, so the app serves while a
PostgreSQL server is being reached (or found unreachable). The outcome is one of:

- ``ready`` on the URL given (or the default SQLite file);
- ``ready`` on the SQLite file after the PostgreSQL URL failed: ``fallback_reason`` says
  why (wrong URL, refused, timed out, bad credentials, no such database);
- ``unavailable`` when even SQLite could not be opened: ``error`` says why, and every
  route that needs the database answers 503 with it.

Nothing here raises into the app: the explorer keeps running whatever the database does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import ORMExecuteState, Session

from server.errors import describe
from server.patterns.db.pool import CONNECT_TIMEOUT_S, GaugedPool, PgPool, PoolStats, SqlitePool
from server.patterns.db.seed import SeedReport, seed
from server.patterns.db.urls import (
    SQLITE_FILE,
    BadDatabaseUrl,
    Target,
    default_target,
    mask_password,
    parse_url,
)

log = logging.getLogger("fastasync.db")

State = Literal["connecting", "seeding", "ready", "unavailable", "closed"]

#: connections in the lifespan pool (the direct-driver one)
POOL_SIZE = 10
#: connections in the ORM engine's pool
ORM_POOL_SIZE = 5
#: how long a request waits for a free connection before it gets a 503
ACQUIRE_TIMEOUT_S = 2.0
#: ``application_name`` of every PostgreSQL connection this app opens
APP_NAME = "fastasync-explorer"


@dataclass
class SessionCounts:
    """Outcomes of the AsyncSession dependency, so its commits and rollbacks can be seen."""

    commits: int = 0
    rollbacks: int = 0


@dataclass
class Database:
    """Everything the ``db`` routes use, opened and closed by the router's lifespan."""

    data_dir: Path
    url: str | None = None
    pool_size: int = POOL_SIZE
    acquire_timeout_s: float = ACQUIRE_TIMEOUT_S
    state: State = "connecting"
    target: Target | None = None
    fallback_reason: str | None = None
    error: str | None = None
    seed_progress: float = 0.0
    seed_report: SeedReport | None = None
    pool: GaugedPool | None = None
    engine: AsyncEngine | None = None
    sessions: async_sessionmaker[AsyncSession] | None = None
    session_counts: SessionCounts = field(default_factory=SessionCounts)
    #: the SQLite file the sync-sqlite3 pitfall reads (seeded even when PostgreSQL is live)
    sqlite_path: Path | None = None
    sqlite_ready: bool = False
    #: connections the pool-per-request pitfall opened
    per_request_opened: int = 0
    _ready: asyncio.Event = field(default_factory=asyncio.Event)
    _opener: asyncio.Task[None] | None = None

    @property
    def requested(self) -> Target | str | None:
        """What was asked for: a parsed target, the raw text of a bad URL, or ``None``."""
        if self.url is None:
            return None
        try:
            return parse_url(self.url)
        except BadDatabaseUrl:
            try:
                return mask_password(self.url)
            except ValueError:
                return "(a URL that cannot be parsed; not shown)"

    @property
    def backend(self) -> str | None:
        return self.target.backend if self.target is not None and self.pool else None

    @property
    def application_name(self) -> str:
        schema = self.target.schema if self.target is not None else None
        return f"{APP_NAME}/{schema}"[:63] if schema else APP_NAME

    # -- life -------------------------------------------------------------------------------

    def start(self) -> None:
        """Connect (and seed) in a task; the state tells how far it got."""
        self.sqlite_path = default_target(self.data_dir).path
        self._opener = asyncio.create_task(self._open(), name="db-open")

    async def wait_ready(self, within_s: float) -> bool:
        """True once the database is ready (or gave up: see ``state``)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), within_s)
        return self.state == "ready"

    async def _open(self) -> None:
        try:
            await self._open_requested()
            if self.target is not None and self.target.backend == "postgresql":
                await self._prepare_sqlite_file()
        except Exception as exc:  # never into the app: the state says what happened
            self.state, self.error = "unavailable", describe(exc)
            log.error("database unavailable: %s", self.error)
        finally:
            self._ready.set()

    async def _open_requested(self) -> None:
        default = default_target(self.data_dir)
        if self.url is None:
            await self._connect(default)
            return
        try:
            target = parse_url(self.url)
            await self._connect(target)
        except Exception as exc:  # a bad URL, refused, timed out, auth, no such db
            await self._discard()
            reason = self._why(exc)
            self.fallback_reason = reason
            log.warning("database URL not usable (%s); falling back to SQLite", reason)
            await self._connect(default)

    def _why(self, exc: BaseException) -> str:
        if isinstance(exc, TimeoutError):
            return f"no answer within {CONNECT_TIMEOUT_S:g} s (TimeoutError)"
        return describe(exc)

    async def _connect(self, target: Target) -> None:
        self.target = target
        self.state = "connecting"
        if target.backend == "postgresql":
            if target.schema:
                await self._create_schema(target)
            settings = self._server_settings(target)
            self.pool = await PgPool.open(
                target.dsn, self.pool_size, self.acquire_timeout_s, settings
            )
            self.engine = create_async_engine(
                target.sqlalchemy_url,
                pool_size=ORM_POOL_SIZE,
                max_overflow=0,
                pool_timeout=self.acquire_timeout_s,
                connect_args={"server_settings": settings, "timeout": CONNECT_TIMEOUT_S},
            )
        else:
            path = target.path
            assert path is not None
            self.pool = await SqlitePool.open(path, self.pool_size, self.acquire_timeout_s)
            self.sqlite_path = path
            self.engine = create_async_engine(
                target.sqlalchemy_url,
                pool_size=ORM_POOL_SIZE,
                max_overflow=0,
                pool_timeout=self.acquire_timeout_s,
                connect_args={"timeout": SQLITE_TIMEOUT_S},
            )
            install_sqlite_hooks(self.engine)
        self.sessions = async_sessionmaker(
            self.engine, expire_on_commit=False, sync_session_class=CountingSession
        )
        self.state = "seeding"
        async with self.pool.acquire(None) as conn:
            self.seed_report = await seed(conn, self._progress)
        self.seed_progress = 1.0
        if target.backend == "sqlite":
            self.sqlite_ready = True
        self.state = "ready"
        report = self.seed_report
        log.info(
            "database ready: %s (%s in %.0f ms)",
            target.display,
            "seeded" if report.seeded_now else "already seeded",
            report.took_ms,
        )

    def _progress(self, fraction: float) -> None:
        self.seed_progress = round(fraction, 3)

    def _server_settings(self, target: Target) -> dict[str, str]:
        settings = {"application_name": self.application_name}
        if target.schema:
            settings["search_path"] = target.schema
        return settings

    async def _create_schema(self, target: Target) -> None:
        import asyncpg  # only needed on PostgreSQL

        connection = await asyncpg.connect(
            target.dsn, timeout=CONNECT_TIMEOUT_S, server_settings={"application_name": APP_NAME}
        )
        try:
            await connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{target.schema}"')
        finally:
            await connection.close()

    async def _prepare_sqlite_file(self) -> None:
        """Seed the SQLite file too, so the sync-sqlite3 pitfall has data on any backend."""
        assert self.sqlite_path is not None
        pool = await SqlitePool.open(self.sqlite_path, 1, self.acquire_timeout_s)
        try:
            async with pool.acquire(None) as conn:
                await seed(conn)
            self.sqlite_ready = True
        finally:
            await pool.close()

    async def _discard(self) -> None:
        """Drop a half-opened backend."""
        pool, engine = self.pool, self.engine
        self.pool, self.engine, self.sessions, self.target = None, None, None, None
        if pool is not None:
            await pool.close()
        if engine is not None:
            await engine.dispose()

    async def close(self) -> None:
        """Stop connecting, close the pool and the engine. Prompt even mid-query."""
        if self._opener is not None and not self._opener.done():
            self._opener.cancel()
            await asyncio.gather(self._opener, return_exceptions=True)
        self.state = "closed"
        await self._discard()

    # -- reading ----------------------------------------------------------------------------

    def pool_stats(self) -> PoolStats | None:
        return self.pool.stats() if self.pool is not None else None


class CountingSession(Session):
    """A Session that counts the statements it sends, in ``session.info["queries"]``."""


@event.listens_for(CountingSession, "do_orm_execute")
def _count_statement(state: ORMExecuteState) -> None:
    info = state.session.info
    info["queries"] = info.get("queries", 0) + 1


#: aiosqlite's sqlite3.connect timeout (s): how long a writer waits for a lock
SQLITE_TIMEOUT_S = 5.0


def install_sqlite_hooks(engine: AsyncEngine) -> None:
    """Give the ORM's SQLite connections the same ``sleep_s`` and ``clock_s`` functions
    and pragmas."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: object, _: object) -> None:
        # SQLAlchemy's aiosqlite adapter: create_function runs on the connection's thread.
        dbapi_connection.create_function("sleep_s", 1, time.sleep)  # type: ignore[attr-defined]
        dbapi_connection.create_function("clock_s", 0, time.perf_counter)  # type: ignore[attr-defined]
        cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_TIMEOUT_S * 1000)}")
        cursor.close()


__all__ = ["SQLITE_FILE", "Database"]
