"""One run of the concurrency pattern: its calls, the tasks it creates, what happened to each."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

import httpx

from server.errors import describe
from server.patterns.concurrency.deps import POOL_SIZE, POOL_TIMEOUT_S
from server.patterns.concurrency.models import (
    MAX_SEED,
    Effective,
    RunReport,
    RunRequest,
    Strategy,
    TaskRecord,
    TaskState,
)
from server.patterns.concurrency.notes import explain
from server.patterns.concurrency.upstream import simulated_outcome


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
    """:func:`server.errors.describe`, but a PoolTimeout says what it waited for."""
    if isinstance(exc, httpx.PoolTimeout):  # httpx gives it no message of its own
        return f"PoolTimeout: no free connection among {POOL_SIZE} within {POOL_TIMEOUT_S:g} s"
    return describe(exc)


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
