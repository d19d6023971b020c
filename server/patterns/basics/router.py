"""Basics: the five ways to write a FastAPI handler, and what each does to the loop.

In blocking mode ``/basics/async`` and ``/basics/offload`` take their pitfall form; the
``blocking`` and ``cpu`` styles are the pitfalls themselves, always on.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from server.deps import BlockingMode, CpuPoolDep
from server.patterns.basics.work import crunch, crunch_in_worker

router = APIRouter(prefix="/basics", tags=["basics"])

Style = Literal["async", "sync", "blocking", "cpu", "offload"]

MAX_DELAY_S = 10.0
MAX_WORK = 20_000_000

Delay = Annotated[
    float, Query(ge=0, le=MAX_DELAY_S, description="Seconds the handler waits (0 to 10).")
]
Work = Annotated[
    int,
    Query(ge=1, le=MAX_WORK, description="Steps of CPU work, about 50 ns each (1 to 20,000,000)."),
]


class HandlerReport(BaseModel):
    """What the handler did, measured on the server."""

    style: Style
    blocking_mode: bool = Field(description="Whether blocking mode was on for this request.")
    delay_s: float | None = None
    n: int | None = None
    handler_ms: float = Field(description="Time spent inside the handler.")
    started_at: float = Field(description="Unix time (s) the handler began.")
    ended_at: float = Field(description="Unix time (s) the handler was done.")
    thread: str = Field(description="Thread the handler ran on.")
    process: int = Field(description="PID of the process that did the work.")
    result: int | None = None


class PoolReport(BaseModel):
    """The CPU process pool: whether this call started it, and what starting it cost."""

    workers: int = Field(description="Worker processes in the pool.")
    started_now: bool = Field(description="Whether this call started the pool.")
    startup_ms: float | None = Field(
        description="What starting the pool took, every worker answering once (None: "
        "it was started by a CPU request itself, so its start-up was not measured apart)."
    )


@dataclass(frozen=True)
class Started:
    """When a handler began, on both clocks: perf_counter to time it, unix to place it."""

    perf: float
    unix: float


def _started() -> Started:
    return Started(time.perf_counter(), time.time())


def _report(
    style: Style,
    blocking: bool,
    started: Started,
    *,
    delay_s: float | None = None,
    n: int | None = None,
    result: int | None = None,
    process: int | None = None,
) -> HandlerReport:
    return HandlerReport(
        style=style,
        blocking_mode=blocking,
        delay_s=delay_s,
        n=n,
        handler_ms=(time.perf_counter() - started.perf) * 1000.0,
        started_at=started.unix,
        ended_at=time.time(),
        thread=threading.current_thread().name,
        process=process if process is not None else os.getpid(),
        result=result,
    )


@router.get("/async")
async def async_sleep(delay: Delay, blocking: BlockingMode) -> HandlerReport:
    """``async def`` + ``await``: while this request waits, the loop serves everyone else."""
    started = _started()
    if blocking:
        time.sleep(delay)  # noqa: ASYNC251 - pitfall: freezes the whole loop
    else:
        await asyncio.sleep(delay)
    return _report("async", blocking, started, delay_s=delay)


@router.get("/sync")
def sync_sleep(delay: Delay, blocking: BlockingMode) -> HandlerReport:
    """Plain ``def``: FastAPI runs it on the threadpool, so a blocking call is safe here."""
    started = _started()
    time.sleep(delay)  # fine: this is a worker thread, not the loop
    return _report("sync", blocking, started, delay_s=delay)


@router.get("/blocking")
async def blocking_sleep(delay: Delay, blocking: BlockingMode) -> HandlerReport:
    """The classic mistake, always on: ``time.sleep`` inside ``async def``."""
    started = _started()
    time.sleep(delay)  # noqa: ASYNC251 - pitfall: nothing else runs meanwhile
    return _report("blocking", blocking, started, delay_s=delay)


@router.get("/cpu")
async def cpu_inline(n: Work, blocking: BlockingMode) -> HandlerReport:
    """CPU work inside ``async def``: there is no await, so the loop stalls throughout."""
    started = _started()
    result = crunch(n)  # pitfall: CPU-bound work on the event loop
    return _report("cpu", blocking, started, n=n, result=result)


@router.get("/offload")
async def cpu_offloaded(n: Work, blocking: BlockingMode, pool: CpuPoolDep) -> HandlerReport:
    """CPU work sent to a worker process; the handler just awaits the result."""
    started = _started()
    if blocking:
        result, pid = crunch(n), os.getpid()  # pitfall: the work stays on the loop
    else:
        result, pid = await pool.run(crunch_in_worker, n)
    return _report("offload", blocking, started, n=n, result=result, process=pid)


@router.post("/pool")
async def start_pool(pool: CpuPoolDep) -> PoolReport:
    """Start the CPU process pool now (a no-op when it runs), timing its start-up apart.

    The first offloaded call otherwise pays for starting the workers: a fresh Python
    interpreter each, importing the work module. Call this first to keep that cost out of
    a measurement (or start the pool in the app's lifespan).
    """
    startup_s = await pool.start()
    known = startup_s if startup_s is not None else pool.startup_s
    return PoolReport(
        workers=pool.workers,
        started_now=startup_s is not None,
        startup_ms=None if known is None else known * 1000.0,
    )
