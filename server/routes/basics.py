"""Basics: the five ways to write a FastAPI handler, and what each does to the loop.

In blocking mode ``/basics/async`` and ``/basics/offload`` take their pitfall form; the
``blocking`` and ``cpu`` styles are the pitfalls themselves, always on.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from ..deps import BlockingMode, CpuPoolDep
from ..work import crunch, crunch_in_worker

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
    thread: str = Field(description="Thread the handler ran on.")
    process: int = Field(description="PID of the process that did the work.")
    result: int | None = None


def _report(
    style: Style,
    blocking: bool,
    started: float,
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
        handler_ms=(time.perf_counter() - started) * 1000.0,
        thread=threading.current_thread().name,
        process=process if process is not None else os.getpid(),
        result=result,
    )


@router.get("/async")
async def async_sleep(delay: Delay, blocking: BlockingMode) -> HandlerReport:
    """``async def`` + ``await``: while this request waits, the loop serves everyone else."""
    started = time.perf_counter()
    if blocking:
        time.sleep(delay)  # noqa: ASYNC251 - pitfall: freezes the whole loop
    else:
        await asyncio.sleep(delay)
    return _report("async", blocking, started, delay_s=delay)


@router.get("/sync")
def sync_sleep(delay: Delay, blocking: BlockingMode) -> HandlerReport:
    """Plain ``def``: FastAPI runs it on the threadpool, so a blocking call is safe here."""
    started = time.perf_counter()
    time.sleep(delay)  # fine: this is a worker thread, not the loop
    return _report("sync", blocking, started, delay_s=delay)


@router.get("/blocking")
async def blocking_sleep(delay: Delay, blocking: BlockingMode) -> HandlerReport:
    """The classic mistake, always on: ``time.sleep`` inside ``async def``."""
    started = time.perf_counter()
    time.sleep(delay)  # noqa: ASYNC251 - pitfall: nothing else runs meanwhile
    return _report("blocking", blocking, started, delay_s=delay)


@router.get("/cpu")
async def cpu_inline(n: Work, blocking: BlockingMode) -> HandlerReport:
    """CPU work inside ``async def``: there is no await, so the loop stalls throughout."""
    started = time.perf_counter()
    result = crunch(n)  # pitfall: CPU-bound work on the event loop
    return _report("cpu", blocking, started, n=n, result=result)


@router.get("/offload")
async def cpu_offloaded(n: Work, blocking: BlockingMode, pool: CpuPoolDep) -> HandlerReport:
    """CPU work sent to a worker process; the handler just awaits the result."""
    started = time.perf_counter()
    if blocking:
        result, pid = crunch(n), os.getpid()  # pitfall: the work stays on the loop
    else:
        result, pid = await pool.run(crunch_in_worker, n)
    return _report("offload", blocking, started, n=n, result=result, process=pid)
