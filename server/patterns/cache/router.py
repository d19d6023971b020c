"""Pooling and caching: a TTL cache in front of a slow upstream, one shared HTTP client
versus a client per request, and timeouts against an upstream that hangs.

Every upstream here is a route of this same server under ``/cache/upstream/...``, reached
over real loopback HTTP, and it counts what reaches it: calls per key (what the cache
saved) and the distinct TCP connections of a run (what the shared client's pool saved).

Blocking mode: ``/cache/value`` drops the single flight, so concurrent misses for one key
all call the upstream (a cache stampede), and ``/cache/hanging`` calls the upstream with no
timeout at all. ``POST /cache/clients/run`` takes the client style as a parameter: the
per-request client is the pitfall itself.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Annotated

import httpx
from fastapi import APIRouter, FastAPI, HTTPException, Query, Request, status

from server.deps import BlockingMode
from server.disconnect import run_unless_disconnected
from server.errors import describe
from server.patterns.cache.client_runs import (
    ClientRunReport,
    ClientRunRequest,
    ConnectCounter,
    LatencyMs,
    explain_client_run,
    refuse_long_runs,
    run_clients,
)
from server.patterns.cache.client_runs import call_per_request as call_per_request
from server.patterns.cache.client_runs import call_shared as call_shared
from server.patterns.cache.deps import (
    CLIENT_TIMEOUT,
    MAX_HANG_S,
    CacheDep,
    Delay,
    Key,
    LedgerDep,
    SharedClient,
    Ttl,
    upstream_url,
)
from server.patterns.cache.deps import POOL_SIZE as POOL_SIZE
from server.patterns.cache.deps import CacheParts as CacheParts
from server.patterns.cache.models import (
    CachedValue,
    CacheStatsOut,
    Cleared,
    Computed,
    HangingOut,
)
from server.patterns.cache.ttl_cache import CacheClosed, TTLCache
from server.patterns.cache.upstream import UpstreamLedger
from server.patterns.cache.upstream_routes import upstream_router
from server.state import state_of

log = logging.getLogger("fastasync.cache")

#: entries the cache holds before it evicts the least recently used (small, to be seen)
CACHE_SIZE = 8


@asynccontextmanager
async def cache_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the cache, the upstream's ledger and the one shared client; close them after.

    ``trust_env=False``: the calls go to our own loopback address, never through a proxy
    named in the environment.
    """
    limits = httpx.Limits(max_connections=POOL_SIZE, max_keepalive_connections=POOL_SIZE)
    cache: TTLCache[str, Computed] = TTLCache(CACHE_SIZE)
    state = state_of(app)
    client = httpx.AsyncClient(limits=limits, timeout=CLIENT_TIMEOUT, trust_env=False)
    parts = CacheParts(cache, UpstreamLedger(), client)
    # exits in reverse: cache.close() cancels the computations in flight, then the client
    async with client, state.opened(CacheParts, parts, cache.close):
        yield


router = APIRouter(prefix="/cache", tags=["cache"], lifespan=cache_lifespan)
router.include_router(upstream_router)  # /cache/upstream/...: what the cache calls


# -- the TTL cache ---------------------------------------------------------------------------


async def fetch_from_upstream(client: httpx.AsyncClient, url: str, delay_s: float) -> Computed:
    """The slow computation behind the cache: one real HTTP call on the shared client."""
    response = await client.get(url, params={"delay_s": delay_s})
    response.raise_for_status()
    return Computed.model_validate(response.json())


@router.get(
    "/value/{key}",
    responses={
        502: {"description": "The upstream failed."},
        503: {"description": "The server is shutting down."},
        504: {"description": "The upstream did not answer in time."},
    },
)
async def cached_value(
    request: Request,
    key: Key,
    cache: CacheDep,
    client: SharedClient,
    ledger: LedgerDep,
    blocking: BlockingMode,
    delay_s: Delay = 0.3,
    ttl_s: Ttl = 10.0,
) -> CachedValue:
    """The value of ``key``: from the cache, or computed by the slow upstream and kept
    ``ttl_s`` seconds. Concurrent misses for one key share one upstream call."""
    url = upstream_url(request, f"compute/{key}")
    started = time.perf_counter()
    try:
        lookup = await cache.get_or_compute(
            key,
            lambda: fetch_from_upstream(client, url, delay_s),
            ttl_s,
            single_flight=not blocking,  # blocking mode: the stampede
        )
    except httpx.TimeoutException as exc:
        raise HTTPException(504, detail=f"upstream timed out: {describe(exc)}") from None
    except httpx.HTTPError as exc:
        raise HTTPException(502, detail=f"upstream failed: {describe(exc)}") from None
    except CacheClosed:
        raise HTTPException(503, detail="the server is shutting down") from None
    now = time.monotonic()
    return CachedValue(
        key=key,
        value=lookup.value.value,
        source=lookup.source,
        single_flight=not blocking,
        expired=lookup.expired,
        took_ms=round((time.perf_counter() - started) * 1000, 3),
        age_s=round(now - lookup.entry.stored_at, 3),
        expires_in_s=round(max(0.0, lookup.entry.expires_at - now), 3),
        computed_by_call=lookup.value.call,
        upstream_calls=ledger.calls(key),
    )


def stats_of(
    cache: TTLCache[str, Computed], ledger: UpstreamLedger, blocking: bool
) -> CacheStatsOut:
    """The stats response."""
    stats = cache.stats()
    return CacheStatsOut(
        **asdict(stats), single_flight=not blocking, upstream_calls=ledger.total_calls
    )


@router.get("/stats")
async def cache_stats(cache: CacheDep, ledger: LedgerDep, blocking: BlockingMode) -> CacheStatsOut:
    """Hits, misses, coalesced misses, expiries, evictions and what is in flight."""
    return stats_of(cache, ledger, blocking)


@router.delete("/entries")
async def clear_cache(
    cache: CacheDep,
    ledger: LedgerDep,
    blocking: BlockingMode,
    reset_stats: Annotated[bool, Query(description="Also zero the counters.")] = False,
) -> Cleared:
    """Drop every cached value (computations in flight go on)."""
    dropped = cache.clear()
    if reset_stats:
        cache.reset_stats()
    return Cleared(dropped=dropped, stats=stats_of(cache, ledger, blocking))


# -- one shared client versus a client per request -----------------------------------------


@router.post("/clients/run")
async def client_run(
    body: ClientRunRequest, request: Request, shared: SharedClient, ledger: LedgerDep
) -> ClientRunReport:
    """``n`` calls to the loopback upstream with one shared client or a client per call.

    Connections are counted at both ends: opened, from httpcore's trace of each call;
    seen, as the distinct client ``(host, port)`` pairs the upstream saw for this run.
    """
    refuse_long_runs(body)
    run = uuid.uuid4().hex[:16]
    url = upstream_url(request, "echo")
    began = time.perf_counter()
    connects = ConnectCounter()
    # Also when this handler is cancelled: no call of the run outlives it.
    work = await run_unless_disconnected(
        request, run_clients(body, shared, url, run, connects), name="cache:run"
    )
    if work.cancelled():
        log.info("client run %s cancelled: the caller went away", run)
        raise HTTPException(499, detail="the client went away; the run was cancelled")
    latencies, errors = work.result()
    wall = time.perf_counter() - began
    report = ClientRunReport(
        mode=body.mode,
        n=body.n,
        concurrency=body.concurrency,
        delay_s=body.delay_s,
        wall_ms=round(wall * 1000, 3),
        requests_per_s=round(len(latencies) / wall, 1) if wall > 0 else 0.0,
        ok=len(latencies),
        errors=len(errors),
        first_error=errors[0] if errors else None,
        connections_opened=connects.opened,
        connections_seen=ledger.connections(run),
        upstream_calls=ledger.run_calls(run),
        clients_created=body.n if body.mode == "per_request" else 0,
        latency_ms=LatencyMs.of(latencies),
        note="",
    )
    report.note = explain_client_run(report)
    return report


# -- timeouts against an upstream that hangs -----------------------------------------------


@router.get(
    "/hanging",
    responses={504: {"description": "The upstream did not answer within timeout_s."}},
)
async def fetch_hanging(
    request: Request,
    client: SharedClient,
    blocking: BlockingMode,
    hang_s: Annotated[
        float, Query(ge=0, le=MAX_HANG_S, description="How long the upstream hangs (0 to 30).")
    ] = 5.0,
    timeout_s: Annotated[
        float, Query(gt=0, le=10, description="This call's timeout (over 0, up to 10 s).")
    ] = 0.5,
) -> HangingOut:
    """Call an upstream that hangs ``hang_s``: with ``timeout_s`` it answers 504 in time.

    Blocking mode makes the call with no timeout at all, so the request waits the whole
    hang (here bounded; a real upstream may never answer).
    """
    timeout = None if blocking else httpx.Timeout(timeout_s)
    began = time.perf_counter()
    try:
        response = await client.get(
            upstream_url(request, "hang"), params={"hold_s": hang_s}, timeout=timeout
        )
        response.raise_for_status()
    except httpx.TimeoutException as exc:
        waited = (time.perf_counter() - began) * 1000
        raise HTTPException(
            status.HTTP_504_GATEWAY_TIMEOUT,
            detail=f"The upstream did not answer within the {timeout_s:g} s timeout "
            f"({describe(exc)}): gave up after {waited:.0f} ms instead of waiting "
            f"out its {hang_s:g} s hang.",
        ) from None
    except httpx.HTTPError as exc:
        raise HTTPException(502, detail=f"upstream failed: {describe(exc)}") from None
    waited = (time.perf_counter() - began) * 1000
    if blocking:
        note = (
            f"Blocking mode: no timeout, so this request waited the whole {waited:.0f} ms "
            "hang. An upstream that never answers would hold it (and its connection) "
            "for ever."
        )
    else:
        note = f"The upstream answered in {waited:.0f} ms, within the {timeout_s:g} s timeout."
    return HangingOut(
        hang_s=hang_s,
        timeout_s=None if blocking else timeout_s,
        waited_ms=round(waited, 3),
        note=note,
    )
