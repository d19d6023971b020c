"""``GET /db/status``: which backend is live, its pool gauge, its seed, and why not."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from server.patterns.db.deps import DatabaseDep
from server.patterns.db.models import OrmPoolOut, PoolOut, StatusOut
from server.patterns.db.pool import PoolStats
from server.patterns.db.service import Database

router = APIRouter()


def pool_out(stats: PoolStats, timeout_s: float) -> PoolOut:
    """The gauge as the API shows it: the pool's figures and its acquire timeout."""
    return PoolOut(**stats.model_dump(), acquire_timeout_s=timeout_s)


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
        pool=pool_out(stats, db.acquire_timeout_s) if stats is not None else None,
        orm_pool=orm_pool,
        per_request_opened=db.per_request_opened,
        sync_sqlite_file=str(db.sqlite_path) if db.sqlite_ready else None,
    )


@router.get("/status")
async def database_status(db: DatabaseDep) -> StatusOut:
    """Backend, pool gauge, seed, and why a requested URL is not in use (if so)."""
    return status_of(db)
