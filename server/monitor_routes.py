"""The loop monitor over HTTP: the same figures the UI reads in-process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import BaseModel, ConfigDict, Field

from server.deps import BlockingSwitchDep, MonitorDep
from server.process_stats import ProcessStats

router = APIRouter(prefix="/monitor", tags=["monitor"])


class LagMs(BaseModel):
    """Event-loop lag percentiles in milliseconds."""

    p50: float
    p95: float
    p99: float
    max: float


class StallOut(BaseModel):
    """A finished stall: how long the loop was stuck, and on which line."""

    seq: int
    started_at: str = Field(description="ISO 8601 UTC start of the stall.")
    duration_ms: float = Field(description="Wall time the loop ran nothing else.")
    blocked_ms: float = Field(description="Off-CPU part: the blocking call (sleep, I/O, lock).")
    cpu_ms: float = Field(description="Loop-thread CPU time within the stall.")
    kind: str = Field(description="blocking (mostly off-CPU), cpu, or gc.")
    location: str | None = Field(description='"path:line in function" that was running.')
    route: str | None = Field(description="The request being handled, when there was one.")
    gc_ms: float
    stack: list[str]


class MonitorReport(BaseModel):
    """``GET /monitor``."""

    lag_ms: LagMs
    window_s: float = Field(description="How far back lag_ms looks.")
    samples: int
    utilization: float | None = Field(description="Busy share of the loop, 0..1.")
    blocking_mode: bool
    stall_count: int
    stall_total_ms: float
    stall_in_progress_ms: float | None
    stalls: list[StallOut]


class ProcessOut(BaseModel):
    """``GET /monitor/process``: the server process's footprint right now."""

    pid: int
    rss_bytes: int = Field(description="Resident memory now.")
    peak_rss_bytes: int = Field(description="Highest resident memory since the process began.")
    open_fds: int | None = Field(description="Open file descriptors (None without /proc).")
    threads: int | None = Field(description="OS threads, thread pools included.")
    asyncio_tasks: int = Field(description="Tasks alive on the server's event loop.")


class BlockingIn(BaseModel):
    """``PUT /monitor/blocking`` body."""

    # strict: `{"enabled": 0}` or `"yes"` is a 422, not a guess (the fuzzer found it)
    model_config = ConfigDict(extra="forbid", strict=True)
    enabled: bool


class BlockingOut(BaseModel):
    enabled: bool


@router.get("")
async def read_monitor(
    monitor: MonitorDep,
    switch: BlockingSwitchDep,
    window: Annotated[
        float, Query(gt=0, le=60, description="Seconds of lag samples to summarise.")
    ] = 10.0,
    after: Annotated[int, Query(ge=0, description="Only stalls with seq above this.")] = 0,
) -> MonitorReport:
    """Lag percentiles, utilization, blocking mode and the recent stalls."""
    snapshot = monitor.snapshot(window_s=window)
    return MonitorReport(
        lag_ms=LagMs(**snapshot.lag.as_dict()),
        window_s=window,
        samples=snapshot.lag.samples,
        utilization=snapshot.utilization,
        blocking_mode=switch.enabled,
        stall_count=snapshot.stall_count,
        stall_total_ms=round(snapshot.stall_total_ms, 3),
        stall_in_progress_ms=monitor.stall_in_progress_ms(),
        stalls=[StallOut(**s.as_dict()) for s in snapshot.stalls if s.seq > after],
    )


@router.get("/stream", response_class=EventSourceResponse)
async def stream_monitor(
    request: Request, monitor: MonitorDep, switch: BlockingSwitchDep
) -> AsyncIterator[ServerSentEvent]:
    """SSE: a ``lag`` event per sampling window, a ``stall`` event per stall.

    Polls the monitor once per window: the cost is one small read per subscriber per
    window, and it stops when the client goes away.
    """
    last_window = monitor.windows[-1].seq if monitor.windows else 0
    last_stall = max((s.seq for s in monitor.stalls), default=0)
    yield ServerSentEvent(event="hello", data={"blocking_mode": switch.enabled}, retry=2000)
    while not await request.is_disconnected():
        for window in [w for w in list(monitor.windows) if w.seq > last_window]:
            last_window = window.seq
            yield ServerSentEvent(event="lag", id=f"w{window.seq}", data=window.as_dict())
        for stall in monitor.stalls_after(last_stall):
            last_stall = stall.seq
            yield ServerSentEvent(event="stall", id=f"s{stall.seq}", data=stall.as_dict())
        await asyncio.sleep(monitor.config.window_s)


@router.get("/tasks")
async def read_tasks(
    monitor: MonitorDep,
    long_wait_s: Annotated[
        float, Query(ge=0.01, le=3600, description="A wait this long (s) is flagged long_wait.")
    ] = 1.0,
    limit: Annotated[
        int, Query(ge=1, le=1000, description="At most this many tasks listed.")
    ] = 200,
) -> dict[str, Any]:
    """Every task on the loop: where it is suspended, what it waits on, the request that
    created it, and flags (``in_cycle``: a deadlock, ``long_wait``, ``never_retrieved``,
    ``pending_at_shutdown``). ``cycles`` names each deadlock's tasks and locks."""
    return monitor.tasks.snapshot(long_wait_s=long_wait_s, limit=limit)


@router.get("/process")
async def read_process() -> ProcessOut:
    """Memory, file descriptors, threads and tasks: flat under steady load, or a leak."""
    return ProcessOut(**asdict(ProcessStats.now()))  # the same fields as ProcessStats


@router.put("/blocking")
async def set_blocking(body: BlockingIn, switch: BlockingSwitchDep) -> BlockingOut:
    """Switch blocking mode for the whole app (the UI's ``b`` key does the same)."""
    return BlockingOut(enabled=switch.set(body.enabled))
