"""The job store behind ``/tasks``: every background job, in memory and in SQLite.

One ``JobStore`` per app, opened and closed by the ``tasks`` router's lifespan. It owns
everything a job needs, so that the rules of the shared loop hold in one place:

- every task it creates is kept in a set until it ends (the loop only holds tasks weakly);
- every outcome is recorded on the job (done, failed with the exception's text, cancelled
  with its reason) and a failure is logged once, without a traceback;
- everything is bounded: the history in memory, the worker queue, the unfinished jobs,
  the debounce keys, each subscriber's buffer, and each job's run time (``JOB_TIMEOUT_S``);
- every state change is written to SQLite (one aiosqlite connection, one writer task), so
  the history survives a restart, and a job that a crash interrupted shows up as "lost";
- on shutdown unfinished jobs get a grace period, then are cancelled and recorded as
  cancelled: nothing disappears silently.

The one deliberate exception is :meth:`JobStore.run_unsupervised`, the fire-and-forget
pitfall: nobody holds its task and nobody hears its outcome (see its docstring).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import weakref
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from server.errors import describe
from server.patterns.tasks.debounce import Burst, Bursts
from server.patterns.tasks.journal import JobJournal
from server.patterns.tasks.models import STATES, JobOut, Kind, Origin, State
from server.patterns.tasks.records import CRASHED, SHUTDOWN, UNHEARD, Batch, Job, perform, utc_now
from server.patterns.tasks.supervisor import JobSupervisor

#: what the other patterns and the tests use from here (some are defined beside it)
__all__ = [
    "CRASHED",
    "DEBOUNCE_RUN_S",
    "HISTORY",
    "JOB_TIMEOUT_S",
    "QUEUE_SIZE",
    "SHUTDOWN",
    "STATES",
    "SUBSCRIBER_BUFFER",
    "UNHEARD",
    "WORKERS",
    "Batch",
    "JobStore",
    "StoreBusy",
    "StoreClosed",
]

log = logging.getLogger("fastasync.jobs")

#: jobs kept in memory (the newest; unfinished ones are never dropped)
HISTORY = 500
#: jobs that may wait in the worker queue, and the workers draining it
QUEUE_SIZE = 20
WORKERS = 2
#: the longest any supervised job may run; "hang" ends here, as cancelled
JOB_TIMEOUT_S = 3.0
#: unfinished jobs outside the worker queue (background, fire-and-forget, debounce)
MAX_UNFINISHED = 200
#: fire-and-forget pitfall tasks still running (nobody else bounds them)
MAX_UNSUPERVISED = 50
#: debounce keys waiting for quiet at once
MAX_DEBOUNCE_KEYS = 100
#: what one debounced run does
DEBOUNCE_RUN_S = 0.1
#: updates buffered per subscriber; a slow one loses its oldest, the store never waits
SUBSCRIBER_BUFFER = 256


class StoreBusy(Exception):
    """A bound was reached; the message says which (the API answers 503 with it)."""


class StoreClosed(StoreBusy):
    """The store is shutting down and takes no new work."""


class JobStore(JobSupervisor):
    """Jobs in memory (bounded) and in SQLite; the tasks that run them; their subscribers.

    Open with :meth:`open`, close with :meth:`close` (the router's lifespan does both).
    Running and recording is :class:`JobSupervisor`'s part; SQLite is the journal's.
    """

    def __init__(
        self,
        journal: JobJournal,
        *,
        queue_size: int = QUEUE_SIZE,
        workers: int = WORKERS,
        job_timeout_s: float = JOB_TIMEOUT_S,
        history: int = HISTORY,
    ) -> None:
        super().__init__(job_timeout_s)
        self._journal = journal
        self.history = history
        self.workers = workers
        self._queue: asyncio.Queue[Job] = asyncio.Queue(maxsize=queue_size)
        self._bursts = Bursts(MAX_DEBOUNCE_KEYS)
        self._subscribers: set[asyncio.Queue[JobOut]] = set()
        self._closed = False
        self._writer = self._spawn(self._journal.write_loop(), "jobs-writer")
        for n in range(workers):
            self._spawn(self._work_loop(), f"jobs-worker-{n + 1}")

    # -- opening and closing ---------------------------------------------------------------

    @classmethod
    async def open(cls, path: Path) -> JobStore:
        """Open (or create) the database at ``path`` and start the workers, with the
        module's bounds.

        Jobs a previous process left pending or running never finished: they are marked
        "lost" before anything else happens.
        """
        journal, jobs = await JobJournal.open(path, HISTORY)
        store = cls(journal)
        for job in jobs:
            store._jobs[job.id] = job
        return store

    @property
    def closing(self) -> bool:
        """Shutdown has begun: no new jobs."""
        return self._closing

    @property
    def closed(self) -> bool:
        """Shut down: every job recorded, every task ended, the database closed."""
        return self._closed

    async def close(self, grace_s: float) -> None:
        """Give unfinished jobs ``grace_s`` seconds, then cancel and record them; close the db.

        Every job still pending or running after the grace period ends as "cancelled" with
        reason "server shutdown" (the pitfall's jobs whose outcome never came back end as
        "lost"), is written to SQLite, and no task of the store outlives this call.
        """
        if self._closing:
            return
        self._closing = True
        # Nested finally blocks: if whoever runs the shutdown gives up on it (cancels this
        # call), the jobs are still cancelled and recorded and the database still closed.
        try:
            if self._busy():
                log.info("waiting up to %.1f s for unfinished jobs", grace_s)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(grace_s):
                        await self._settled.wait()
        finally:
            try:
                await self._cancel_everything(spare=self._writer)
                self._record_leftovers()
            finally:
                try:
                    await self._journal.close(self._writer)
                finally:
                    self._closed = True

    # -- workers --------------------------------------------------------------------------

    async def _work_loop(self) -> None:
        """A worker: take the next queued job, run it, repeat. ``run`` never raises."""
        while True:
            job = await self._queue.get()
            try:
                await self.run(job)
            finally:
                self._queue.task_done()

    # -- jobs -----------------------------------------------------------------------------

    async def create(
        self,
        kind: Kind,
        duration_s: float,
        *,
        origin: Origin,
        request_id: str | None = None,
    ) -> Job:
        """Record a new pending job (its id is the SQLite rowid). Raises :class:`StoreBusy`."""
        self._check_open()
        self._check_room(origin, 1)
        created_at = utc_now()
        try:
            job_id = await self._journal.insert(kind, origin, duration_s, created_at, request_id)
        except (sqlite3.Error, ValueError) as exc:  # ValueError: the connection is closed
            log.error("could not record a new job: %s", describe(exc))
            raise StoreBusy(f"job store unavailable ({describe(exc)})") from exc
        if job_id is None:  # pragma: no cover - sqlite always has a last_insert_rowid
            raise StoreBusy("job store unavailable (no rowid)")
        job = Job(
            id=job_id,
            kind=kind,
            origin=origin,
            duration_s=duration_s,
            created_at=created_at,
            request_id=request_id,
        )
        self._unfinished += 1
        self._jobs[job.id] = job
        self._evict()
        self._publish(job)
        return job

    async def create_batch(self, specs: Sequence[tuple[Kind, float]], *, request_id: str) -> Batch:
        """Record the jobs of one ``BackgroundTasks`` request: all of them, or none.

        The room for the whole batch is checked first; if recording fails halfway, the
        jobs already recorded are cancelled with the reason rather than left pending.
        """
        self._check_open()
        self._check_room("background", len(specs))
        batch = Batch([])
        try:
            for kind, duration_s in specs:
                batch.jobs.append(
                    await self.create(kind, duration_s, origin="background", request_id=request_id)
                )
        except BaseException as exc:
            for job in batch.jobs:
                self._finish(job, "cancelled", f"request failed: {describe(exc)}")
            raise
        return batch

    def _check_room(self, origin: Origin, count: int) -> None:
        """Raise :class:`StoreBusy` if ``count`` more jobs from ``origin`` would pass a bound."""
        if origin != "queue" and self._unfinished + count > MAX_UNFINISHED:
            raise StoreBusy(f"too many unfinished jobs ({MAX_UNFINISHED})")
        if origin == "fire_and_forget":
            alive = sum(1 for t in self._unsupervised if not t.done())
            if alive + count > MAX_UNSUPERVISED:
                raise StoreBusy(f"too many unsupervised tasks still running ({MAX_UNSUPERVISED})")

    def _check_open(self) -> None:
        if self._closing:
            raise StoreClosed("server shutting down: no new jobs")

    def _evict(self) -> None:
        """Drop the oldest finished jobs beyond ``history`` (SQLite keeps them)."""
        excess = len(self._jobs) - self.history
        if excess <= 0:
            return
        doomed = []
        for job in self._jobs.values():  # oldest first
            if job.evictable:
                doomed.append(job.id)
                if len(doomed) == excess:
                    break
        for job_id in doomed:
            del self._jobs[job_id]

    async def run_unsupervised(self, job: Job) -> None:
        """The fire-and-forget pitfall's body: start, perform, and tell nobody how it ended.

        Launched as ``asyncio.create_task(store.run_unsupervised(job))`` with the task
        thrown away. So:

        - the record says "running" forever: success, failure and timeout alike go
          unheard (there is no timeout either, so "hang" runs until shutdown);
        - an exception is swallowed; asyncio may log "Task exception was never retrieved"
          when the task is garbage-collected, long after the fact;
        - only the event loop's weak set references the task. Here a pending timer keeps it
          alive, but a task waiting on something nothing else references can be collected
          mid-flight.

        The store watches the task weakly (it does not keep it alive), only so that the
        demo stays bounded: ``MAX_UNSUPERVISED`` at once, and on shutdown a live one is
        cancelled and recorded "cancelled", a finished one recorded "lost".
        """
        task = asyncio.current_task()
        if task is not None:
            self._unsupervised.add(task)
            task.add_done_callback(lambda _: self._check_settled())
            job.unsupervised = weakref.ref(task)
            self._unfinished -= 1  # counted as a live unsupervised task from now on
        self._start(job)
        await perform(job)

    async def enqueue(self, kind: Kind, duration_s: float) -> Job:
        """Queue a job for the workers; :class:`StoreBusy` when the queue is full."""
        self._check_open()
        if self._queue.full():
            raise StoreBusy(f"job queue full ({self._queue.maxsize} waiting)")
        job = await self.create(kind, duration_s, origin="queue")
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            # Another request took the last slot while the row was being inserted.
            reason = f"job queue full ({self._queue.maxsize} waiting)"
            self._finish(job, "cancelled", reason)
            raise StoreBusy(reason) from None
        return job

    async def debounce(self, key: str, delay_s: float) -> tuple[int, Job | None]:
        """Trigger ``key``: one run ``delay_s`` after the last trigger of a burst.

        Returns the trigger count of the current burst and its job (``None`` only while the
        burst's first trigger is still creating the job record).
        """
        self._check_open()
        burst = self._bursts.trigger(key, delay_s)
        if burst is not None:
            return burst.triggers, burst.job
        burst = self._bursts.begin(key, delay_s)
        if burst is None:
            raise StoreBusy(f"too many debounce keys waiting ({MAX_DEBOUNCE_KEYS})")
        try:
            job = await self.create(
                "sleep", DEBOUNCE_RUN_S, origin="debounce", request_id=f"debounce:{key}"
            )
        except BaseException:
            self._bursts.abandon(key)
            raise
        burst.job = job
        self._spawn(self._debounce_timer(key, burst, job), f"jobs-debounce-{key}")
        return burst.triggers, job

    async def _debounce_timer(self, key: str, burst: Burst, job: Job) -> None:
        await self._bursts.quiet(key, burst)
        await self.run(job)

    # -- reading --------------------------------------------------------------------------

    def get(self, job_id: int) -> JobOut | None:
        job = self._jobs.get(job_id)
        return job.out() if job is not None else None

    def recent(self, limit: int = 50, state: State | None = None) -> list[JobOut]:
        """Newest first, from memory (the last ``history`` jobs)."""
        found: list[JobOut] = []
        for job_id in reversed(self._jobs):
            job = self._jobs[job_id]
            if state is None or job.state == state:
                found.append(job.out())
                if len(found) >= limit:
                    break
        return found

    def counts(self) -> dict[State, int]:
        """Jobs in memory per state (every state present, zero included)."""
        tally = Counter(job.state for job in self._jobs.values())
        return {state: tally.get(state, 0) for state in STATES}

    @property
    def queue_size(self) -> int:
        return self._queue.qsize()

    @property
    def queue_capacity(self) -> int:
        return self._queue.maxsize

    # -- subscribers ----------------------------------------------------------------------

    def subscribe(self) -> asyncio.Queue[JobOut]:
        """A bounded queue of job updates; pass it to :meth:`unsubscribe` when done."""
        updates: asyncio.Queue[JobOut] = asyncio.Queue(maxsize=SUBSCRIBER_BUFFER)
        self._subscribers.add(updates)
        return updates

    def unsubscribe(self, updates: asyncio.Queue[JobOut]) -> None:
        self._subscribers.discard(updates)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def _publish(self, job: Job) -> None:
        """Persist and broadcast a change. Never waits: a full subscriber loses its oldest."""
        self._journal.save(job)
        if not self._subscribers:
            return
        update = job.out()
        for updates in self._subscribers:
            if updates.full():
                updates.get_nowait()
            updates.put_nowait(update)
