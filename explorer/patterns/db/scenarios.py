"""The database pattern's scenarios, on whatever backend ``/db/status`` says is live.

With no database URL (the report's default) that is the embedded SQLite file through
aiosqlite, seeded in the background when the server starts: every form first waits
(unmeasured) until ``/db/status`` says ``ready``.

- ``slow-report``: concurrent slow report queries. Right, on pooled connections (aiosqlite
  runs each in its own thread); as the pitfall, the standard library's sync ``sqlite3``
  inside ``async def``: the loop stalls for every query, and the stall names the line.
- ``dashboard``: five queries with ``asyncio.gather``. Right, one pooled connection each;
  as the pitfall, all on ONE connection: the queries run one after another.
- ``posts``: posts with their authors and comments. Right, prefetched (a JOIN and one IN
  query); as the pitfall, N+1 (two more queries per post).
"""

from __future__ import annotations

import time
from typing import Any

from explorer.tools.report.scenario import (
    Outcome,
    Scenario,
    ScenarioError,
    ScenarioRun,
    fetch_json,
    gather_all,
    poll_until,
)

#: how long the server may take to connect and seed (SQLite: well under a second)
READY_WITHIN_S = 20.0
GAVE_UP = {"unavailable", "closed"}


async def database_ready(run: ScenarioRun) -> Outcome:
    """The warm-up: wait until ``/db/status`` says the database is ready."""
    requests = 0

    async def read_status() -> dict[str, Any]:
        nonlocal requests
        requests += 1
        return await fetch_json(run, "/db/status")

    last = await poll_until(
        read_status,
        lambda status: status["state"] == "ready" or status["state"] in GAVE_UP,
        within_s=READY_WITHIN_S,
        every_s=0.05,
        late=lambda status: (
            f"database still {status['state']} after {READY_WITHIN_S:g} s "
            f"(seed {status['seed_progress']:.0%})"
        ),
    )
    if last["state"] in GAVE_UP:
        raise ScenarioError(f"database {last['state']}: {last['error']}")
    return Outcome(requests, f"{last['backend']} via {last['driver']}")


REPORTS = 4
REPORT_S = 0.25


async def db_slow_report(run: ScenarioRun) -> Outcome:
    """4 concurrent report queries of 250 ms each."""
    url = f"/db/slow-report?seconds={REPORT_S}"

    async def answered_after() -> tuple[dict[str, Any], float]:
        started = time.perf_counter()
        body = await fetch_json(run, url)
        return body, time.perf_counter() - started

    answers = await gather_all(*(answered_after() for _ in range(REPORTS)))
    drivers = {body["driver"] for body, _ in answers}
    slowest_ms = max(waited for _, waited in answers) * 1000
    note = (
        f"{REPORTS} × {REPORT_S * 1000:.0f} ms queries by {', '.join(sorted(drivers))}; "
        f"slowest answer {slowest_ms:.0f} ms"
    )
    extra = {"queries": REPORTS, "query_s": REPORT_S, "slowest_ms": round(slowest_ms, 1)}
    return Outcome(len(answers), note, extra)


DASHBOARDS = 3
DASHBOARD_LATENCY_MS = 100


async def db_dashboard(run: ScenarioRun) -> Outcome:
    """3 dashboards in a row, each 5 gathered queries of 100 ms."""
    walls: list[float] = []
    effective = backend = ""
    queries = 0
    overlapped: list[bool] = []
    for _ in range(DASHBOARDS):
        params = {"mode": "pool", "latency_ms": str(DASHBOARD_LATENCY_MS)}
        body = await fetch_json(run, "/db/dashboard", params)
        if body["failed"]:
            raise ScenarioError(f"dashboard: {body['failed']} queries failed: {body['error']}")
        walls.append(body["wall_ms"])
        # did the queries run in the database at the same time (by its own clock)?
        overlapped.append(bool(body["overlapped"]))
        effective, backend = body["effective"], body["backend"]
        queries = len(body["queries"])
    where = "one pooled connection each" if effective == "pool" else "all on one connection"
    fastest, slowest = f"{min(walls):.0f}", f"{max(walls):.0f}"
    span = fastest if fastest == slowest else f"{fastest}-{slowest}"
    note = (
        f"{queries} × {DASHBOARD_LATENCY_MS} ms queries, {where} ({backend}): "
        f"{span} ms per dashboard"
    )
    extra = {
        "effective": effective,
        "queries": queries,
        "query_ms": DASHBOARD_LATENCY_MS,
        "dashboard_ms": [round(w, 1) for w in walls],
        "overlapped": overlapped,
    }
    return Outcome(DASHBOARDS, note, extra)


POST_PAGES = 5
POSTS = 100


async def db_posts(run: ScenarioRun) -> Outcome:
    """5 pages of 100 posts, each with its author and comments."""
    queries: list[int] = []
    effective = ""
    posts = comments = 0
    for _ in range(POST_PAGES):
        params = {"limit": str(POSTS), "strategy": "prefetch"}
        body = await fetch_json(run, "/db/posts", params)
        queries.append(body["queries"])
        effective = body["effective"]
        posts = len(body["posts"])
        comments = sum(len(post["comments"]) for post in body["posts"])
    how = "prefetched" if effective == "prefetch" else "N+1"
    note = (
        f"{posts} posts, {comments:,} comments, {how}: "
        f"{max(queries)} queries per page ({sum(queries):,} in all)"
    )
    extra = {"effective": effective, "posts": posts, "queries_per_page": max(queries)}
    return Outcome(POST_PAGES, note, extra)


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "slow-report",
        "pooled connection",
        "sync sqlite3 in async def",
        db_slow_report,
        database_ready,
    ),
    Scenario(
        "dashboard",
        "gather on the pool",
        "gather on one connection",
        db_dashboard,
        database_ready,
    ),
    Scenario("posts", "prefetch", "N+1 queries", db_posts, database_ready),
)
