"""A request's work on a pooled connection, two ways: ``async with`` or bare acquire.

Both open a transaction and write a row; with ``fail`` an error comes before the commit
(the demo's own, declared failure). The context manager rolls back and releases; the bare
form never reaches its release, so its connection stays checked out for good.
"""

from __future__ import annotations

from server.patterns.lifespan.pool import ConnectionPool, PoolGauge, connection


class DemoFailure(RuntimeError):
    """The failure the request was asked to have (``fail=true``), after its INSERT."""


async def with_context_manager(pool: ConnectionPool, fail: bool, timeout_s: float) -> None:
    """Right: whatever happens in the block, the connection goes back (rolled back first)."""
    async with connection(pool, timeout_s) as conn:
        await conn.execute("BEGIN")
        await conn.execute("INSERT OR REPLACE INTO scratch (rowid, note) VALUES (1, 'order')")
        if fail:
            raise DemoFailure("simulated failure after the INSERT")
        await conn.commit()


async def without_context_manager(pool: ConnectionPool, fail: bool, timeout_s: float) -> None:
    """Pitfall: acquire, work, release; an exception skips the release (and the rollback)."""
    conn = await pool.acquire(timeout_s)
    await conn.execute("BEGIN")
    await conn.execute("INSERT OR REPLACE INTO scratch (rowid, note) VALUES (1, 'order')")
    if fail:
        raise DemoFailure("simulated failure after the INSERT")
    await conn.commit()
    await pool.release(conn)


def failure_sentence(error: DemoFailure, leaked: bool, gauge: PoolGauge) -> str:
    """What a failed request answers (409): its error, and where its connection went."""
    where = (
        "the connection was never released (no context manager): it stays checked out"
        if leaked
        else "rolled back and released by the context manager"
    )
    return (
        f"the request failed ({type(error).__name__}: {error}): {where}; "
        f"pool idle {gauge.idle} of {gauge.size}"
    )
