"""The ``/db`` API's request and response models (the tables are in :mod:`.tables`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from server.json_types import JsonInt
from server.patterns.db.pool import PoolStats

DashboardMode = Literal["pool", "one_connection", "one_session"]
InsertMethod = Literal["batch", "row_by_row"]
LoadStrategy = Literal["prefetch", "n_plus_one"]


# -- status ---------------------------------------------------------------------------------


class PoolOut(PoolStats):
    """The pool gauge."""

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


# -- one row ------------------------------------------------------------------------------


class UserOut(BaseModel):
    id: int
    name: str
    email: str
    orders: int = Field(description="How many orders the user has.")
    via: str = Field(description="Which way the connection was obtained.")
    round_trips: int
    connections_opened: int = Field(description="New connections this request opened.")


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


# -- dashboard ------------------------------------------------------------------------------


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


# -- batch insert and posts ----------------------------------------------------------------


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


# -- pool exhaustion and the slow report ---------------------------------------------------


class HoldOut(BaseModel):
    waited_ms: float = Field(description="Time spent waiting for a free connection.")
    held_ms: float
    pool: PoolOut = Field(description="The gauge right after this request got its connection.")


class ReportOut(BaseModel):
    orders: int
    total_cents: int
    driver: str = Field(description="What ran the query.")
    ms: float
