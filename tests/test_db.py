"""Database patterns over real HTTP, on SQLite (always) and PostgreSQL (when configured).

PostgreSQL tests need ``FASTASYNC_TEST_PG_URL`` (``.ci/run`` exports it). They skip only
when it is unset, and say so; when it is set and the server does not answer, they fail.
The session works in a schema of its own (``fx_test_<random>``), dropped at the end.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import os
import random
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from rich.text import Text
from textual.containers import VerticalScroll
from textual.geometry import Region
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Input, Select

from explorer.app import ExplorerApp
from explorer.patterns.db.pane import ACTIONS, DbPane
from explorer.patterns.db.timeline import displayed_bars
from explorer.registry import PANES
from explorer.widgets.code_view import CodeView
from server.patterns.db import Database
from server.patterns.db.pool import PoolTimeout
from server.patterns.db.service import ORM_POOL_SIZE, POOL_SIZE
from server.runner import ServerHandle
from server.settings import Settings
from server.state import state_of
from tests.conftest import FrozenSnapshot, eventually, set_blocking
from tests.http_checks import clear_422_detail, json_answer, send_raw
from tests.layout import problems_of
from tests.pilots import (
    enter_and_click,
    escape_leaves_the_field,
    live_pane,
    open_frozen,
    quit_with_q,
    settle,
    still_picture,
    told_invalid_input,
)

PG_ENV = "FASTASYNC_TEST_PG_URL"
PG_URL = os.environ.get(PG_ENV) or None
NO_PG = f"{PG_ENV} is not set: the PostgreSQL (asyncpg) tests need a server URL"

#: the ``backend`` fixture's parameters: each test that takes it runs on both
BACKENDS = [
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.skipif(PG_URL is None, reason=NO_PG)),
]

#: the app on port 0 with its database ready, and a client of it
Served = tuple[ServerHandle, httpx.AsyncClient]


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_schema() -> Iterator[str]:
    """A schema of this test session's own on the shared server, dropped at the end."""
    if PG_URL is None:
        pytest.skip(NO_PG)
    name = f"fx_test_{uuid.uuid4().hex[:10]}"

    async def run(sql: str) -> None:
        connection = await asyncpg.connect(PG_URL, timeout=5)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    def on_its_own_loop(sql: str) -> None:
        # The fixture may be set up from inside a running test loop: use a thread's own.
        with concurrent.futures.ThreadPoolExecutor(1) as thread:
            thread.submit(asyncio.run, run(sql)).result()

    on_its_own_loop(f'CREATE SCHEMA "{name}"')
    try:
        yield name
    finally:
        on_its_own_loop(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def pg_app_url(schema: str) -> str:
    assert PG_URL is not None
    return f"{PG_URL}{'&' if '?' in PG_URL else '?'}schema={schema}"


async def pg_admin(sql: str, *args: Any) -> list[asyncpg.Record]:
    """A query on a connection of the test's own (not the app's)."""
    connection = await asyncpg.connect(PG_URL, timeout=5)
    try:
        return list(await connection.fetch(sql, *args))
    finally:
        await connection.close()


async def our_backends(app_name: str) -> list[asyncpg.Record]:
    """The app's connections as PostgreSQL sees them."""
    return await pg_admin(
        "SELECT pid, state, query FROM pg_stat_activity WHERE application_name = $1", app_name
    )


@contextlib.asynccontextmanager
async def db_server(data_dir: Path, database_url: str | None = None) -> AsyncIterator[Served]:
    """The app on port 0, with its database ready (or given up on)."""
    handle = ServerHandle(Settings(port=0, data_dir=data_dir, database_url=database_url))
    await handle.start()
    try:
        await database_of(handle).wait_ready(15)
        async with httpx.AsyncClient(base_url=handle.url, timeout=30.0) as client:
            yield handle, client
    finally:
        await handle.stop()


def database_of(handle: ServerHandle) -> Database:
    database: Database = state_of(handle.app).need(Database)
    return database


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Served]:
    """The app on each backend in turn."""
    url = None
    if request.param == "postgresql":
        url = pg_app_url(request.getfixturevalue("pg_schema"))
    async with db_server(tmp_path / "data", url) as served:
        status = (await served[1].get("/db/status")).json()
        assert status["state"] == "ready", status
        assert status["backend"] == request.param, status
        yield served


@pytest.fixture
async def sqlite_app(tmp_path: Path) -> AsyncIterator[Served]:
    async with db_server(tmp_path / "data") as served:
        yield served


@pytest.fixture
async def pg_app(pg_schema: str, tmp_path: Path) -> AsyncIterator[Served]:
    async with db_server(tmp_path / "data", pg_app_url(pg_schema)) as served:
        status = (await served[1].get("/db/status")).json()
        # The URL is configured: an unreachable server is a failure, not a skip.
        assert status["backend"] == "postgresql", f"PostgreSQL at {PG_ENV} not usable: {status}"
        yield served


async def pool_settles(handle: ServerHandle, within: float = 10.0) -> None:
    """Every connection back in the pool, nobody waiting."""
    pool = database_of(handle).pool
    assert pool is not None

    def whole() -> bool:
        stats = pool.stats()
        return stats.idle == stats.size and stats.in_use == 0 and stats.waiters == 0

    await eventually(whole, within=within)


# -- startup, status, seeding -----------------------------------------------------------------


async def test_default_is_a_seeded_sqlite_file(sqlite_app: Served, tmp_path: Path) -> None:
    _, client = sqlite_app
    status = (await client.get("/db/status")).json()
    assert status["state"] == "ready"
    assert status["backend"] == "sqlite"
    assert status["driver"] == "aiosqlite"
    assert status["orm"] == "sqlite+aiosqlite"
    assert status["requested"] is None
    assert status["fallback_reason"] is None
    assert status["location"] == f"sqlite:///{tmp_path / 'data' / 'explorer.sqlite3'}"
    assert status["rows"] == {"users": 200, "orders": 2000, "posts": 500, "comments": 3000}
    assert status["seeded_now"] is True
    assert status["pool"]["size"] == POOL_SIZE
    assert status["pool"]["idle"] == POOL_SIZE
    assert status["pool"]["in_use"] == status["pool"]["waiters"] == 0
    assert (tmp_path / "data" / "explorer.sqlite3").is_file()


async def test_a_restart_keeps_the_data_and_does_not_seed_again(tmp_path: Path) -> None:
    async with db_server(tmp_path / "data") as (_, client):
        created = await client.post("/db/orm/users", json={"name": "Kept", "email": "k@x.io"})
        assert created.status_code == 201
    async with db_server(tmp_path / "data") as (_, client):
        status = (await client.get("/db/status")).json()
        assert status["seeded_now"] is False
        assert status["rows"]["users"] == 201
        kept = await client.get(f"/db/users/{created.json()['id']}")
        assert kept.json()["name"] == "Kept"


# -- one row: direct, ORM, pool per request ---------------------------------------------------


async def test_fetch_one_user_three_ways(backend: Served) -> None:
    handle, client = backend
    direct = (await client.get("/db/users/3")).json()
    assert direct["id"] == 3
    assert direct["email"] == "user3@example.com"
    assert direct["via"] == "lifespan pool"
    assert direct["round_trips"] == 1
    assert direct["connections_opened"] == 0
    orm = (await client.get("/db/orm/users/3")).json()
    assert orm["via"] == "AsyncSession dependency"
    assert orm["round_trips"] == 2  # session.get, then the count
    per_request = (await client.get("/db/per-request-pool/users/3")).json()
    assert per_request["via"] == "pool per request"
    fields = ("id", "name", "email", "orders")
    assert {k: orm[k] for k in fields} == {k: direct[k] for k in fields}
    assert {k: per_request[k] for k in fields} == {k: direct[k] for k in fields}
    assert direct["orders"] > 0
    # The guide's dependency: asyncpg.create_pool() opens ten connections per request.
    backend_name = database_of(handle).backend
    assert per_request["connections_opened"] == (10 if backend_name == "postgresql" else 1)
    status = (await client.get("/db/status")).json()
    assert status["per_request_opened"] == per_request["connections_opened"]
    assert status["orm_pool"]["commits"] == 1


async def test_unknown_ids_are_404(backend: Served) -> None:
    _, client = backend
    for path in ("/db/users/9999", "/db/orm/users/9999", "/db/per-request-pool/users/9999"):
        response = await client.get(path)
        assert response.status_code == 404, path
        assert response.json() == {"detail": "no user with id 9999"}


async def test_the_session_dependency_commits_or_rolls_back(backend: Served) -> None:
    _, client = backend
    email = f"new-{uuid.uuid4().hex[:8]}@example.com"
    before = (await client.get("/db/status")).json()["orm_pool"]
    created = await client.post("/db/orm/users", json={"name": "New", "email": email})
    assert created.status_code == 201, created.text
    assert created.json()["committed"] is True
    user_id = created.json()["id"]
    # Committed: another connection (the direct pool) sees the row.
    assert (await client.get(f"/db/users/{user_id}")).json()["email"] == email

    duplicate = await client.post("/db/orm/users", json={"name": "Again", "email": email})
    assert duplicate.status_code == 409
    assert duplicate.json()["detail"] == f"email {email!r} is taken: rolled back"
    after = (await client.get("/db/status")).json()["orm_pool"]
    assert after["commits"] == before["commits"] + 1
    assert after["rollbacks"] == before["rollbacks"] + 1
    assert after["checked_out"] == 0
    # Rolled back: no second row, and the session's connection works for the next request.
    assert (await client.get(f"/db/orm/users/{user_id}")).json()["name"] == "New"


# -- dashboard: gather on the pool vs on one connection ---------------------------------------


async def test_dashboard_overlaps_on_the_pool(backend: Served) -> None:
    handle, client = backend
    report = await json_answer(client, "GET", "/db/dashboard", latency_ms=200)
    assert report["effective"] == "pool"
    assert report["ok"] == 5
    assert report["failed"] == 0
    values = {q["name"]: q["value"] for q in report["queries"]}
    assert values["users"] >= 200
    assert values["posts"] == 500
    assert values["comments"] == 3000
    # Five queries of 200 ms, all at once: well under their 1,000 ms sum.
    assert 190 <= report["wall_ms"] < 800
    ends = [q["end_ms"] for q in report["queries"]]
    starts = [q["start_ms"] for q in report["queries"]]
    assert max(starts) < min(ends)  # every query was in flight at the same moment
    # ...and ran in the database at the same moment, by the database's own clock
    ran = [q["ran_ms"] for q in report["queries"]]
    done = [q["done_ms"] for q in report["queries"]]
    assert max(ran) < min(done)
    assert report["overlapped"] is True
    for query in report["queries"]:
        assert query["start_ms"] <= query["ran_ms"] < query["done_ms"] <= query["end_ms"]
        assert query["done_ms"] - query["ran_ms"] >= 190  # the database slept 200 ms
    await pool_settles(handle)


async def test_dashboard_on_one_connection_shows_what_the_driver_does(backend: Served) -> None:
    handle, client = backend
    report = await json_answer(
        client, "GET", "/db/dashboard", latency_ms=100, mode="one_connection"
    )
    assert report["effective"] == "one_connection"
    if report["backend"] == "postgresql":
        # asyncpg refuses the second query while the first runs: the error is the answer.
        assert report["ok"] == 1
        assert report["failed"] == 4
        assert report["error"] == (
            "InterfaceError: cannot perform operation: another operation is in progress"
        )
        ran = [q for q in report["queries"] if q["error"] is None]
        assert len(ran) == 1
        assert ran[0]["done_ms"] - ran[0]["ran_ms"] >= 90
        assert all(q["ran_ms"] is None for q in report["queries"] if q["error"])
    else:
        # aiosqlite queues them on the connection's thread: no error, no overlap either.
        assert report["ok"] == 5
        assert report["wall_ms"] >= 5 * 100 * 0.95
        spans = sorted((q["ran_ms"], q["done_ms"]) for q in report["queries"])
        for (_, done), (ran, _) in itertools.pairwise(spans):
            assert ran >= done  # each began in the database after the last had finished
        assert report["overlapped"] is False
    await pool_settles(handle)


async def test_dashboard_on_one_session_never_overlaps(backend: Served) -> None:
    _, client = backend
    report = await json_answer(client, "GET", "/db/dashboard", latency_ms=100, mode="one_session")
    assert report["effective"] == "one_session"
    ok = [q for q in report["queries"] if q["error"] is None]
    failed = [q for q in report["queries"] if q["error"] is not None]
    # Either SQLAlchemy refused the concurrent use, or it ran the queries in turn.
    for query in failed:
        assert query["error"].startswith(("InvalidRequestError", "IllegalStateChangeError"))
    ok_ends = sorted(q["end_ms"] for q in ok)
    assert all(b - a >= 90 for a, b in itertools.pairwise(ok_ends))
    spans = sorted((q["ran_ms"], q["done_ms"]) for q in ok)
    assert all(ran >= done for (_, done), (ran, _) in itertools.pairwise(spans))
    assert report["overlapped"] is False
    assert "one AsyncSession" in report["note"] or failed


async def test_blocking_mode_turns_the_dashboard_into_the_mistake(sqlite_app: Served) -> None:
    _, client = sqlite_app
    await set_blocking(client, True)
    report = await json_answer(client, "GET", "/db/dashboard", latency_ms=20)
    assert report["mode"] == "pool"
    assert report["effective"] == "one_connection"
    await set_blocking(client, False)


# -- batch insert, prefetch -------------------------------------------------------------------


async def test_batch_insert_takes_three_round_trips_row_by_row_takes_n(backend: Served) -> None:
    handle, client = backend
    batch = await json_answer(client, "POST", "/db/batch-insert", rows=300)
    single = await json_answer(client, "POST", "/db/batch-insert", rows=300, method="row_by_row")
    assert batch["effective"] == "batch"
    assert batch["round_trips"] == 3  # BEGIN, executemany, COMMIT
    assert single["effective"] == "row_by_row"
    assert single["round_trips"] == 302
    assert batch["rows"] == single["rows"] == 300
    pool = database_of(handle).pool
    assert pool is not None
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM events") >= 600

    await set_blocking(client, True)
    forced = await json_answer(client, "POST", "/db/batch-insert", rows=5)
    assert forced["method"] == "batch"
    assert forced["effective"] == "row_by_row"
    assert forced["round_trips"] == 7
    await set_blocking(client, False)


async def test_prefetch_and_n_plus_one_give_the_same_posts(backend: Served) -> None:
    _, client = backend
    prefetch = await json_answer(client, "GET", "/db/posts", limit=30)
    n_plus_one = await json_answer(client, "GET", "/db/posts", limit=30, strategy="n_plus_one")
    assert prefetch["posts"] == n_plus_one["posts"]
    assert len(prefetch["posts"]) == 30
    assert sum(len(p["comments"]) for p in prefetch["posts"]) > 30
    assert prefetch["queries"] == 2
    assert n_plus_one["queries"] == 1 + 2 * 30


# -- pool exhaustion ------------------------------------------------------------------------------


async def test_pool_exhaustion_answers_503_instead_of_hanging(backend: Served) -> None:
    handle, client = backend
    extra = 6
    params = {"seconds": 1.5, "timeout_s": 0.3}
    began = time.perf_counter()
    responses = await asyncio.gather(
        *(client.get("/db/hold", params=params) for _ in range(POOL_SIZE + extra))
    )
    elapsed = time.perf_counter() - began
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * POOL_SIZE + [503] * extra
    refused = [r.json()["detail"] for r in responses if r.status_code == 503]
    assert all(
        d.startswith("no free database connection within 0.3 s (pool of 10") for d in refused
    )
    assert elapsed < 6.0  # nobody waited for a connection past the timeout
    served = [r.json() for r in responses if r.status_code == 200]
    assert max(s["pool"]["in_use"] for s in served) == POOL_SIZE
    await pool_settles(handle)


async def test_without_the_timeout_the_excess_waits_its_turn(sqlite_app: Served) -> None:
    handle, client = sqlite_app
    await set_blocking(client, True)
    params = {"seconds": 0.4, "timeout_s": 0.05}
    responses = await asyncio.gather(
        *(client.get("/db/hold", params=params) for _ in range(POOL_SIZE + 3))
    )
    assert [r.status_code for r in responses] == [200] * (POOL_SIZE + 3)
    waits = sorted(r.json()["waited_ms"] for r in responses)
    assert waits[-1] >= 300  # the last three waited for a whole hold, not 50 ms
    await set_blocking(client, False)
    await pool_settles(handle)


async def test_the_pool_gauge_counts_real_waiters(sqlite_app: Served) -> None:
    handle, client = sqlite_app
    pool = database_of(handle).pool
    assert pool is not None
    holds = [
        asyncio.create_task(client.get("/db/hold", params={"seconds": 1.0, "timeout_s": 5}))
        for _ in range(POOL_SIZE + 4)
    ]
    await eventually(lambda: pool.stats().waiters == 4 and pool.stats().in_use == POOL_SIZE)
    status = (await client.get("/db/status")).json()["pool"]
    assert status["waiters"] == 4
    assert status["in_use"] == POOL_SIZE
    assert status["idle"] == 0
    assert all(r.status_code == 200 for r in await asyncio.gather(*holds))
    await pool_settles(handle)


# -- cancellation: no leaked connection -------------------------------------------------------


async def test_fifty_requests_cancelled_at_random_points_leak_nothing(backend: Served) -> None:
    handle, client = backend
    database = database_of(handle)
    rng = random.Random(50)
    paths: list[tuple[str, dict[str, str | float]]] = [
        ("/db/hold", {"seconds": 0.3}),
        ("/db/dashboard", {"latency_ms": 100}),
        ("/db/posts", {"limit": 100, "strategy": "n_plus_one"}),
        ("/db/slow-report", {"seconds": 0.2}),
    ]

    async def cancelled_request(i: int) -> None:
        # A client of its own per request: cancelling closes its connection, the server
        # sees the disconnect, and cancels the handler's work wherever it was.
        async with httpx.AsyncClient(base_url=handle.url, timeout=10) as own:
            path, params = paths[i % len(paths)]
            request = asyncio.create_task(own.get(path, params=params))
            await asyncio.sleep(rng.uniform(0, 0.35))
            request.cancel()
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await request

    await asyncio.gather(*(cancelled_request(i) for i in range(50)))
    await pool_settles(handle, within=15)
    # The pool still works, every connection of it.
    report = await json_answer(client, "GET", "/db/dashboard", latency_ms=10)
    assert report["ok"] == 5
    if database.backend == "postgresql":
        app_name = database.application_name
        await eventually_async(
            lambda: no_active_queries(app_name), within=10, what="queries still running"
        )
        connections = await our_backends(app_name)
        assert len(connections) <= POOL_SIZE + ORM_POOL_SIZE
    began = time.perf_counter()
    assert database.pool is not None
    await database.pool.close()
    assert time.perf_counter() - began < 5.0


async def no_active_queries(app_name: str) -> bool:
    rows = await our_backends(app_name)
    return all(row["state"] != "active" for row in rows)


async def eventually_async(check: Any, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} after {within} s")
        await asyncio.sleep(0.1)


async def test_tasks_cancelled_in_the_pool_give_their_connections_back(backend: Served) -> None:
    handle, _ = backend
    pool = database_of(handle).pool
    assert pool is not None
    rng = random.Random(7)

    async def use() -> None:
        async with pool.acquire(None) as conn:
            await conn.execute(f"SELECT {conn.sleep_fn}($1)", 0.2)
            async with conn.transaction():
                await conn.execute(f"SELECT {conn.sleep_fn}($1)", 0.1)

    tasks = [asyncio.create_task(use()) for _ in range(50)]
    for task in tasks:
        await asyncio.sleep(rng.uniform(0, 0.02))
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, asyncio.CancelledError) or r is None for r in results)
    await pool_settles(handle)
    async with pool.acquire() as conn:  # and each connection is usable (no open transaction)
        assert await conn.fetchval("SELECT 1") == 1


# -- bad input and faults -------------------------------------------------------------------------


BAD_REQUESTS = [
    ("GET", "/db/users/abc", None),
    ("GET", "/db/users/0", None),
    ("GET", "/db/users/99999999999", None),
    ("GET", "/db/orm/users/-1", None),
    ("GET", "/db/dashboard?mode=threads", None),
    ("GET", "/db/dashboard?latency_ms=-5", None),
    ("GET", "/db/dashboard?latency_ms=nan", None),
    ("GET", "/db/posts?limit=0", None),
    ("GET", "/db/posts?limit=501", None),
    ("GET", "/db/posts?strategy=lazy", None),
    ("GET", "/db/hold?seconds=60", None),
    ("GET", "/db/hold?timeout_s=0", None),
    ("GET", "/db/slow-report?seconds=3", None),
    ("POST", "/db/batch-insert", b'{"rows": 0}'),
    ("POST", "/db/batch-insert", b'{"rows": 5001}'),
    ("POST", "/db/batch-insert", b'{"rows": "10"}'),
    ("POST", "/db/batch-insert", b'{"rows": 10, "method": "copy"}'),
    ("POST", "/db/batch-insert", b"not json"),
    ("POST", "/db/orm/users", b'{"name": "", "email": "a@b"}'),
    ("POST", "/db/orm/users", b'{"name": "x", "email": "no-at-sign"}'),
    ("POST", "/db/orm/users", b'{"name": "x", "email": "a@b", "admin": true}'),
]


@pytest.mark.parametrize(("method", "path", "body"), BAD_REQUESTS)
async def test_bad_input_is_a_clear_422(
    sqlite_app: Served, method: str, path: str, body: bytes | None
) -> None:
    _, client = sqlite_app
    detail = clear_422_detail(await send_raw(client, method, path, body))
    assert detail


WRONG_URLS = [
    ("mysql://root:secret@127.0.0.1/db", "BadDatabaseUrl: unsupported scheme 'mysql'"),
    ("not a url", "BadDatabaseUrl: unsupported scheme 'none'"),
    ("postgresql:///nohost", "BadDatabaseUrl: a PostgreSQL URL needs a host"),
    ("postgresql://u:secret@127.0.0.1:1/db", "ConnectionRefusedError"),
    ("postgresql://u@127.0.0.1:5432/db?schema=Bad-Name", "BadDatabaseUrl: schema must be"),
]


@pytest.mark.parametrize(("url", "reason"), WRONG_URLS)
async def test_a_wrong_database_url_falls_back_to_sqlite(
    tmp_path: Path, url: str, reason: str
) -> None:
    async with db_server(tmp_path / "data", url) as (_, client):
        response = await client.get("/db/status")
        status = response.json()
        assert status["state"] == "ready"
        assert status["backend"] == "sqlite"
        assert status["fallback_reason"].startswith(reason), status["fallback_reason"]
        assert "secret" not in response.text  # the password is never shown
        assert (await client.get("/db/users/1")).status_code == 200
        assert (await client.get("/")).status_code == 200


@pytest.mark.skipif(PG_URL is None, reason=NO_PG)
async def test_wrong_credentials_fall_back_to_sqlite(tmp_path: Path) -> None:
    assert PG_URL is not None
    parts = httpx.URL(PG_URL)
    url = str(parts.copy_with(username="no_such_role_fx", password="pw"))
    async with db_server(tmp_path / "data", url) as (_, client):
        status = (await client.get("/db/status")).json()
        assert status["backend"] == "sqlite"
        assert 'role "no_such_role_fx" does not exist' in status["fallback_reason"]
        assert "no_such_role_fx:***@" in status["requested"]


async def test_no_database_at_all_is_a_503_and_the_app_keeps_running(tmp_path: Path) -> None:
    # A directory where the SQLite file should be: SQLite cannot open it.
    (tmp_path / "data" / "explorer.sqlite3").mkdir(parents=True)
    async with db_server(tmp_path / "data") as (_, client):
        status = (await client.get("/db/status")).json()
        assert status["state"] == "unavailable"
        assert status["backend"] is None
        assert status["error"]
        response = await client.get("/db/users/1")
        assert response.status_code == 503
        assert response.json()["detail"].startswith("database unavailable: ")
        assert (await client.get("/basics/async", params={"delay": 0})).status_code == 200


async def test_routes_wait_for_nothing_while_connecting(tmp_path: Path) -> None:
    """Before the database is up, a route says so at once (503), it does not wait."""
    handle = ServerHandle(Settings(port=0, data_dir=tmp_path / "data"))
    await handle.start()
    try:
        database = database_of(handle)
        async with httpx.AsyncClient(base_url=handle.url) as client:
            response = await client.get("/db/users/1")
            if database.state != "ready":
                assert response.status_code == 503
                assert response.json()["detail"].startswith("database ")
            await database.wait_ready(10)
            assert (await client.get("/db/users/1")).status_code == 200
    finally:
        await handle.stop()


@pytest.mark.skipif(PG_URL is None, reason=NO_PG)
async def test_the_database_going_away_mid_query_is_a_503(pg_app: Served) -> None:
    handle, client = pg_app
    database = database_of(handle)
    hold = asyncio.create_task(client.get("/db/hold", params={"seconds": 4}))

    async def running_sleep() -> list[asyncpg.Record]:
        return await pg_admin(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1"
            " AND state = 'active' AND query LIKE '%pg_sleep%'",
            database.application_name,
        )

    deadline = time.monotonic() + 5
    while not (pids := await running_sleep()):
        assert time.monotonic() < deadline, "the query never started"
        await asyncio.sleep(0.05)
    await pg_admin("SELECT pg_terminate_backend($1)", pids[0]["pid"])
    response = await hold
    assert response.status_code == 503
    detail = response.json()["detail"]
    assert detail.startswith("database error mid-query: ")
    assert "terminating connection due to administrator command" in detail or (
        "ConnectionDoesNotExistError" in detail
    )
    # The pool replaces the dead connection; the app goes on.
    await pool_settles(handle)
    assert (await client.get("/db/users/2")).status_code == 200
    report = await json_answer(client, "GET", "/db/dashboard", latency_ms=10)
    assert report["ok"] == 5


@pytest.mark.skipif(PG_URL is None, reason=NO_PG)
async def test_postgresql_connections_are_named_and_closed(pg_schema: str, tmp_path: Path) -> None:
    async with db_server(tmp_path / "data", pg_app_url(pg_schema)) as (handle, client):
        database = database_of(handle)
        app_name = database.application_name
        assert app_name.endswith(pg_schema)
        assert len(await our_backends(app_name)) >= POOL_SIZE
        await client.get("/db/per-request-pool/users/1")  # opens ten, closes ten
        await client.get("/db/orm/users/1")
        assert len(await our_backends(app_name)) <= POOL_SIZE + ORM_POOL_SIZE
    # Shutdown closed every connection the app opened.
    await eventually_async(lambda: no_connections(app_name), within=5, what="connections left open")


async def no_connections(app_name: str) -> bool:
    return not await our_backends(app_name)


async def test_sync_sqlite3_in_async_def_stalls_the_loop(sqlite_app: Served) -> None:
    handle, client = sqlite_app
    monitor = state_of(handle.app).monitor
    right = await client.get("/db/slow-report", params={"seconds": 0.3})
    assert right.json()["driver"] == "aiosqlite (its thread)"
    await asyncio.sleep(0.2)
    # (short stalls of request handling itself may be recorded; none near the query's time)
    long_stalls = [s for s in monitor.stalls_after(0) if s.duration_ms >= 250]
    assert not [s for s in long_stalls if s.route == "GET /db/slow-report"]

    await set_blocking(client, True)
    wrong = await client.get("/db/slow-report", params={"seconds": 0.3})
    assert wrong.json()["driver"] == "sqlite3 (sync, on the event loop)"
    assert wrong.json()["orders"] == right.json()["orders"] == 2000

    def ours() -> list[Any]:
        return [
            s
            for s in monitor.stalls_after(0)
            if s.route == "GET /db/slow-report" and s.duration_ms >= 250
        ]

    await eventually(lambda: bool(ours()))
    stall = ours()[0]
    assert stall.duration_ms >= 280
    assert stall.location.startswith("server/patterns/db/router.py:")
    assert stall.location.endswith("in report_sync_sqlite3")
    await set_blocking(client, False)


async def test_open_and_close_without_a_server(tmp_path: Path) -> None:
    """The Database alone: close() is prompt even with a connection checked out."""
    database = Database(tmp_path, None, pool_size=2, acquire_timeout_s=0.2)
    database.start()
    assert await database.wait_ready(10)
    assert database.pool is not None
    pool = database.pool
    async with pool.acquire() as first, pool.acquire() as second:
        assert first is not second
        with pytest.raises(PoolTimeout, match=r"within 0.2 s \(pool of 2: 2 in use"):
            async with pool.acquire():
                pass
    began = time.perf_counter()
    await database.close()
    assert time.perf_counter() - began < 5
    assert database.state == "closed"


# -- the pane (Pilot) ------------------------------------------------------------------------------

SIZES = [(100, 30), (140, 45), (200, 60)]


async def open_db_pane(app: ExplorerApp, pilot: Pilot[Any]) -> DbPane:
    await eventually(lambda: app.context is not None and bool(app.query("#pane-db")))
    await pilot.press(str([p.SLUG for p in PANES].index("db") + 1))
    pane = app.query_one(DbPane)
    await eventually(lambda: (pane.status or {}).get("state") == "ready", within=15)
    return pane


async def run_action(pilot: Pilot[Any], pane: DbPane, key: str) -> dict[str, Any]:
    pane.result = None
    pane.action_key = key
    await pilot.click("#pane-db #run")
    await eventually(lambda: pane.result is not None, within=30)
    assert pane.result is not None
    await pilot.pause(0.1)  # drawn
    return pane.result


def rendered_lines(widget: Widget) -> list[str]:
    """What ``widget`` shows now, line by line, as a reader sees it (cut to its width)."""
    width, height = widget.content_size
    return [strip.text.rstrip() for strip in widget.render_lines(Region(0, 0, width, height))]


def shown(pane: DbPane, selector: str) -> str:
    """The text of a widget as drawn, its lines joined (a wrapped sentence reads whole)."""
    return " ".join(rendered_lines(pane.query_one(selector)))


def dashboard_figure(pane: DbPane) -> tuple[list[tuple[int, int]], float]:
    """The bars the dashboard figure shows (first and last column of each) and its wall
    time, read back from the screen."""
    lines = rendered_lines(pane.query_one("#result"))
    assert lines[0].startswith("time (ms)"), lines
    bars = displayed_bars(lines[:6])
    wall = re.search(r"wall (\d+) ms", "\n".join(lines))
    assert wall is not None, lines
    return bars, float(wall.group(1))


async def test_pane_names_the_backend_and_runs_the_patterns(tmp_path: Path) -> None:
    async with live_pane(tmp_path, (100, 30), open_db_pane) as (app, pilot, pane):
        assert pane.display
        await pilot.pause(0.3)
        assert "SQLite via aiosqlite" in shown(pane, "#backend")
        assert "idle 10" in shown(pane, "#gauge")

        dashboard = await run_action(pilot, pane, "dashboard")
        assert dashboard["effective"] == "pool"
        assert dashboard["ok"] == 5
        assert "wall" in shown(pane, "#result")

        await pilot.press("c")
        await pilot.pause(0.2)
        panels = app.query_one(CodeView).blocks
        assert panels[0].path == "server/patterns/db/router.py"
        assert "dashboard_on_pool" in panels[0].text
        await pilot.press("escape")


async def test_dashboard_draws_the_queries_on_one_time_axis(tmp_path: Path) -> None:
    """Right: the bars overlap. Blocking mode (gather on one connection): each bar begins
    after the last one ended, and the page takes their sum. Read from the screen."""
    async with live_pane(tmp_path, (100, 30), open_db_pane) as (app, pilot, pane):
        await run_action(pilot, pane, "dashboard")
        bars, right_wall = dashboard_figure(pane)
        assert len(bars) == 5
        assert max(first for first, _ in bars) < min(last for _, last in bars)  # overlap
        assert "all at the same time" in shown(pane, "#result")

        await pilot.press("b")
        assert app.blocking_switch.enabled
        result = await run_action(pilot, pane, "dashboard")
        assert result["effective"] == "one_connection"
        bars, blocking_wall = dashboard_figure(pane)
        assert len(bars) == 5
        for (_, last), (first, _) in itertools.pairwise(sorted(bars)):
            assert first >= last  # no overlap (a shared boundary cell at most)
        assert "one after another" in shown(pane, "#result")
        assert blocking_wall >= 2.5 * right_wall  # 5 x 50 ms in a row vs about one
        await pilot.press("c")  # the code that ran: the pitfall first
        await pilot.pause(0.2)
        assert "async def dashboard_on_one_connection" in app.query_one(CodeView).blocks[0].text
        await pilot.press("escape")
        await pilot.press("b")


async def test_pane_is_whole_at_every_size_before_and_after_a_run(tmp_path: Path) -> None:
    for size in SIZES:
        async with live_pane(tmp_path, size, open_db_pane) as (_, pilot, pane):
            await pilot.pause(0.3)
            for action in ACTIONS:  # each entry's lesson, right and blocking
                pane.action_key = action.key
                await pilot.pause(0.05)
                assert problems_of(pane, results=("#results",)) == [], (size, action.key)
            await pilot.press("b")
            for action in ACTIONS:
                pane.action_key = action.key
                await pilot.pause(0.05)
                assert problems_of(pane, results=("#results",)) == [], (size, action.key)
            await pilot.press("b")
            await run_action(pilot, pane, "dashboard")
            assert problems_of(pane, results=("#results",)) == [], size
            results = pane.query_one("#results", VerticalScroll)
            # the figure (ticks, five bars, the verdict) is on screen without scrolling
            assert results.scroll_y == 0
            assert results.scrollable_content_region.height >= 7, size
            assert len(rendered_lines(pane.query_one("#backend"))) == 1  # no wrap
            await pilot.press("q")


async def test_enter_runs_the_pane_and_escape_leaves_the_field(tmp_path: Path) -> None:
    async with live_pane(tmp_path, (100, 30), open_db_pane) as (app, pilot, pane):
        rows = pane.query_one("#rows", Input)
        rows.focus()
        await pilot.press("enter")
        await eventually(lambda: pane.result is not None, within=20)
        assert pane.result is not None
        assert pane.result["key"] == "dashboard"
        await escape_leaves_the_field(pilot, rows)
        await quit_with_q(pilot)
        await pilot.pause(3)
    assert app.return_code == 0


async def test_the_other_actions_show_their_lessons_on_screen(tmp_path: Path) -> None:
    async with live_pane(tmp_path, (100, 30), open_db_pane) as (_, pilot, pane):
        fetch = await run_action(pilot, pane, "fetch")
        opened = {way["via"]: way["opened"] for way in fetch["ways"]}
        assert opened == {"lifespan pool": 0, "AsyncSession": 0, "pool per request": 10}
        assert "10 connections opened" in shown(pane, "#result")

        batch = await run_action(pilot, pane, "batch")
        assert [r["round_trips"] for r in batch["runs"]] == [3, 1002]
        text = shown(pane, "#result")
        assert "334× the round trips" in text
        assert "█ 3" in text
        assert " 1002" in text

        posts = await run_action(pilot, pane, "prefetch")
        assert [r["queries"] for r in posts["runs"]] == [2, 201]
        assert "100× the queries" in shown(pane, "#result")

        exhaust = await run_action(pilot, pane, "exhaust")
        assert (exhaust["ok"], exhaust["refused"]) == (10, 6)
        text = shown(pane, "#result")
        assert "6 got 503" in text
        assert "waiters up to 6" in text or "waiters up to 5" in text  # (4 Hz gauge)
        # the 503s came back at the acquire timeout, long before the holds ended
        assert max(exhaust["refused_ms"]) < min(exhaust["served_ms"])

        report = await run_action(pilot, pane, "report")
        assert report["driver"] == "aiosqlite (its thread)"
        assert "No stall" in shown(pane, "#result")

        await pilot.press("b")
        batch = await run_action(pilot, pane, "batch")
        assert [r["effective"] for r in batch["runs"]] == ["row_by_row", "row_by_row"]
        assert "both runs took the row_by_row way" in shown(pane, "#result")
        exhaust = await run_action(pilot, pane, "exhaust")
        assert (exhaust["ok"], exhaust["refused"]) == (16, 0)
        assert "waited" in shown(pane, "#result")
        assert exhaust["max_wait_ms"] >= 1000  # the excess waited a whole hold
        await pilot.press("b")


async def test_pane_shows_the_sync_sqlite3_stall_in_blocking_mode(tmp_path: Path) -> None:
    async with live_pane(tmp_path, (100, 30), open_db_pane) as (app, pilot, pane):
        await pilot.press("b")  # the menu has the focus, not the rows field
        assert app.blocking_switch.enabled
        report = await run_action(pilot, pane, "report")
        assert report["driver"] == "sqlite3 (sync, on the event loop)"
        # nothing was answered while the query ran on the loop
        assert report["longest_gap_ms"] >= 250
        text = shown(pane, "#result")
        assert "stall in the handler" in text
        assert "server/patterns/db/router.py:" in text
        assert "report_sync_sqlite3" in text
        await pilot.press("c")
        await pilot.pause(0.2)
        panels = app.query_one(CodeView).blocks
        assert any(p.highlight and "sqlite3" in p.text for p in panels)


async def test_pane_says_when_the_url_did_not_work(tmp_path: Path) -> None:
    url = "postgresql://who:secret@127.0.0.1:1/nowhere"
    app = ExplorerApp(Settings(port=0, data_dir=tmp_path, database_url=url))
    async with app.run_test(size=(100, 30)) as pilot:
        pane = await open_db_pane(app, pilot)
        await pilot.pause(0.3)
        text = str(pane.query_one("#backend").render())  # the whole line, uncut
        assert "SQLite" in text
        assert "not usable" in text
        assert "ConnectionRefusedError" in text
        assert "secret" not in text
        # what happened is on screen even where the line is cut
        lines = rendered_lines(pane.query_one("#backend"))
        assert lines[1].startswith("⚠ fell back to SQLite")
        assert problems_of(pane, results=("#results",)) == []  # two lines, still whole
        assert "ConnectionRefusedError" in str(pane.query_one("#backend").tooltip)
        notes = await run_action(pilot, pane, "notes")
        assert notes == {"key": "notes", "notes": True}


async def test_pane_refuses_a_bad_row_count(tmp_path: Path) -> None:
    async with live_pane(tmp_path, (100, 30), open_db_pane) as (app, pilot, pane):
        pane.action_key = "batch"
        # (the field holds at most 4 characters: 5000 is its bound)
        await enter_and_click(pilot, "#pane-db #rows", "9999", "#pane-db #run")
        await pilot.pause()
        assert not pane.running
        assert pane.result is None
        assert told_invalid_input(app)


@pytest.mark.skipif(PG_URL is None, reason=NO_PG)
async def test_pane_on_postgresql_shows_the_drivers_error(pg_schema: str, tmp_path: Path) -> None:
    settings = Settings(port=0, data_dir=tmp_path, database_url=pg_app_url(pg_schema))
    app = ExplorerApp(settings)
    async with app.run_test(size=(100, 30)) as pilot:
        pane = await open_db_pane(app, pilot)
        await pilot.pause(0.3)
        assert "PostgreSQL via asyncpg" in shown(pane, "#backend")
        await run_action(pilot, pane, "dashboard")
        bars, _ = dashboard_figure(pane)
        assert len(bars) == 5
        assert max(first for first, _ in bars) < min(last for _, last in bars)
        result = await run_action(pilot, pane, "one_connection")
        assert result["failed"] == 4
        assert "another operation is in progress" in shown(pane, "#result")
        bars, _ = dashboard_figure(pane)
        assert len(bars) == 1  # one query ran; the driver refused the other four
        assert shown(pane, "#result").count("InterfaceError") >= 4
        fetch = await run_action(pilot, pane, "fetch")
        opened = {way["via"]: way["opened"] for way in fetch["ways"]}
        assert opened == {"lifespan pool": 0, "AsyncSession": 0, "pool per request": 100}


# -- snapshots (every live number frozen) ------------------------------------------------


FROZEN_DB_STATUS = {
    "state": "ready",
    "backend": "postgresql",
    "driver": "asyncpg",
    "orm": "postgresql+asyncpg",
    "location": "postgresql://postgres@127.0.0.1:5432/test",
    "requested": "postgresql://postgres@127.0.0.1:5432/test",
    "fallback_reason": None,
    "error": None,
    "seed_progress": 1.0,
    "rows": {"users": 200, "orders": 2000, "posts": 500, "comments": 3000},
    "seeded_now": False,
    "pool": {
        "size": 10,
        "in_use": 1,
        "idle": 9,
        "waiters": 0,
        "opened": 10,
        "acquire_timeout_s": 2.0,
    },
    "orm_pool": {"size": 5, "checked_out": 0, "commits": 3, "rollbacks": 1},
    "per_request_opened": 0,
    "sync_sqlite_file": "/data/explorer.sqlite3",
}

FROZEN_SQLITE_STATUS = {
    **FROZEN_DB_STATUS,
    "backend": "sqlite",
    "driver": "aiosqlite",
    "orm": "sqlite+aiosqlite",
    "location": "sqlite:////home/user/.local/share/fastasync-explorer/explorer.sqlite3",
    "requested": None,
    "pool": {**FROZEN_DB_STATUS["pool"], "in_use": 0, "idle": 10},  # type: ignore[dict-item]
}

INTERFACE_ERROR = "InterfaceError: cannot perform operation: another operation is in progress"

FROZEN_DASHBOARD = {
    "mode": "one_connection",
    "effective": "one_connection",
    "backend": "postgresql",
    "latency_ms": 50.0,
    "wall_ms": 51.9,
    "queries": [
        {
            "name": "users",
            "start_ms": 0.2,
            "end_ms": 51.4,
            "ran_ms": 1.1,
            "done_ms": 51.2,
            "value": 200,
            "error": None,
        },
        *(
            {
                "name": name,
                "start_ms": 0.3,
                "end_ms": 0.4,
                "ran_ms": None,
                "done_ms": None,
                "value": None,
                "error": INTERFACE_ERROR,
            }
            for name in ("paid_cents", "posts", "comments", "top_customer")
        ),
    ],
    "ok": 1,
    "failed": 4,
    "overlapped": False,
    "error": INTERFACE_ERROR,
    "note": "A connection runs one query at a time: the driver refused 4 of 5. Take one "
    "connection per query from the pool.",
}

_NAMES = ("users", "paid_cents", "posts", "comments", "top_customer")
_VALUES = (200, 12438587, 500, 3000, 120)


def frozen_sqlite_dashboard(blocking: bool) -> dict[str, Any]:
    """A dashboard run on SQLite, right (all at once) or in blocking mode (in a row)."""
    queries: list[dict[str, Any]] = []
    for i, (name, value) in enumerate(zip(_NAMES, _VALUES, strict=True)):
        ran = 1.2 + (51.3 * i if blocking else 0.3 * i)
        queries.append(
            {
                "name": name,
                "start_ms": 0.2 + 0.1 * i,
                "end_ms": ran + 50.6,
                "ran_ms": ran,
                "done_ms": ran + 50.4,
                "value": value,
                "error": None,
            }
        )
    wall = float(queries[-1]["end_ms"]) + 0.3
    if blocking:
        note = (
            "No error, but the database ran the 5 queries one after another (the driver "
            f"queues them on its thread; ░ is the wait): {wall:.0f} ms, their sum. gather "
            "needs one connection per query."
        )
    else:
        note = (
            "5 queries of 50 ms, one pooled connection each, ran in the database at the "
            f"same time: {wall:.0f} ms in all, about one query's time."
        )
    return {
        "mode": "pool",
        "effective": "one_connection" if blocking else "pool",
        "backend": "sqlite",
        "latency_ms": 50.0,
        "wall_ms": wall,
        "queries": queries,
        "ok": 5,
        "failed": 0,
        "overlapped": not blocking,
        "error": None,
        "note": note,
    }


def frozen_db_run(
    status: dict[str, Any], key: str, data: dict[str, Any], blocking: bool = False
) -> Any:
    async def run_before(pilot: Pilot[Any]) -> None:
        app, pane = await open_frozen(pilot, DbPane)
        await settle(
            pilot,
            lambda: pane.status is not None and pane.status.get("state") == "ready",
            "db status ready",
        )
        # Stop the live status poll, so the frozen status below stays on screen.
        app.workers.cancel_group(pane, "db-status")
        await pilot.pause(0.05)
        if blocking:
            app.blocking_switch.set(True)
        pane.action_key = key
        pane.query_one(Select).value = key
        pane.post_message(DbPane.StatusUpdate(status))
        pane.post_message(DbPane.ActionDone(key, Text(), data))
        await still_picture(pilot)

    return run_before


def sqlite_dashboard_run(blocking: bool) -> Any:
    """r on defaults (the dashboard on SQLite), right or in blocking mode."""
    data = frozen_sqlite_dashboard(blocking=blocking)
    return frozen_db_run(FROZEN_SQLITE_STATUS, "dashboard", data, blocking=blocking)


def test_db_pane_after_gather_on_one_connection(frozen_snapshot: FrozenSnapshot) -> None:
    assert frozen_snapshot(
        (120, 40), frozen_db_run(FROZEN_DB_STATUS, "one_connection", FROZEN_DASHBOARD)
    )


def test_db_pane_after_a_default_run_at_100x30(frozen_snapshot: FrozenSnapshot) -> None:
    assert frozen_snapshot((100, 30), sqlite_dashboard_run(blocking=False))


def test_db_pane_after_a_blocking_run_at_100x30(frozen_snapshot: FrozenSnapshot) -> None:
    assert frozen_snapshot((100, 30), sqlite_dashboard_run(blocking=True))


def test_db_pane_after_a_blocking_run_at_140x45(frozen_snapshot: FrozenSnapshot) -> None:
    assert frozen_snapshot((140, 45), sqlite_dashboard_run(blocking=True))
