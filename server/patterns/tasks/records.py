"""A job's record and what it does: the mutable :class:`Job`, its request's :class:`Batch`,
the reasons a job ends without finishing, and :func:`perform`."""

from __future__ import annotations

import asyncio
import math
import weakref
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from server.patterns.tasks.models import JobOut, Kind, Origin, State

UNFINISHED: frozenset[State] = frozenset({"pending", "running"})

SHUTDOWN = "server shutdown"
CRASHED = "server stopped before it finished"
UNHEARD = "fire-and-forget task without a reference: its outcome was never reported"


def utc_now() -> str:
    """ISO 8601 UTC, to the millisecond."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class JobTimedOut(TimeoutError):
    """A supervised job ran past ``JOB_TIMEOUT_S``."""


@dataclass(eq=False)
class Batch:
    """The jobs one request handed to ``BackgroundTasks``, and when its response went out."""

    jobs: list[Job]
    #: perf_counter when the last byte of the response was sent (set by the route)
    sent_at: float | None = None


@dataclass(eq=False)
class Job:
    """A job's mutable record; :meth:`out` is the immutable snapshot sent anywhere else."""

    id: int
    kind: Kind
    origin: Origin
    duration_s: float
    created_at: str
    state: State = "pending"
    started_at: str | None = None
    finished_at: str | None = None
    duration_ms: float | None = None
    error: str | None = None
    request_id: str | None = None
    response_sent_ms: float | None = None
    #: perf_counter at start, for duration_ms
    started: float | None = field(default=None, repr=False)
    #: the fire-and-forget pitfall's task, held weakly (see run_unsupervised)
    unsupervised: weakref.ref[asyncio.Task[Any]] | None = field(default=None, repr=False)

    @property
    def finished(self) -> bool:
        return self.state not in UNFINISHED

    @property
    def evictable(self) -> bool:
        """May leave memory: finished, or the pitfall's whose task is gone or done."""
        if self.finished:
            return True
        task = self.unsupervised() if self.unsupervised is not None else None
        return self.unsupervised is not None and (task is None or task.done())

    def out(self) -> JobOut:
        """The immutable snapshot: every field of :class:`JobOut`, read from this record."""
        return JobOut.model_validate(self, from_attributes=True)


async def perform(job: Job) -> None:
    """What a job does. No error handling here: that is the caller's job (or its pitfall)."""
    if job.kind == "hang":
        # A timer that never fires: the loop's timer heap holds the task, so even an
        # unreferenced task is not garbage-collected mid-wait.
        await asyncio.sleep(math.inf)
    await asyncio.sleep(job.duration_s)
    if job.kind == "fail":
        raise ValueError(f"simulated failure in job {job.id}")


def outcome_of(task: asyncio.Task[Any]) -> BaseException | None:
    """A finished task's exception (``CancelledError`` if cancelled), retrieving it."""
    if task.cancelled():
        try:
            task.result()
        except asyncio.CancelledError as exc:
            return exc
    return task.exception()
