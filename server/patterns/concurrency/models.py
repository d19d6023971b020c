"""The concurrency pattern's API: what a run is asked to do, and what it reports."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from server.json_types import JsonInt

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
