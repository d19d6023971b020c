"""Concurrency: nine ways to make n upstream calls, each timed task by task.

``POST /concurrency/run`` makes ``n`` calls to the server's own simulated upstream
(``GET /concurrency/upstream/{name}``) over real loopback HTTP, with one demo client whose
pool holds only 10 connections, and reports when every task started, ended and ran its
``finally``. In blocking mode each strategy takes its pitfall form: gather, TaskGroup and
as_completed become one await after another, the semaphore and the timeout are dropped,
and the race is the async-patterns guide's own (``asyncio.wait`` on bare coroutines).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError

from server.deps import BlockingMode
from server.disconnect import run_unless_disconnected
from server.patterns.concurrency.deps import (
    POOL_SIZE,
    POOL_TIMEOUT_S,
    READ_TIMEOUT_S,
    ConcurrencyClient,
)
from server.patterns.concurrency.deps import (
    DemoClient as DemoClient,
)
from server.patterns.concurrency.models import Effective, RunReport, RunRequest
from server.patterns.concurrency.models import Strategy as Strategy
from server.patterns.concurrency.run import Run, Slot, describe_error
from server.patterns.concurrency.upstream import simulated_outcome as simulated_outcome
from server.patterns.concurrency.upstream import upstream_router
from server.state import state_of

#: Longest run the server accepts (estimated worst case), so no request hangs for minutes.
MAX_RUN_S = 60.0

#: The pitfall form each strategy takes in blocking mode (the others stay as they are).
PITFALLS: dict[Strategy, Effective] = {
    "gather": "sequential",
    "gather_exceptions": "sequential",
    "taskgroup": "sequential",
    "as_completed": "sequential",
    "race": "race_coroutines",
    "timeout": "no_timeout",
    "bounded": "unbounded",
}


@asynccontextmanager
async def concurrency_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the demo client once; FastAPI runs this inside the app's own lifespan.

    One client for every run, so connections are pooled and reused. The pool is kept at
    10 connections on purpose: the ``unbounded`` strategy shows what happens when more
    calls than that start at once. ``trust_env=False``: the calls go to our own loopback
    address, never through a proxy named in the environment.
    """
    limits = httpx.Limits(max_connections=POOL_SIZE, max_keepalive_connections=POOL_SIZE)
    timeout = httpx.Timeout(READ_TIMEOUT_S, connect=2.0, pool=POOL_TIMEOUT_S)
    client = httpx.AsyncClient(limits=limits, timeout=timeout, trust_env=False)
    async with client, state_of(app).opened(DemoClient, DemoClient(client)):
        yield


router = APIRouter(prefix="/concurrency", tags=["concurrency"], lifespan=concurrency_lifespan)
router.include_router(upstream_router)  # GET /concurrency/upstream/{name}, the runs' upstream


# -- the strategies: what the code view shows -----------------------------------------------


async def sequential(run: Run) -> None:
    """One await after another: each call waits for the previous one to finish."""
    for slot in run.slots:
        with contextlib.suppress(Exception):  # recorded on the slot; go on with the next
            await run.call(slot)


async def gather(run: Run) -> None:
    """``asyncio.gather``: every call in flight at once; the first failure raises."""
    tasks = [run.spawn(slot) for slot in run.slots]
    try:
        await asyncio.gather(*tasks)
    except Exception as exc:
        run.error = f"gather raised {describe_error(exc)}"
        # gather did not cancel the other calls: they run on. Wait for them, to show it.
        await asyncio.wait(tasks)


async def gather_exceptions(run: Run) -> None:
    """``gather(return_exceptions=True)``: failures come back as values, nothing cancelled."""
    tasks = [run.spawn(slot) for slot in run.slots]
    # Nothing raises: each result is the call's return value or the exception it raised.
    await asyncio.gather(*tasks, return_exceptions=True)


async def taskgroup(run: Run) -> None:
    """``asyncio.TaskGroup``: the first failure cancels the siblings, then raises them all."""
    try:
        async with asyncio.TaskGroup() as tg:
            for slot in run.slots:
                tg.create_task(run.call(slot), name=slot.task_name)
    except* Exception as group:
        errors = "; ".join(describe_error(e) for e in group.exceptions[:3])
        more = ", ..." if len(group.exceptions) > 3 else ""
        run.error = f"ExceptionGroup: {group.message} ({len(group.exceptions)}): {errors}{more}"


async def as_completed(run: Run) -> None:
    """``asyncio.as_completed``: handle each result as soon as its call finishes."""
    tasks = [run.spawn(slot) for slot in run.slots]
    for next_done in asyncio.as_completed(tasks):
        with contextlib.suppress(Exception):  # a failure is one more result, in its turn
            await next_done


async def race(run: Run) -> None:
    """First answer wins: wait for FIRST_COMPLETED, then cancel the losers and await them."""
    pending = {run.spawn(slot) for slot in run.slots}
    while pending:
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        if any(task.exception() is None for task in done):
            break  # a success; a failed call only drops out of the race
    for loser in pending:
        loser.cancel()
    # Await the cancelled losers so their finally blocks run now, before we answer.
    await asyncio.gather(*pending, return_exceptions=True)
    run.winner = next((i for i in run.completion_order if run.slots[i].state == "ok"), None)


async def race_coroutines(run: Run) -> None:
    """The guide's race: ``asyncio.wait`` on bare coroutines, a TypeError since Python 3.11."""
    coroutines = [run.call(slot) for slot in run.slots]
    try:
        await asyncio.wait(coroutines, return_when=asyncio.FIRST_COMPLETED)  # type: ignore[type-var]
    except TypeError as exc:
        run.error = describe_error(exc)
    finally:
        for coroutine in coroutines:
            coroutine.close()  # never started: close it, or Python warns "never awaited"


async def timeout(run: Run) -> None:
    """``asyncio.timeout`` around a gather: the calls still running at the deadline are cut."""
    tasks = [run.spawn(slot) for slot in run.slots]
    try:
        async with asyncio.timeout(run.request.timeout_s):
            await asyncio.gather(*tasks, return_exceptions=True)
    except TimeoutError:
        # The deadline cancelled the gather, and the gather cancelled its unfinished calls.
        run.error = f"TimeoutError: the {run.request.timeout_s:g} s deadline passed"


async def no_timeout(run: Run) -> None:
    """The pitfall: the same gather with no deadline. The slowest upstream sets the pace."""
    tasks = [run.spawn(slot) for slot in run.slots]
    await asyncio.gather(*tasks, return_exceptions=True)


async def bounded(run: Run) -> None:
    """An ``asyncio.Semaphore(limit)`` around each call: at most ``limit`` in flight."""
    semaphore = asyncio.Semaphore(run.request.limit)

    async def call_when_free(slot: Slot) -> None:
        async with semaphore:  # waits here while `limit` calls are in flight
            await run.call(slot)

    tasks = [run.spawn(slot, call_when_free(slot)) for slot in run.slots]
    await asyncio.gather(*tasks, return_exceptions=True)


async def unbounded(run: Run) -> None:
    """The pitfall: all n calls at once. The excess queues in the 10-connection pool."""
    tasks = [run.spawn(slot) for slot in run.slots]
    await asyncio.gather(*tasks, return_exceptions=True)


StrategyFunction = Callable[[Run], Awaitable[None]]

#: The code that runs for each value of ``effective`` (the pane's code view shows it).
STRATEGY_FUNCTIONS: dict[str, StrategyFunction] = {
    function.__name__: function
    for function in (
        sequential,
        gather,
        gather_exceptions,
        taskgroup,
        as_completed,
        race,
        race_coroutines,
        timeout,
        no_timeout,
        bounded,
        unbounded,
    )
}


# -- the route ------------------------------------------------------------------------------


def effective_strategy(strategy: Strategy, blocking: bool) -> Effective:
    """What runs for ``strategy``: itself, or its pitfall form in blocking mode."""
    return PITFALLS.get(strategy, strategy) if blocking else strategy


def worst_case_s(body: RunRequest, effective: Effective) -> float:
    """An upper bound of the run's wall time, from its parameters."""
    per_call = min(body.latency + body.jitter, READ_TIMEOUT_S)
    if effective == "sequential":
        return body.n * per_call
    if effective == "bounded":
        return math.ceil(body.n / body.limit) * per_call
    if effective == "timeout":
        return min(body.timeout_s, per_call + POOL_TIMEOUT_S)
    if effective == "race_coroutines":
        return 0.0
    return per_call + POOL_TIMEOUT_S  # all at once; the excess waits for the pool


def refuse_long_runs(body: RunRequest, effective: Effective, blocking: bool) -> None:
    """422 for a run that could take longer than ``MAX_RUN_S``: a request must not hang."""
    estimate = worst_case_s(body, effective)
    if estimate <= MAX_RUN_S:
        return
    why = f"{body.n} calls of up to {body.latency + body.jitter:g} s, {effective}"
    if blocking and effective != body.strategy:
        why += f"; blocking mode turns {body.strategy} into {effective}"
    message = (
        f"This run could take {estimate:.0f} s ({why}), over the {MAX_RUN_S:g} s limit. "
        "Lower n, latency or jitter."
    )
    raise RequestValidationError(
        [{"type": "value_error", "loc": ("body",), "msg": message, "input": body.model_dump()}]
    )


async def execute(run: Run, effective: Effective) -> None:
    """Run the strategy, then make sure none of its tasks is left behind."""
    try:
        await STRATEGY_FUNCTIONS[effective](run)
    finally:
        await run.settle()


@router.post("/run")
async def run_strategy(
    body: RunRequest, request: Request, blocking: BlockingMode, client: ConcurrencyClient
) -> RunReport:
    """Make ``n`` upstream calls with ``strategy`` and report each task's timeline.

    The calls go over real loopback HTTP to ``/concurrency/upstream``. If the client
    disconnects mid-run, the run is cancelled with everything it started.
    """
    effective = effective_strategy(body.strategy, blocking)
    refuse_long_runs(body, effective, blocking)
    base_url = state_of(request.app).base_url or str(request.base_url)
    run = Run(body, client, base_url)
    # Also when this handler is cancelled: no task of the run outlives it.
    work = await run_unless_disconnected(request, execute(run, effective), name="concurrency:run")
    if work.cancelled():
        run.error = "the client disconnected: the run was cancelled"
    elif (failure := work.exception()) is not None:
        raise failure  # a bug, not a lesson: let it be a logged 500
    return run.report(body.strategy, effective, blocking)
