"""Supervision: every job runs in a task the store keeps, and every outcome is recorded.

:class:`JobSupervisor` is the part of :class:`~server.patterns.tasks.jobs.JobStore` that
runs jobs: it keeps a strong reference to each task it creates (the loop only holds tasks
weakly), records each outcome on the job (done; failed with the exception's text;
cancelled with its reason, a timeout included) and, at shutdown, cancels what is left and
records it. What a change of state then does (persist, broadcast) is the store's
:meth:`~JobSupervisor._publish`.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any

from server.errors import describe
from server.patterns.tasks.models import State
from server.patterns.tasks.records import (
    SHUTDOWN,
    UNHEARD,
    Batch,
    Job,
    JobTimedOut,
    outcome_of,
    perform,
    utc_now,
)

log = logging.getLogger("fastasync.jobs")

#: how long shutdown waits for cancelled tasks to unwind before giving up on them
CANCEL_WAIT_S = 1.0


class JobSupervisor(ABC):
    """Runs jobs in tasks it keeps, times them out, records how each one ended."""

    def __init__(self, job_timeout_s: float) -> None:
        self.job_timeout_s = job_timeout_s
        self._jobs: dict[int, Job] = {}
        # Strong references to every task the store creates; the done callback drops them.
        self._tasks: set[asyncio.Task[Any]] = set()
        # The pitfall's tasks, held weakly: only so shutdown can cancel the ones still alive.
        self._unsupervised: weakref.WeakSet[asyncio.Task[Any]] = weakref.WeakSet()
        # Unfinished supervised jobs (everything but the pitfall's), for the bounds and
        # for knowing when shutdown may stop waiting.
        self._unfinished = 0
        self._settled = asyncio.Event()
        self._closing = False

    @abstractmethod
    def _publish(self, job: Job) -> None:
        """``job`` changed: tell whoever needs to know. Must never wait."""

    # -- shutdown -------------------------------------------------------------------------

    def _busy(self) -> bool:
        return self._unfinished > 0 or any(not t.done() for t in self._unsupervised)

    def _check_settled(self) -> None:
        if self._closing and not self._busy():
            self._settled.set()

    async def _cancel_everything(self, spare: asyncio.Task[Any]) -> None:
        """Cancel workers, job tasks and the pitfall's live tasks (all but ``spare``, which
        ends on its own); wait for them to unwind."""
        unsupervised = [t for t in self._unsupervised if not t.done()]
        tasks = [t for t in self._tasks if t is not spare and not t.done()]
        for task in tasks + unsupervised:
            task.cancel(SHUTDOWN)
        cut_off = set(unsupervised)
        if tasks or unsupervised:
            done, pending = await asyncio.wait(tasks + unsupervised, timeout=CANCEL_WAIT_S)
            for task in done:
                # Retrieve every outcome, so asyncio has nothing "never retrieved" to report.
                if not task.cancelled() and task.exception() is not None:
                    log.debug("task %s ended with %r", task.get_name(), task.exception())
            if pending:
                log.error("%d job task(s) ignored cancellation at shutdown", len(pending))
        for job in list(self._jobs.values()):
            orphan = job.unsupervised() if job.unsupervised is not None else None
            if not job.finished and orphan is not None and orphan in cut_off:
                self._finish(job, "cancelled", SHUTDOWN)

    def _record_leftovers(self) -> None:
        """Whatever is still unfinished gets its final state now: nothing stays "running"."""
        cancelled = lost = 0
        for job in list(self._jobs.values()):
            if job.finished:
                continue
            if job.unsupervised is not None:
                self._finish(job, "lost", UNHEARD)
                lost += 1
            else:
                self._finish(job, "cancelled", SHUTDOWN)
                cancelled += 1
        if cancelled or lost:
            log.info("shutdown: %d job(s) recorded cancelled, %d recorded lost", cancelled, lost)

    # -- tasks ----------------------------------------------------------------------------

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        """Create a task the store keeps until it ends; an unexpected error is logged."""
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_ended)
        return task

    def _task_ended(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None and not task.get_name().startswith("job-"):
            # Store machinery never raises on purpose: this is a bug, show all of it.
            log.error("task %s crashed: %r", task.get_name(), error, exc_info=error)

    # -- running and recording -----------------------------------------------------------

    def _start(self, job: Job, batch: Batch | None = None) -> None:
        job.started = time.perf_counter()
        job.started_at = utc_now()
        job.state = "running"
        if batch is not None and batch.sent_at is not None:
            job.response_sent_ms = round((job.started - batch.sent_at) * 1000.0, 3)
        self._publish(job)

    def _finish(self, job: Job, state: State, error: str | None = None) -> None:
        """Record a final state. The first outcome wins; later ones are ignored."""
        if job.finished:
            return
        job.state = state
        job.error = error
        job.finished_at = utc_now()
        if job.started is not None:
            job.duration_ms = round((time.perf_counter() - job.started) * 1000.0, 3)
        if job.unsupervised is None:
            self._unfinished -= 1
        if state == "failed":
            log.warning("job %d (%s, %s) failed: %s", job.id, job.kind, job.origin, error)
        elif state == "cancelled" and error != SHUTDOWN:
            log.warning("job %d (%s, %s) cancelled: %s", job.id, job.kind, job.origin, error)
        self._publish(job)
        self._check_settled()

    async def _attempt(self, job: Job, batch: Batch | None = None) -> None:
        """Start the job and perform it within the timeout; raises whatever it raised."""
        self._start(job, batch)
        deadline = asyncio.timeout(self.job_timeout_s)
        try:
            async with deadline:
                await perform(job)
        except TimeoutError:
            if not deadline.expired():
                raise  # the job's own TimeoutError: a plain failure
            raise JobTimedOut(f"job exceeded {self.job_timeout_s} s") from None

    def _record(self, job: Job, error: BaseException | None) -> None:
        """Record how an attempt ended: ``None`` for success, or what it raised."""
        if error is None:
            self._finish(job, "done")
        elif isinstance(error, asyncio.CancelledError):
            self._finish(job, "cancelled", self._cancel_reason(error))
        elif isinstance(error, JobTimedOut):
            self._finish(job, "cancelled", f"TimeoutError: {error}")
        else:
            self._finish(job, "failed", describe(error))

    def _cancel_reason(self, error: asyncio.CancelledError) -> str:
        # Only shutdown cancels jobs here (the store's close, or uvicorn cancelling request
        # tasks, which run the background jobs, after its graceful timeout).
        message = " ".join(str(a) for a in error.args)
        if self._closing or "shutdown" in message:
            return SHUTDOWN
        return f"cancelled{f': {message}' if message else ''}"

    async def run(self, job: Job, batch: Batch | None = None) -> None:
        """Run a job to its end and record the outcome. Raises only ``CancelledError``.

        The supervised form the queue workers, ``BackgroundTasks`` (with the request's
        ``batch``) and debounce use: a failure is recorded and swallowed here on purpose,
        so the next job still runs.
        """
        try:
            await self._attempt(job, batch)
        except asyncio.CancelledError as exc:
            self._record(job, exc)
            if batch is not None:
                # The request's task is going away: the jobs queued after this one in it
                # will never start. Say so now rather than leave them "pending".
                for later in batch.jobs:
                    if later.state == "pending":
                        self._finish(later, "cancelled", self._cancel_reason(exc))
            raise
        except Exception as exc:
            self._record(job, exc)
        else:
            self._record(job, None)

    def spawn(self, job: Job) -> None:
        """Fire and forget, done right: a task the store keeps, whose outcome it records."""
        task = self._spawn(self._attempt(job), f"job-{job.id}")
        task.add_done_callback(lambda t: self._record(job, outcome_of(t)))

    def tasks(self) -> Iterator[asyncio.Task[Any]]:
        """The store's live tasks (workers, writer, jobs) and the pitfall's live ones."""
        yield from (t for t in self._tasks if not t.done())
        yield from (t for t in self._unsupervised if not t.done())
