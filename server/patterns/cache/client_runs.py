"""One shared client versus a client per request: ``n`` calls to the loopback upstream.

Connections are counted at both ends: opened, from httpcore's trace of each call; seen,
as the distinct client ``(host, port)`` pairs the upstream saw for the run.
"""

from __future__ import annotations

import asyncio
import time
from typing import Literal

import httpx
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field

from fastasync_probe.monitor.records import percentile
from server.errors import describe
from server.json_types import JsonInt
from server.patterns.cache.deps import CLIENT_TIMEOUT, POOL_SIZE

#: longest client run accepted (estimated from its parameters): no request hangs for minutes
MAX_RUN_S = 60.0
#: loop time a new httpx.AsyncClient costs (measured ~20 ms: it loads the CA bundle into a
#: fresh SSL context), used only to refuse runs that would take too long
CLIENT_SETUP_S = 0.025

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

    @classmethod
    def of(cls, latencies_s: list[float]) -> LatencyMs:
        """The figures of a run's latencies (in seconds), interpolated between ranks."""
        ordered = sorted(latencies_s)
        return cls(
            p50=round(percentile(ordered, 50, interpolate=True) * 1000, 3),
            p99=round(percentile(ordered, 99, interpolate=True) * 1000, 3),
            max=round(max(ordered, default=0.0) * 1000, 3),
        )


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
                errors.append(describe(exc))
                continue
            latencies.append(time.perf_counter() - began)

    async with asyncio.TaskGroup() as group:
        for _ in range(min(body.concurrency, body.n)):
            group.create_task(worker())
    return latencies, errors


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
