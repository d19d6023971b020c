"""The database pane's menu: what each entry runs, what it teaches, and the server code it
shows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from explorer.pane import Teaching
from explorer.patterns.db.client import (
    ACQUIRE_TIMEOUT_S,
    EXHAUST_EXTRA,
    FETCH_REPEATS,
    HOLD_S,
    PAIR_ROUNDS,
    POSTS,
    REPORT_S,
)
from server.patterns.db import router as routes
from server.patterns.db.pool import GaugedPool


@dataclass(frozen=True)
class Action(Teaching):
    """One entry of the pattern menu: what it runs and what it teaches."""

    key: str
    label: str
    code: tuple[Callable[..., Any], ...]


ACTIONS: tuple[Action, ...] = (
    Action(
        "fetch",
        "Fetch a row: pool · session · pool per request",
        (routes.get_user, routes.get_session, routes.per_request_connection),
        lesson=f"{FETCH_REPEATS} requests each way: the lifespan pool, the AsyncSession "
        "dependency (commit or rollback), and a new pool per request (the guide's).",
    ),
    Action(
        "dashboard",
        "Dashboard: gather on the pool",
        (routes.dashboard_on_pool, routes.dashboard_on_one_connection, routes.clocked),
        lesson="Five 50 ms queries with asyncio.gather, one pooled connection each: they run "
        "at once (the bars overlap), and the page takes one query's time.",
        pitfall="Blocking mode: the guide's mistake, gather on ONE connection: each query waits "
        "for the last (SQLite) or the driver refuses (asyncpg).",
    ),
    Action(
        "one_connection",
        "Dashboard: gather on ONE connection (guide)",
        (routes.dashboard_on_one_connection, routes.clocked),
        lesson="The guide's mistake. asyncpg refuses: InterfaceError, another operation is in "
        "progress. aiosqlite accepts and runs them one after another.",
    ),
    Action(
        "one_session",
        "Dashboard: gather on ONE AsyncSession",
        (routes.dashboard_on_one_session, routes.clocked),
        lesson="The same mistake through SQLAlchemy: an error while the session opens its "
        "connection, else the queries wait for each other.",
    ),
    Action(
        "batch",
        "Insert: batch vs row by row",
        (routes.insert_batch, routes.insert_row_by_row),
        lesson=f"The same rows with one executemany, then one INSERT per row ({PAIR_ROUNDS} "
        "rounds each, median time): round trips, and what they cost.",
        pitfall="Blocking mode: both runs insert row by row.",
    ),
    Action(
        "prefetch",
        "Posts with comments: prefetch vs N+1",
        (routes.posts_prefetch, routes.posts_n_plus_one),
        lesson=f"{POSTS} posts with author and comments: a JOIN plus one IN query, then the N+1 "
        f"way (1 query + 2 per post); {PAIR_ROUNDS} rounds each, median time.",
        pitfall="Blocking mode: both runs take the N+1 way.",
    ),
    Action(
        "exhaust",
        "Pool exhaustion: more requests than connections",
        (routes.hold_connection, GaugedPool.acquire),
        lesson=f"Pool size + {EXHAUST_EXTRA} requests each hold a connection {HOLD_S:g} s; with "
        f"a {ACQUIRE_TIMEOUT_S:g} s acquire timeout the excess gets 503 instead of hanging.",
        pitfall="Blocking mode: no acquire timeout, the excess waits its turn (how a pool hangs).",
    ),
    Action(
        "report",
        "Slow report: async driver vs sync sqlite3",
        (routes.report_async, routes.report_sync_sqlite3),
        lesson=f"A {REPORT_S:g} s report query on the pool, and small requests meanwhile: the "
        "loop keeps answering them.",
        pitfall=f"Blocking mode: sync sqlite3 inside async def. The loop stalls {REPORT_S:g} s, "
        "nothing is answered meanwhile; the stall inspector names the line.",
    ),
    Action(
        "notes",
        "Notes: Motor (MongoDB) and Tortoise ORM",
        (),
        lesson="From the guide, shown as snippets only: NOT RUN (no MongoDB server here, and "
        "Tortoise is not installed).",
    ),
)
ACTION_BY_KEY = {action.key: action for action in ACTIONS}
