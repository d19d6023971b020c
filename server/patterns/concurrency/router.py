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
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import httpx
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field

from server.deps import BlockingMode, provided
from server.json_types import JsonInt
from server.state import state_of

#: The demo client's pool: deliberately small, so an unbounded fan-out runs out of it.
POOL_SIZE = 10
#: How long a call may wait for a free pooled connection before httpx gives up.
POOL_TIMEOUT_S = 1.0
#: Read timeout of the demo client: an upstream slower than this fails with ReadTimeout.
READ_TIMEOUT_S = 10.0
#: Longest run the server accepts (estimated worst case), so no request hangs for minutes.
MAX_RUN_S = 60.0

MAX_LATENCY_S = 10.0
#: JSON's safe integer range: a larger seed would not survive a JavaScript client (and a
#: validator comparing through floats would misjudge the bound)
MAX_SEED = 2**53 - 1

Strategy = Literal[
    "sequential",
    "gather",
    "gather_exceptions",
    "taskgroup",
    "as_completed",
    "race",
    "timeout",
    "bounded",
    "unbounded",
]
#: What ran: a strategy, or one of the two pitfall forms that have no strategy of their own.
Effective = Strategy | Literal["no_timeout", "race_coroutines"]
TaskState = Literal["ok", "failed", "cancelled"]

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
    async with httpx.AsyncClient(limits=limits, timeout=timeout, trust_env=False) as client:
        state = state_of(app)
        state.provide(DemoClient, DemoClient(client))
        try:
            yield
        finally:
            state.withdraw(DemoClient)


router = APIRouter(prefix="/concurrency", tags=["concurrency"], lifespan=concurrency_lifespan)


@dataclass(frozen=True)
class DemoClient:
    """The lifespan-owned demo client with the small pool (this pattern's own)."""

    client: httpx.AsyncClient


async def get_concurrency_client(
    demo: Annotated[DemoClient, Depends(provided(DemoClient))],
) -> httpx.AsyncClient:
    """The lifespan-owned demo client with the small pool."""
    return demo.client


ConcurrencyClient = Annotated[httpx.AsyncClient, Depends(get_concurrency_client)]


# -- the simulated upstream ---------------------------------------------------------------

UpstreamName = Annotated[
    str,
    Path(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="Any short name (letters, digits, '_', '.', '-'); it seeds the draw.",
    ),
]
Latency = Annotated[
    float, Query(ge=0, le=MAX_LATENCY_S, description="Seconds the upstream waits (0 to 10).")
]
Jitter = Annotated[
    float,
    Query(ge=0, le=MAX_LATENCY_S, description="Up to this many seconds more or less (0 to 10)."),
]
FailRate = Annotated[
    float, Query(ge=0, le=1, description="Probability (0 to 1) that the call fails with 503.")
]
Seed = Annotated[
    int | None,
    Query(
        ge=-MAX_SEED,
        le=MAX_SEED,
        description="Makes the jitter and failure draw repeatable (together with the name).",
    ),
]


class UpstreamReply(BaseModel):
    """A simulated upstream's answer."""

    name: str
    slept_ms: float = Field(description="The latency drawn for this call (it slept that long).")


def simulated_outcome(
    name: str, latency: float, jitter: float, fail: float, seed: int | None
) -> tuple[float, bool]:
    """The upstream's draw: ``(seconds to sleep, whether it fails)``.

    With a seed the draw depends only on ``(seed, name)``, so a run is repeatable and each
    of its upstreams still draws differently. Both numbers are always drawn, in this order,
    so changing ``jitter`` does not change which calls fail.
    """
    rng = random.Random(f"{seed}:{name}") if seed is not None else random.Random()
    delay = max(0.0, latency + rng.uniform(-jitter, jitter))
    fails = rng.random() < fail
    return delay, fails


@router.get(
    "/upstream/{name}",
    responses={503: {"description": "The simulated failure: `{detail}` names the upstream."}},
)
async def upstream(
    request: Request,
    name: UpstreamName,
    latency: Latency = 0.2,
    jitter: Jitter = 0.0,
    fail: FailRate = 0.0,
    seed: Seed = None,
) -> UpstreamReply:
    """A slow, sometimes failing upstream: sleeps ``latency`` +- ``jitter``, then answers."""
    delay, fails = simulated_outcome(name, latency, jitter, fail, seed)
    # Sleep, unless the caller hangs up first (a cancelled race loser, a deadline). A remote
    # service would sleep on; this one lives in our process, and shutdown would wait for it.
    gone = asyncio.create_task(until_disconnected(request), name=f"upstream:{name}")
    try:
        await asyncio.wait([gone], timeout=delay)
    finally:
        gone.cancel()
        await asyncio.gather(gone, return_exceptions=True)
    if fails:
        raise HTTPException(503, detail=f"upstream {name} failed (simulated)")
    return UpstreamReply(name=name, slept_ms=round(delay * 1000.0, 3))


# -- a run: its request, its tasks, its report --------------------------------------------


class RunRequest(BaseModel):
    """``POST /concurrency/run`` body."""

    # NaN and Infinity parse as JSON numbers in Python: refuse them as not finite (the
    # app-wide 422 handler keeps the echo of such input encodable).
    # strict: `"failure_rate": false` or `"n": "5"` is refused, not coerced (the fuzzer
    # found them); JsonInt still takes 5.0, an integer to JSON Schema
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)

    strategy: Strategy
    n: JsonInt = Field(5, ge=1, le=200, description="How many upstream calls.")
    latency: float = Field(0.2, ge=0, le=MAX_LATENCY_S, description="Seconds per call.")
    jitter: float = Field(0.0, ge=0, le=MAX_LATENCY_S, description="+- seconds per call.")
    failure_rate: float = Field(0.0, ge=0, le=1, description="Probability a call fails.")
    timeout_s: float = Field(0.3, gt=0, le=30, description="Deadline of the timeout strategy.")
    limit: JsonInt = Field(5, ge=1, le=50, description="Calls in flight at once for bounded.")
    seed: JsonInt | None = Field(
        None, ge=-MAX_SEED, le=MAX_SEED, description="Repeatable jitter and failures."
    )


class TaskRecord(BaseModel):
    """One upstream call as the timeline draws it (milliseconds from the run's start)."""

    index: int
    label: str
    start_ms: float = Field(description="When the call began (for bounded: got its slot).")
    end_ms: float = Field(description="When it succeeded, failed or was cancelled.")
    state: TaskState
    error: str | None = Field(description='"ExceptionType: message" when it failed.')
    finally_ms: float | None = Field(description="When its finally block ran; None: never.")
    planned_ms: float = Field(
        description="The latency its upstream drew: how long the call would have taken "
        "had nothing cut it (a cancelled call ends before it)."
    )


class RunReport(BaseModel):
    """What a run did, task by task, and why."""

    strategy: Strategy = Field(description="The strategy asked for.")
    effective: Effective = Field(description="What ran (the pitfall form in blocking mode).")
    blocking_mode: bool
    wall_ms: float
    tasks: list[TaskRecord]
    ok: int
    failed: int
    cancelled: int
    winner: int | None = Field(description="race: index of the call that won.")
    completion_order: list[int] = Field(
        description="Indexes of the calls that finished (ok or failed), in finishing order."
    )
    error: str | None = Field(description="Run-level outcome: ExceptionGroup, TimeoutError...")
    seed: int = Field(description="The seed of the upstreams' draw (the request's, or drawn).")
    note: str = Field(description="What happened and why, in a sentence or two.")


class UpstreamError(Exception):
    """The upstream answered with an error status."""


@dataclass
class Slot:
    """One call's record, filled in while it runs."""

    index: int
    label: str
    start_ms: float | None = None
    end_ms: float | None = None
    finally_ms: float | None = None
    state: TaskState | None = None
    error: str | None = None

    @property
    def task_name(self) -> str:
        return f"concurrency:{self.label}"


def describe_error(exc: BaseException) -> str:
    """``"ExceptionType: message"``, readable on one line."""
    if isinstance(exc, httpx.PoolTimeout):  # httpx gives it no message of its own
        return f"PoolTimeout: no free connection among {POOL_SIZE} within {POOL_TIMEOUT_S:g} s"
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


class Run:
    """One run: the calls it makes, the tasks it creates, and what happened to each."""

    def __init__(self, request: RunRequest, client: httpx.AsyncClient, base_url: str) -> None:
        self.request = request
        self.client = client
        self.url = f"{base_url.rstrip('/')}/concurrency/upstream"
        self.slots = [Slot(i, f"up-{i}") for i in range(request.n)]
        self.completion_order: list[int] = []
        self.error: str | None = None
        self.winner: int | None = None
        # Strong references to every task created here: the loop only keeps weak ones.
        self._tasks: list[asyncio.Task[None]] = []
        self._params: dict[str, float | int] = {
            "latency": request.latency,
            "jitter": request.jitter,
            "fail": request.failure_rate,
        }
        # Always seeded: with no seed asked for, one drawn here. The run then knows what
        # each upstream drew, so it can say how long a cancelled call would have taken.
        self.seed = request.seed if request.seed is not None else random.randrange(MAX_SEED)
        self._params["seed"] = self.seed
        self._started = time.perf_counter()

    def planned_s(self, slot: Slot) -> float:
        """The latency ``slot``'s upstream draws (the upstream computes the same)."""
        request = self.request
        delay, _ = simulated_outcome(
            slot.label, request.latency, request.jitter, request.failure_rate, self.seed
        )
        return delay

    def now_ms(self) -> float:
        """Milliseconds since the run started."""
        return round((time.perf_counter() - self._started) * 1000.0, 3)

    async def call(self, slot: Slot) -> None:
        """One upstream call over HTTP, timed; a failure is recorded, then raised."""
        slot.start_ms = self.now_ms()
        try:
            response = await self.client.get(f"{self.url}/{slot.label}", params=self._params)
            if response.status_code != 200:
                raise UpstreamError(_detail_of(response))
            slot.state = "ok"
        except asyncio.CancelledError:
            slot.state = "cancelled"
            raise
        except Exception as exc:
            slot.state, slot.error = "failed", describe_error(exc)
            raise
        finally:
            # Where a real task releases what it holds. For a cancelled task this is the
            # moment the cancellation reached it.
            slot.end_ms = slot.finally_ms = self.now_ms()
            if slot.state != "cancelled":
                self.completion_order.append(slot.index)

    def spawn(
        self, slot: Slot, work: Coroutine[Any, Any, None] | None = None
    ) -> asyncio.Task[None]:
        """``asyncio.create_task`` for ``slot`` (its call unless ``work`` is given), kept."""
        task = asyncio.create_task(work or self.call(slot), name=slot.task_name)
        self._tasks.append(task)
        return task

    async def settle(self) -> None:
        """Cancel what still runs and await every task: nothing outlives the request.

        Runs even when the request itself is cancelled (the client went away).
        """
        for task in self._tasks:
            task.cancel()  # a no-op for finished tasks
        await asyncio.gather(*self._tasks, return_exceptions=True)  # also retrieves errors
        for slot in self.slots:
            if slot.start_ms is None:  # cancelled (or refused) before its call began
                slot.state, slot.error = "cancelled", "never started"
                slot.start_ms = slot.end_ms = self.now_ms()

    def report(self, strategy: Strategy, effective: Effective, blocking: bool) -> RunReport:
        """The finished run as the pane reads it."""
        wall_ms = self.now_ms()
        tasks = [
            TaskRecord(
                index=s.index,
                label=s.label,
                start_ms=s.start_ms or 0.0,
                end_ms=s.end_ms or 0.0,
                state=s.state or "cancelled",
                error=s.error,
                finally_ms=s.finally_ms,
                planned_ms=round(self.planned_s(s) * 1000.0, 3),
            )
            for s in self.slots
        ]
        counts = {state: sum(t.state == state for t in tasks) for state in ("ok", "failed")}
        report = RunReport(
            strategy=strategy,
            effective=effective,
            blocking_mode=blocking,
            wall_ms=wall_ms,
            tasks=tasks,
            ok=counts["ok"],
            failed=counts["failed"],
            cancelled=len(tasks) - counts["ok"] - counts["failed"],
            winner=self.winner,
            completion_order=self.completion_order,
            error=self.error,
            seed=self.seed,
            note="",
        )
        report.note = explain(report, self.request)
        return report


def _detail_of(response: httpx.Response) -> str:
    """The ``detail`` of an error response, or its status line."""
    try:
        detail = response.json().get("detail")
    except ValueError:
        detail = None
    return str(detail) if detail else f"HTTP {response.status_code}"


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
    "sequential": sequential,
    "gather": gather,
    "gather_exceptions": gather_exceptions,
    "taskgroup": taskgroup,
    "as_completed": as_completed,
    "race": race,
    "race_coroutines": race_coroutines,
    "timeout": timeout,
    "no_timeout": no_timeout,
    "bounded": bounded,
    "unbounded": unbounded,
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


async def until_disconnected(request: Request) -> None:
    """Return when the client goes away.

    The body has been read, so the server's next message is ``http.disconnect``: when the
    client closes the connection, or once the response is sent.
    """
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


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
    work = asyncio.create_task(execute(run, effective), name="concurrency:run")
    gone = asyncio.create_task(until_disconnected(request), name="concurrency:watch")
    try:
        await asyncio.wait({work, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        # Also when this handler is cancelled: no task of the run outlives it.
        gone.cancel()
        work.cancel()  # a no-op when the run has finished
        await asyncio.gather(work, gone, return_exceptions=True)
    if work.cancelled():
        run.error = "the client disconnected: the run was cancelled"
    elif (failure := work.exception()) is not None:
        raise failure  # a bug, not a lesson: let it be a logged 500
    return run.report(body.strategy, effective, blocking)


# -- the note ---------------------------------------------------------------------------------


def peak_overlap(tasks: list[TaskRecord]) -> int:
    """Most calls in flight at the same moment."""
    edges = sorted([(t.start_ms, 1) for t in tasks] + [(t.end_ms, -1) for t in tasks])
    peak = current = 0
    for _, step in edges:  # at a tie the end (-1) sorts first: back-to-back is no overlap
        current += step
        peak = max(peak, current)
    return peak


def explain(report: RunReport, body: RunRequest) -> str:
    """One or two sentences for the pane: what happened and why."""
    wall, n = report.wall_ms, len(report.tasks)
    pitfall = report.blocking_mode and report.effective != report.strategy
    if report.error and report.error.startswith("the client disconnected"):
        return (
            "The client went away mid-run, so the server cancelled the run and awaited "
            "every call it had started: nothing is left running."
        )
    match report.effective:
        case "sequential" if pitfall:
            return (
                f"Blocking mode: {report.strategy} became one await after another: the {n} "
                f"calls took {wall:.0f} ms, the sum of the calls, not the slowest."
            )
        case "sequential":
            return (
                f"Each call waited for the previous one: {n} calls took {wall:.0f} ms, the sum "
                "of their latencies. None needed another's result, so they could have overlapped."
            )
        case "gather" if report.error:
            return (
                "gather raised the first failure as soon as it happened, but did not cancel "
                "the other calls: they ran on to the end (awaited here, so none leaked). Use "
                "return_exceptions=True or a TaskGroup."
            )
        case "gather":
            return (
                f"asyncio.gather had all {n} calls in flight at once: {wall:.0f} ms, about the "
                "slowest call rather than the sum."
            )
        case "gather_exceptions":
            return (
                f"gather(return_exceptions=True) waited for every call and returned failures "
                f"as values: {report.ok} ok, {report.failed} failed, none cancelled."
            )
        case "taskgroup" if report.error:
            return (
                f"A call failed, so the TaskGroup cancelled its {report.cancelled} running "
                "sibling(s) and raised an ExceptionGroup with every failure: no call outlives "
                "the async with block."
            )
        case "taskgroup":
            return (
                f"The TaskGroup ran all {n} calls concurrently and left its async with block "
                f"only when every one had finished ({wall:.0f} ms)."
            )
        case "as_completed":
            order = ", ".join(str(i) for i in report.completion_order[:12])
            more = ", ..." if len(report.completion_order) > 12 else ""
            return (
                f"as_completed handed the results over in the order the calls finished "
                f"({order}{more}), not the order they were started."
            )
        case "race":
            return _explain_race(report)
        case "race_coroutines":
            return (
                "asyncio.wait() refuses bare coroutines since Python 3.11 (it takes tasks), "
                "so nothing ran: wrap each coroutine in asyncio.create_task() first."
            )
        case "timeout" if report.error:
            return (
                f"The {body.timeout_s:g} s deadline cancelled the {report.cancelled} call(s) "
                f"still running (at about {body.timeout_s * 1000:.0f} ms); {report.ok} "
                "finished in time."
            )
        case "timeout":
            return f"Every call finished within the {body.timeout_s:g} s deadline."
        case "no_timeout":
            return (
                f"Blocking mode dropped the timeout: the run lasted {wall:.0f} ms, as long as "
                f"its slowest call, where the {body.timeout_s:g} s deadline would have cut it."
            )
        case "bounded":
            return (
                f"A Semaphore({body.limit}) kept at most {body.limit} calls in flight (peak "
                f"{peak_overlap(report.tasks)}); the rest waited for a slot instead of queueing "
                f"in the {POOL_SIZE}-connection pool."
            )
        case _:
            return _explain_unbounded(report, pitfall)


def _explain_race(report: RunReport) -> str:
    if report.winner is None:
        return "Every call failed, so the race had no winner."
    winner = report.tasks[report.winner]
    losers = [t for t in report.tasks if t.state == "cancelled"]
    if not losers:
        return f"{winner.label} won at {winner.end_ms:.0f} ms; no call was left to cancel."
    last_finally = max(t.finally_ms or 0.0 for t in losers)
    return (
        f"{winner.label} answered first ({winner.end_ms:.0f} ms); the {len(losers)} losers "
        f"were cancelled and awaited, so their finally blocks ran at once (by "
        f"{last_finally:.0f} ms)."
    )


def _explain_unbounded(report: RunReport, pitfall: bool) -> str:
    start = "Blocking mode dropped the semaphore: all" if pitfall else "All"
    timed_out = sum(1 for t in report.tasks if (t.error or "").startswith("PoolTimeout"))
    if timed_out:
        return (
            f"{start} {len(report.tasks)} calls started at once against a pool of "
            f"{POOL_SIZE} connections; {timed_out} waited over {POOL_TIMEOUT_S:g} s for one "
            "and failed with PoolTimeout. Bound the fan-out to the pool size."
        )
    return (
        f"{start} {len(report.tasks)} calls started at once; the {POOL_SIZE}-connection "
        f"pool queued the excess, none for over {POOL_TIMEOUT_S:g} s this time. More or "
        "slower calls fail with PoolTimeout."
    )
