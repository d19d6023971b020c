"""Pool exhaustion: more requests than connections, with and without an acquire timeout."""

from __future__ import annotations

import time
from typing import Annotated, Any, cast

from fastapi import APIRouter, Query, Request

from server.deps import BlockingMode
from server.patterns.db.deps import ReadyDatabase, connection, unless_disconnected
from server.patterns.db.models import HoldOut
from server.patterns.db.status import pool_out

router = APIRouter()


@router.get("/hold", responses={503: {"description": "No free connection in time."}})
async def hold_connection(
    request: Request,
    db: ReadyDatabase,
    blocking: BlockingMode,
    seconds: Annotated[
        float, Query(ge=0, le=5, description="How long the query holds its connection.")
    ] = 0.5,
    timeout_s: Annotated[
        float, Query(gt=0, le=10, description="Acquire timeout (s); blocking mode: none.")
    ] = 1.0,
) -> HoldOut:
    """Take a connection and keep it ``seconds`` in a query. More of these than the pool
    holds at once: the excess waits, and past ``timeout_s`` answers 503 instead of hanging.
    """

    async def hold() -> HoldOut:
        async with connection(db, None if blocking else timeout_s) as conn:
            gauge = pool_out(cast(Any, db.pool).stats(), db.acquire_timeout_s)
            began = time.perf_counter()
            await conn.execute(f"SELECT {conn.sleep_fn}($1)", seconds)
            held = time.perf_counter() - began
            return HoldOut(
                waited_ms=round(conn.waited_s * 1000.0, 3),
                held_ms=round(held * 1000.0, 3),
                pool=gauge,
            )

    return await unless_disconnected(request, hold())
