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

import asyncio
import logging
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from typing import Annotated, Literal

import httpx
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field

from server.deps import BlockingMode, provided
from server.json_types import JsonInt
from server.patterns.cache.ttl_cache import CacheClosed, TTLCache
from server.patterns.cache.upstream import (
    UpstreamLedger,
    computed_value,
    disconnected,
    wait_unless_disconnected,
)
from server.state import state_of

log = logging.getLogger("fastasync.cache")

#: entries the cache holds before it evicts the least recently used (small, to be seen)
CACHE_SIZE = 8
#: the one shared client's pool: calls beyond it wait for a free connection
POOL_SIZE = 50
#: every call the shared client makes has these; a per-request client gets the same
CLIENT_TIMEOUT = httpx.Timeout(10.0, connect=2.0, pool=5.0)
MAX_DELAY_S = 5.0
MAX_HANG_S = 30.0
MAX_TTL_S = 300.0
#: longest client run accepted (estimated from its parameters): no request hangs for minutes
MAX_RUN_S = 60.0
#: loop time a new httpx.AsyncClient costs (measured ~20 ms: it loads the CA bundle into a
#: fresh SSL context), used only to refuse runs that would take too long
CLIENT_SETUP_S = 0.025


class Computed(BaseModel):
    """What the upstream computed for a key."""

    key: str
    value: str
    call: int = Field(description="The upstream's call count for this key, this call included.")


@asynccontextmanager
async def cache_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the cache, the upstream's ledger and the one shared client; close them after.

    ``trust_env=False``: the calls go to our own loopback address, never through a proxy
    named in the environment.
    """
    limits = httpx.Limits(max_connections=POOL_SIZE, max_keepalive_connections=POOL_SIZE)
    cache: TTLCache[str, Computed] = TTLCache(CACHE_SIZE)
    state = state_of(app)
    async with httpx.AsyncClient(limits=limits, timeout=CLIENT_TIMEOUT, trust_env=False) as http:
        state.provide(CacheParts, CacheParts(cache, UpstreamLedger(), http))
        try:
            yield
        finally:
            state.withdraw(CacheParts)
            await cache.close()  # cancels computations in flight before the client closes


router = APIRouter(prefix="/cache", tags=["cache"], lifespan=cache_lifespan)


@dataclass(frozen=True)
class CacheParts:
    """What the cache pattern's lifespan opens: the cache, the upstream's ledger, a client."""

    cache: TTLCache[str, Computed]
    #: what the loopback upstream has counted
    ledger: UpstreamLedger
    #: the one pooled client every call of this pattern shares (unless told not to)
    client: httpx.AsyncClient


PartsDep = Annotated[CacheParts, Depends(provided(CacheParts))]


async def get_cache(parts: PartsDep) -> TTLCache[str, Computed]:
    """The lifespan-owned TTL cache."""
    return parts.cache


async def get_ledger(parts: PartsDep) -> UpstreamLedger:
    """What the loopback upstream has counted."""
    return parts.ledger


async def get_shared_client(parts: PartsDep) -> httpx.AsyncClient:
    """The one pooled client every call of this pattern shares (unless told not to)."""
    return parts.client


CacheDep = Annotated[TTLCache[str, Computed], Depends(get_cache)]
LedgerDep = Annotated[UpstreamLedger, Depends(get_ledger)]
SharedClient = Annotated[httpx.AsyncClient, Depends(get_shared_client)]

Key = Annotated[
    str,
    Path(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="Cache key: 1-64 letters, digits, '_', '.', '-'.",
    ),
]
Delay = Annotated[
    float, Query(ge=0, le=MAX_DELAY_S, description="Seconds the upstream takes (0 to 5).")
]
Ttl = Annotated[
    float, Query(gt=0, le=MAX_TTL_S, description="Seconds a computed value stays (to 300).")
]


def upstream_url(request: Request, path: str) -> str:
    """The absolute URL of one of our upstream routes, on this server's own address."""
    base = state_of(request.app).base_url or str(request.base_url)
    return f"{base.rstrip('/')}/cache/upstream/{path}"


def describe_error(exc: BaseException) -> str:
    """``"ExceptionType: message"`` on one line (httpx timeouts often have no message)."""
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


# -- the upstream (a route of this same server) --------------------------------------------


@router.get("/upstream/compute/{key}")
async def upstream_compute(
    request: Request, key: Key, ledger: LedgerDep, delay_s: Delay = 0.3
) -> Computed:
    """The slow computation: takes ``delay_s``, then answers a digest of ``key``.

    Counts every call per key, so what the cache saved is counted where it is saved.
    """
    call = ledger.record_call(key)
    await wait_unless_disconnected(request, delay_s)
    return Computed(key=key, value=computed_value(key), call=call)


class EchoReply(BaseModel):
    """The upstream's answer to a client-run call."""

    run: str
    peer_port: int | None = Field(description="The caller's port: one per TCP connection.")


@router.get("/upstream/echo")
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
        await wait_unless_disconnected(request, delay_s)
    return EchoReply(run=run, peer_port=peer[1] if peer else None)


class HangReply(BaseModel):
    held_ms: float
    caller_gave_up: bool


@router.get("/upstream/hang")
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
    gave_up = await wait_unless_disconnected(request, hold_s)
    return HangReply(held_ms=round((time.perf_counter() - began) * 1000, 3), caller_gave_up=gave_up)


# -- the TTL cache ---------------------------------------------------------------------------


async def fetch_from_upstream(client: httpx.AsyncClient, url: str, delay_s: float) -> Computed:
    """The slow computation behind the cache: one real HTTP call on the shared client."""
    response = await client.get(url, params={"delay_s": delay_s})
    response.raise_for_status()
    return Computed.model_validate(response.json())


class CachedValue(BaseModel):
    """``GET /cache/value/{key}``."""

    key: str
    value: str
    source: Literal["hit", "miss", "coalesced"] = Field(
        description="hit: from the cache; miss: this request computed it; coalesced: it "
        "waited for a computation another request had started (single flight)."
    )
    single_flight: bool = Field(description="False in blocking mode: every miss computes.")
    expired: bool = Field(
        description="True: the key was cached but past its TTL, so it was computed again."
    )
    took_ms: float
    age_s: float = Field(description="How long ago the value was computed.")
    expires_in_s: float
    computed_by_call: int = Field(description="Which upstream call for this key produced it.")
    upstream_calls: int = Field(description="Calls the upstream has had for this key so far.")


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
        raise HTTPException(504, detail=f"upstream timed out: {describe_error(exc)}") from None
    except httpx.HTTPError as exc:
        raise HTTPException(502, detail=f"upstream failed: {describe_error(exc)}") from None
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


class CacheStatsOut(BaseModel):
    """``GET /cache/stats``: the cache's counters since the server started (or a reset)."""

    size: int
    maxsize: int
    hits: int
    misses: int = Field(description="Lookups that called the upstream.")
    coalesced: int = Field(description="Misses that waited for a computation in flight.")
    expired: int = Field(description="Entries found (or swept) past their TTL.")
    evictions: int = Field(description="Live entries dropped to stay within maxsize (LRU).")
    errors: int = Field(description="Computations that failed (never cached).")
    in_flight: int = Field(description="Computations running now.")
    single_flight: bool
    upstream_calls: int = Field(description="Calls the loopback upstream has served in all.")


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


class Cleared(BaseModel):
    dropped: int
    stats: CacheStatsOut


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


ClientMode = Literal["shared", "per_request"]


class ConnectCounter:
    """Counts the TCP connections httpx really opens, from httpcore's own trace events.

    Passed as the ``trace`` request extension: httpcore reports ``connect_tcp`` only when
    it opens a new connection, never when it reuses a pooled one.
    """

    def __init__(self) -> None:
        self.opened = 0

    async def __call__(self, event: str, info: dict[str, object]) -> None:
        if event == "connection.connect_tcp.complete":
            self.opened += 1


async def call_shared(
    client: httpx.AsyncClient, url: str, params: dict[str, str], connects: ConnectCounter
) -> None:
    """Right: every call borrows a pooled connection from the one lifespan-owned client."""
    response = await client.get(url, params=params, extensions={"trace": connects})
    response.raise_for_status()


async def call_per_request(url: str, params: dict[str, str], connects: ConnectCounter) -> None:
    """The pitfall: a new client per call. A new SSL context (the CA bundle loaded on the
    event loop, ~20 ms), a new TCP connection, no reuse, then all of it thrown away."""
    async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT, trust_env=False) as client:
        response = await client.get(url, params=params, extensions={"trace": connects})
        response.raise_for_status()


class ClientRunRequest(BaseModel):
    """``POST /cache/clients/run`` body."""

    # strict: JSON types, not Python's coercions (`"delay_s": false` is refused)
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)

    mode: ClientMode
    n: JsonInt = Field(100, ge=1, le=1000, description="Calls to make.")
    concurrency: JsonInt = Field(10, ge=1, le=POOL_SIZE, description="Calls in flight at once.")
    delay_s: float = Field(0.0, ge=0, le=1.0, description="Upstream latency per call.")


class LatencyMs(BaseModel):
    p50: float
    p99: float
    max: float


class ClientRunReport(BaseModel):
    """What a client run did, counted at both ends."""

    mode: ClientMode
    n: int
    concurrency: int
    delay_s: float
    wall_ms: float
    requests_per_s: float
    ok: int
    errors: int
    first_error: str | None
    connections_opened: int = Field(
        description="TCP connections the run's clients opened (httpcore connect_tcp events)."
    )
    connections_seen: int = Field(
        description="Distinct client ports the upstream saw this run's calls arrive from: "
        "new connections plus kept-alive ones. A lower bound: on loopback Linux may give a "
        "closed connection's port to a new one within the same run."
    )
    upstream_calls: int = Field(description="Calls of this run that reached the upstream.")
    clients_created: int
    latency_ms: LatencyMs
    note: str


def refuse_long_runs(body: ClientRunRequest) -> None:
    """422 for a run that could take longer than ``MAX_RUN_S``."""
    waiting = body.n * body.delay_s / body.concurrency
    setup = body.n * CLIENT_SETUP_S if body.mode == "per_request" else 0.0
    if waiting + setup <= MAX_RUN_S:
        return
    message = (
        f"This run could take {waiting + setup:.0f} s, over the {MAX_RUN_S:g} s limit. "
        "Lower n or delay_s, or raise concurrency."
    )
    raise RequestValidationError(
        [{"type": "value_error", "loc": ("body",), "msg": message, "input": body.model_dump()}]
    )


async def run_clients(
    body: ClientRunRequest, shared: httpx.AsyncClient, url: str, run: str, connects: ConnectCounter
) -> tuple[list[float], list[str]]:
    """``body.n`` calls, ``body.concurrency`` at a time; their latencies and errors."""
    params = {"run": run, "delay_s": str(body.delay_s)}
    latencies: list[float] = []
    errors: list[str] = []
    remaining = body.n

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            began = time.perf_counter()
            try:
                if body.mode == "shared":
                    await call_shared(shared, url, params, connects)
                else:
                    await call_per_request(url, params, connects)
            except httpx.HTTPError as exc:
                errors.append(describe_error(exc))
                continue
            latencies.append(time.perf_counter() - began)

    async with asyncio.TaskGroup() as group:
        for _ in range(min(body.concurrency, body.n)):
            group.create_task(worker())
    return latencies, errors


def percentile_ms(values: list[float], q: float) -> float:
    """The ``q`` quantile in milliseconds (0 when there is nothing)."""
    if not values:
        return 0.0
    if len(values) == 1:
        return round(values[0] * 1000, 3)
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return round(cuts[min(98, max(0, round(q * 100) - 1))] * 1000, 3)


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
    work = asyncio.create_task(run_clients(body, shared, url, run, connects), name="cache:run")
    gone = asyncio.create_task(disconnected(request), name="cache:run-watch")
    try:
        await asyncio.wait({work, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        # Also when this handler is cancelled: no call of the run outlives it.
        gone.cancel()
        work.cancel()  # a no-op when the run has finished
        await asyncio.gather(work, gone, return_exceptions=True)
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
        latency_ms=LatencyMs(
            p50=percentile_ms(latencies, 0.5),
            p99=percentile_ms(latencies, 0.99),
            max=round(max(latencies, default=0.0) * 1000, 3),
        ),
        note="",
    )
    report.note = explain_client_run(report)
    return report


def explain_client_run(report: ClientRunReport) -> str:
    """One or two sentences for the pane."""
    if report.mode == "shared":
        kept = report.connections_seen - report.connections_opened
        return (
            f"One pooled client: {report.ok} calls over {report.connections_seen} TCP "
            f"connection(s), {report.connections_opened} opened by this run and {max(0, kept)} "
            f"kept alive from earlier ones: {report.requests_per_s:.0f} requests/s."
        )
    return (
        f"A new client per call: {report.clients_created} clients, "
        f"{report.connections_opened} TCP connections opened and closed, "
        f"{report.requests_per_s:.0f} requests/s. Each client also built an SSL context "
        "on the event loop (~20 ms of blocked loop each): see the stalls."
    )


# -- timeouts against an upstream that hangs -----------------------------------------------


class HangingOut(BaseModel):
    """``GET /cache/hanging`` when the upstream answered (in blocking mode: at last)."""

    hang_s: float
    timeout_s: float | None = Field(description="None: the call had no timeout (blocking mode).")
    waited_ms: float
    note: str


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
            f"({describe_error(exc)}): gave up after {waited:.0f} ms instead of waiting "
            f"out its {hang_s:g} s hang.",
        ) from None
    except httpx.HTTPError as exc:
        raise HTTPException(502, detail=f"upstream failed: {describe_error(exc)}") from None
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
