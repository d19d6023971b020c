"""The dashboard's queries, made slow in the database, and when each one really ran.

Each query waits ``$1`` seconds in the database (:func:`slow`), and :func:`clocked` also
reads the database's own clock when it began and when it had the value: that is when the
query ran, not when the driver was handed it. :func:`timed` records both on one
:class:`Clock`, so the pane can draw every query on one time axis.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Awaitable, Mapping
from typing import Any

from server.errors import describe
from server.patterns.db.models import QueryRecord

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


def orm_sql(sql: str) -> str:
    """``$1`` placeholders as SQLAlchemy's ``:p1``."""
    return re.sub(r"\$(\d+)", r":p\1", sql)
