"""Schema creation and seeding, through a pooled connection
(:class:`~server.patterns.db.conn.Conn`) on either backend."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.schema import CreateIndex, CreateTable

from server.patterns.db.conn import Conn
from server.patterns.db.tables import Base

#: rows seeded per table: enough for N+1 queries to be visible
SEED_ROWS = {"users": 200, "orders": 2000, "posts": 500, "comments": 3000}
#: rows per executemany while seeding (progress is reported between chunks)
CHUNK = 500
#: the batch-insert demo keeps at most this many rows in ``events``
EVENTS_KEPT = 20_000

_FIRST = (
    "Ada",
    "Alan",
    "Grace",
    "Edsger",
    "Barbara",
    "Donald",
    "Frances",
    "Ken",
    "Guido",
    "Yukihiro",
)
_LAST = (
    "Lovelace",
    "Turing",
    "Hopper",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Allen",
    "Thompson",
    "Rossum",
)
_STATUS = ("pending", "paid", "shipped", "refunded")


@dataclass(frozen=True)
class SeedReport:
    """What seeding found or did."""

    rows: dict[str, int]
    seeded_now: bool
    took_ms: float


def ddl(conn: Conn) -> list[str]:
    """``CREATE TABLE/INDEX IF NOT EXISTS`` for every table, in this connection's dialect."""
    dialect = (
        postgresql.dialect()  # type: ignore[no-untyped-call]
        if conn.dialect == "postgresql"
        else sqlite.dialect()
    )
    statements = []
    for table in Base.metadata.sorted_tables:
        statements.append(str(CreateTable(table, if_not_exists=True).compile(dialect=dialect)))
        for index in table.indexes:
            create = CreateIndex(index, if_not_exists=True)
            statements.append(str(create.compile(dialect=dialect)))
    return statements


async def create_schema(conn: Conn) -> None:
    """Create the sample tables if they are missing."""
    async with conn.transaction():
        for statement in ddl(conn):
            await conn.execute(statement)


async def row_counts(conn: Conn) -> dict[str, int]:
    """Rows in each seeded table."""
    return {table: int(await conn.fetchval(f"SELECT count(*) FROM {table}")) for table in SEED_ROWS}


def sample_rows(rng: random.Random) -> dict[str, list[tuple[Any, ...]]]:
    """The seed data, the same on every run (ids 1..n in each table)."""
    n_users, n_posts = SEED_ROWS["users"], SEED_ROWS["posts"]
    users: list[tuple[Any, ...]] = [
        (i, f"{rng.choice(_FIRST)} {rng.choice(_LAST)}", f"user{i}@example.com")
        for i in range(1, n_users + 1)
    ]
    orders: list[tuple[Any, ...]] = [
        (i, rng.randint(1, n_users), rng.randint(100, 50_000), rng.choice(_STATUS))
        for i in range(1, SEED_ROWS["orders"] + 1)
    ]
    posts: list[tuple[Any, ...]] = [
        (i, rng.randint(1, n_users), f"Post {i}: notes on async {rng.choice(_LAST).lower()}")
        for i in range(1, n_posts + 1)
    ]
    comments: list[tuple[Any, ...]] = [
        (i, rng.randint(1, n_posts), rng.randint(1, n_users), f"comment {i}")
        for i in range(1, SEED_ROWS["comments"] + 1)
    ]
    return {"users": users, "orders": orders, "posts": posts, "comments": comments}


_INSERT = {
    "users": "INSERT INTO users (id, name, email) VALUES ($1, $2, $3)",
    "orders": "INSERT INTO orders (id, user_id, amount_cents, status) VALUES ($1, $2, $3, $4)",
    "posts": "INSERT INTO posts (id, user_id, title) VALUES ($1, $2, $3)",
    "comments": "INSERT INTO comments (id, post_id, user_id, body) VALUES ($1, $2, $3, $4)",
}


async def seed(conn: Conn, progress: Callable[[float], None] | None = None) -> SeedReport:
    """Create the schema and fill empty tables with the sample data (in one transaction).

    Tables that already hold rows are left alone: a restart does not seed twice.
    """
    began = time.perf_counter()
    await create_schema(conn)
    counts = await row_counts(conn)
    if counts["users"] > 0:
        return SeedReport(counts, False, round((time.perf_counter() - began) * 1000, 1))
    data = sample_rows(random.Random(6))
    total = sum(len(rows) for rows in data.values())
    done = 0
    async with conn.transaction():
        for table, rows in data.items():
            for start in range(0, len(rows), CHUNK):
                chunk = rows[start : start + CHUNK]
                await conn.executemany(_INSERT[table], chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done / total)
        if conn.dialect == "postgresql":
            # Explicit ids leave the serial sequences behind: move them past the rows.
            for table in (*SEED_ROWS, "events"):
                await conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"coalesce((SELECT max(id) FROM {table}), 0) + 1, false)"
                )
    counts = await row_counts(conn)
    return SeedReport(counts, True, round((time.perf_counter() - began) * 1000, 1))
