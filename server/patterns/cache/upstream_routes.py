"""The cache pattern's upstream: routes of this same server, reached over real loopback HTTP.

Each counts what reaches it in the :class:`~server.patterns.cache.upstream.UpstreamLedger`:
calls per key (what the cache saved) and the TCP peers of a client run (what the shared
client's pool saved).
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Query, Request

from server.disconnect import wait_unless_disconnected
from server.patterns.cache.deps import MAX_HANG_S, Delay, Key, LedgerDep
from server.patterns.cache.models import Computed, EchoReply, HangReply
from server.patterns.cache.upstream import computed_value

#: Included by the pattern's router, under its ``/cache`` prefix.
upstream_router = APIRouter()
#: the task that notices a caller hanging up (a ``cache:`` task, as the pattern's tests count)
WATCH = "cache:upstream-watch"


@upstream_router.get("/upstream/compute/{key}")
async def upstream_compute(
    request: Request, key: Key, ledger: LedgerDep, delay_s: Delay = 0.3
) -> Computed:
    """The slow computation: takes ``delay_s``, then answers a digest of ``key``.

    Counts every call per key, so what the cache saved is counted where it is saved.
    """
    call = ledger.record_call(key)
    await wait_unless_disconnected(request, delay_s, name=WATCH)
    return Computed(key=key, value=computed_value(key), call=call)


@upstream_router.get("/upstream/echo")
async def upstream_echo(
    request: Request,
    ledger: LedgerDep,
    run: Annotated[str, Query(pattern=r"^[a-f0-9]{1,32}$", description="The run's id.")],
    delay_s: Annotated[float, Query(ge=0, le=1.0, description="Seconds to wait (0 to 1).")] = 0.0,
) -> EchoReply:
    """Answers after ``delay_s``; records which TCP connection the call came in on."""
    peer = (request.client.host, request.client.port) if request.client else None
    ledger.record_peer(run, peer)
    if delay_s:
        await wait_unless_disconnected(request, delay_s, name=WATCH)
    return EchoReply(run=run, peer_port=peer[1] if peer else None)


@upstream_router.get("/upstream/hang")
async def upstream_hang(
    request: Request,
    hold_s: Annotated[
        float, Query(ge=0, le=MAX_HANG_S, description="Seconds to hold the call (0 to 30).")
    ] = 5.0,
) -> HangReply:
    """An upstream that hangs: holds the call ``hold_s`` (bounded) before answering.

    It lets go early when the caller hangs up, so a caller's timeout leaves nothing behind.
    """
    began = time.perf_counter()
    gave_up = await wait_unless_disconnected(request, hold_s, name=WATCH)
    return HangReply(held_ms=round((time.perf_counter() - began) * 1000, 3), caller_gave_up=gave_up)
