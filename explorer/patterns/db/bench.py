"""``python -m explorer.patterns.db.bench``: the database figures, both backends side by side.

For each backend (an SQLite file in a temporary directory; PostgreSQL when a URL is given,
in a temporary schema dropped afterwards), with a pool of 20 connections:

- one query that waits 50 ms in the database, vs 20 of them with ``asyncio.gather`` on the
  pool (target: the 20 take at most 1.3x as long as the one);
- 1,000 rows inserted with one ``executemany`` vs one INSERT per row;
- a row fetched with a connection from the lifespan pool vs through the guide's
  pool-per-request dependency.

It runs the same functions the ``/db`` routes run (imported from ``server.patterns.db.router``),
in-process, without HTTP, so the figures are the database patterns' own.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from explorer.tools.bench_kit import bench_parser
from server.patterns.db import Database
from server.patterns.db.router import insert_batch, insert_row_by_row, per_request_connection, slow

GATHER = 20
QUERY_S = 0.05
TARGET = 1.3


@dataclass
class Figures:
    backend: str
    one_ms: float
    gather_ms: float
    batch_ms: float
    row_ms: float
    pooled_fetch_ms: float
    per_request_fetch_ms: float
    opened_per_request: float


async def median_ms(action: Callable[[], Awaitable[object]], rounds: int) -> float:
    """The median wall time of ``rounds`` runs of ``action``, in ms (after one warm-up)."""
    await action()
    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        await action()
        times.append((time.perf_counter() - began) * 1000.0)
    return statistics.median(times)


async def measure(db: Database, rows: int, rounds: int) -> Figures:
    pool = db.pool
    assert pool is not None
    assert db.target is not None

    async def one_query() -> None:
        async with pool.acquire() as conn:
            await conn.fetchval(slow("SELECT count(*) FROM users", conn.sleep_fn), QUERY_S)

    async def gathered() -> None:
        await asyncio.gather(*(one_query() for _ in range(GATHER)))

    def inserting(insert: Callable[..., Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            batch = uuid.uuid4().hex[:12]
            data = [(batch, i, f"bench row {i}") for i in range(rows)]
            async with pool.acquire() as conn:
                await insert(conn, data)

        return run

    async def pooled_fetch() -> None:
        async with pool.acquire() as conn:
            await conn.fetchrow("SELECT * FROM users WHERE id = $1", 7)

    async def per_request_fetch() -> None:
        dependency = per_request_connection(db)
        conn = await anext(dependency)
        try:
            await conn.fetchrow("SELECT * FROM users WHERE id = $1", 7)
        finally:
            await dependency.aclose()

    opened_before = db.per_request_opened
    per_request = await median_ms(per_request_fetch, rounds * 4)
    opened = (db.per_request_opened - opened_before) / (rounds * 4 + 1)
    return Figures(
        backend=db.target.backend,
        one_ms=await median_ms(one_query, rounds),
        gather_ms=await median_ms(gathered, rounds),
        batch_ms=await median_ms(inserting(insert_batch), rounds),
        row_ms=await median_ms(inserting(insert_row_by_row), rounds),
        pooled_fetch_ms=await median_ms(pooled_fetch, rounds * 4),
        per_request_fetch_ms=per_request,
        opened_per_request=opened,
    )


async def run_backend(data_dir: Path, url: str | None, rows: int, rounds: int) -> Figures:
    db = Database(data_dir, url, pool_size=GATHER, acquire_timeout_s=10.0)
    db.start()
    try:
        await db.wait_ready(30)
        if db.state != "ready" or (url and db.fallback_reason):
            raise SystemExit(f"bench_db: database not usable: {db.fallback_reason or db.error}")
        return await measure(db, rows, rounds)
    finally:
        await db.close()


async def drop_schema(url: str, schema: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(url, timeout=5)
    try:
        await connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await connection.close()


async def run_all(pg_url: str | None, rows: int, rounds: int) -> list[Figures]:
    results = []
    with tempfile.TemporaryDirectory(prefix="fastasync-bench-db-") as tmp:
        results.append(await run_backend(Path(tmp), None, rows, rounds))
        if pg_url:
            schema = f"fx_bench_{uuid.uuid4().hex[:8]}"
            joiner = "&" if "?" in pg_url else "?"
            try:
                results.append(
                    await run_backend(Path(tmp), f"{pg_url}{joiner}schema={schema}", rows, rounds)
                )
            finally:
                await drop_schema(pg_url, schema)
    return results


def table(results: list[Figures], rows: int) -> str:
    head = (
        f"{'backend':<11} {'1 query':>9} {'gather 20':>10} {'ratio':>7}  "
        f"{'batch ' + str(rows):>11} {'row by row':>11} {'ratio':>7}  "
        f"{'pooled get':>11} {'per-request':>12} {'ratio':>7} {'conn/req':>9}"
    )
    lines = [head, "-" * len(head)]
    for f in results:
        gather_ratio = f.gather_ms / f.one_ms
        verdict = "ok" if gather_ratio <= TARGET else "MISSED"
        lines.append(
            f"{f.backend:<11} {f.one_ms:7.1f}ms {f.gather_ms:8.1f}ms {gather_ratio:6.2f}x  "
            f"{f.batch_ms:9.1f}ms {f.row_ms:9.1f}ms {f.row_ms / f.batch_ms:6.1f}x  "
            f"{f.pooled_fetch_ms:9.2f}ms {f.per_request_fetch_ms:10.2f}ms "
            f"{f.per_request_fetch_ms / f.pooled_fetch_ms:6.1f}x {f.opened_per_request:9.0f}"
            f"   gather target <= {TARGET}: {verdict}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = bench_parser(
        "db", "Database pattern figures on SQLite (aiosqlite) and PostgreSQL (asyncpg)."
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("FASTASYNC_DATABASE_URL") or os.environ.get("FASTASYNC_TEST_PG_URL"),
        help="PostgreSQL URL (default $FASTASYNC_DATABASE_URL, else $FASTASYNC_TEST_PG_URL); "
        "without one only SQLite is measured",
    )
    parser.add_argument("--rows", type=int, default=1000, help="rows per insert run")
    parser.add_argument("--rounds", type=int, default=5, help="runs per figure (median kept)")
    args = parser.parse_args(argv)
    if not 1 <= args.rows <= 100_000 or not 1 <= args.rounds <= 100:
        parser.error("--rows must be 1 to 100000 and --rounds 1 to 100")
    url = args.database_url
    if url and not url.startswith(("postgresql://", "postgres://")):
        parser.error("--database-url must be a postgresql:// URL")
    results = asyncio.run(run_all(url, args.rows, args.rounds))
    print(
        f"pool of {GATHER}; queries wait {QUERY_S * 1000:.0f} ms in the database; "
        f"median of {args.rounds} runs"
    )
    print(table(results, args.rows))
    if not url:
        print("postgresql: not measured (no --database-url / FASTASYNC_DATABASE_URL)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
