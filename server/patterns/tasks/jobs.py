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
import math
import sqlite3
import time
import weakref
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, get_args

import aiosqlite
from pydantic import BaseModel, Field

log = logging.getLogger("fastasync.jobs")

Kind = Literal["sleep", "fail", "hang"]
Origin = Literal["background", "queue", "fire_and_forget", "debounce"]
State = Literal["pending", "running", "done", "failed", "cancelled", "lost"]

STATES: tuple[State, ...] = get_args(State)
UNFINISHED: frozenset[State] = frozenset({"pending", "running"})

#: jobs kept in memory (the newest; unfinished ones are never dropped)
HISTORY = 500
#: rows kept in SQLite; older ones are deleted when the store opens
DB_KEEP = 10_000
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
#: how long shutdown waits for cancelled tasks to unwind before giving up on them
CANCEL_WAIT_S = 1.0

SHUTDOWN = "server shutdown"
CRASHED = "server stopped before it finished"
UNHEARD = "fire-and-forget task without a reference: its outcome was never reported"


def utc_now() -> str:
    """ISO 8601 UTC, to the millisecond."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class JobOut(BaseModel):
    """One job as the API shows it (and as SQLite stores it)."""

    id: int = Field(description="SQLite rowid.")
    kind: Kind
    origin: Origin = Field(description="Which pattern started it.")
    state: State
    duration_s: float = Field(description="The duration asked for (hang ignores it).")
    created_at: str
    started_at: str | None
    finished_at: str | None
    duration_ms: float | None = Field(description="Run time, start to finish.")
    error: str | None = Field(
        description='Why it failed or was cancelled, e.g. "ValueError: simulated failure in job 7".'
    )
    request_id: str | None = Field(description="Groups the jobs one request started.")
    response_sent_ms: float | None = Field(
        description="Background jobs: ms from the response being sent to this job starting."
    )


class StoreBusy(Exception):
    """A bound was reached; the message says which (the API answers 503 with it)."""


class StoreClosed(StoreBusy):
    """The store is shutting down and takes no new work."""


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

    def out(self) -> JobOut:
        return JobOut(
            id=self.id,
            kind=self.kind,
            origin=self.origin,
            state=self.state,
            duration_s=self.duration_s,
            created_at=self.created_at,
            started_at=self.started_at,
            finished_at=self.finished_at,
            duration_ms=self.duration_ms,
            error=self.error,
            request_id=self.request_id,
            response_sent_ms=self.response_sent_ms,
        )


async def perform(job: Job) -> None:
    """What a job does. No error handling here: that is the caller's job (or its pitfall)."""
    if job.kind == "hang":
        # A timer that never fires: the loop's timer heap holds the task, so even an
        # unreferenced task is not garbage-collected mid-wait.
        await asyncio.sleep(math.inf)
    await asyncio.sleep(job.duration_s)
    if job.kind == "fail":
        raise ValueError(f"simulated failure in job {job.id}")


def describe(exc: BaseException) -> str:
    """``"ValueError: message"``: what the job's ``error`` says."""
    if isinstance(exc, JobTimedOut):
        return f"TimeoutError: {exc}"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    origin TEXT NOT NULL,
    state TEXT NOT NULL,
    duration_s REAL NOT NULL,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    duration_ms REAL,
    error TEXT,
    request_id TEXT,
    response_sent_ms REAL
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state);
"""
_COLUMNS = tuple(JobOut.model_fields)
_INSERT = (
    f"INSERT INTO jobs ({', '.join(_COLUMNS[1:])}) VALUES ({', '.join('?' * len(_COLUMNS[1:]))})"
)
_UPDATE = (
    "UPDATE jobs SET state = ?, started_at = ?, finished_at = ?, duration_ms = ?, error = ?, "
    "response_sent_ms = ? WHERE id = ?"
)


@dataclass(eq=False)
class _Debounce:
    """A debounced run waiting for its key to go quiet."""

    deadline: float
    triggers: int = 1
    job: Job | None = None


class JobStore:
    """Jobs in memory (bounded) and in SQLite; the tasks that run them; their subscribers.

    Open with :meth:`open`, close with :meth:`close` (the router's lifespan does both).
    """

    def __init__(
        self,
        db: aiosqlite.Connection,
        *,
        queue_size: int = QUEUE_SIZE,
        workers: int = WORKERS,
        job_timeout_s: float = JOB_TIMEOUT_S,
        history: int = HISTORY,
    ) -> None:
        self._db = db
        self.job_timeout_s = job_timeout_s
        self.history = history
        self.workers = workers
        self._jobs: dict[int, Job] = {}
        # Strong references to every task the store creates; the done callback drops them.
        self._tasks: set[asyncio.Task[Any]] = set()
        # The pitfall's tasks, held weakly: only so shutdown can cancel the ones still alive.
        self._unsupervised: weakref.WeakSet[asyncio.Task[Any]] = weakref.WeakSet()
        self._queue: asyncio.Queue[Job] = asyncio.Queue(maxsize=queue_size)
        self._debounced: dict[str, _Debounce] = {}
        self._subscribers: set[asyncio.Queue[JobOut]] = set()
        # Unfinished supervised jobs (everything but the pitfall's), for the bounds and
        # for knowing when shutdown may stop waiting.
        self._unfinished = 0
        self._settled = asyncio.Event()
        self._dirty: dict[int, Job] = {}
        self._wake_writer = asyncio.Event()
        self._writer_stopping = False
        self._db_errors: set[str] = set()
        self._closing = False
        self._closed = False
        self._writer = self._spawn(self._write_loop(), "jobs-writer")
        for n in range(workers):
            self._spawn(self._work_loop(), f"jobs-worker-{n + 1}")

    # -- opening and closing ---------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        path: Path,
        *,
        queue_size: int = QUEUE_SIZE,
        workers: int = WORKERS,
        job_timeout_s: float = JOB_TIMEOUT_S,
        history: int = HISTORY,
    ) -> JobStore:
        """Open (or create) the database at ``path`` and start the workers.

        Jobs a previous process left pending or running never finished: they are marked
        "lost" before anything else happens.
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(path)
        try:
            await db.execute("PRAGMA journal_mode = WAL")
            # WAL + NORMAL: a commit costs no fsync; a power cut may lose the last few
            # updates, never corrupt the file. Right for a history of demo jobs.
            await db.execute("PRAGMA synchronous = NORMAL")
            await db.executescript(_SCHEMA)
            async with db.execute(
                "UPDATE jobs SET state = 'lost', error = ?, finished_at = COALESCE(finished_at, ?)"
                " WHERE state IN ('pending', 'running')",
                (CRASHED, utc_now()),
            ) as cursor:
                if cursor.rowcount:
                    log.warning("%d job(s) from a previous run were lost", cursor.rowcount)
            await db.execute(
                "DELETE FROM jobs WHERE id <= (SELECT MAX(id) FROM jobs) - ?", (DB_KEEP,)
            )
            await db.commit()
            rows = await db.execute_fetchall(
                f"SELECT {', '.join(_COLUMNS)} FROM jobs ORDER BY id DESC LIMIT ?", (history,)
            )
        except BaseException:
            await db.close()
            raise
        store = cls(
            db, queue_size=queue_size, workers=workers, job_timeout_s=job_timeout_s, history=history
        )
        for row in reversed(list(rows)):
            job = Job(**dict(zip(_COLUMNS, row, strict=True)))
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
                await self._cancel_everything()
                self._record_leftovers()
            finally:
                try:
                    await self._stop_writer()
                finally:
                    await self._db.close()
                    self._closed = True

    def _busy(self) -> bool:
        return self._unfinished > 0 or any(not t.done() for t in self._unsupervised)

    def _check_settled(self) -> None:
        if self._closing and not self._busy():
            self._settled.set()

    async def _cancel_everything(self) -> None:
        """Cancel workers, job tasks and the pitfall's live tasks; wait for them to unwind."""
        unsupervised = [t for t in self._unsupervised if not t.done()]
        tasks = [t for t in self._tasks if t is not self._writer and not t.done()]
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
        values = (kind, origin, "pending", duration_s, created_at, *(None,) * 4, request_id, None)
        try:
            row = await self._db.execute_insert(_INSERT, values)
            await self._db.commit()
        except (sqlite3.Error, ValueError) as exc:  # ValueError: the connection is closed
            log.error("could not record a new job: %s", describe(exc))
            raise StoreBusy(f"job store unavailable ({describe(exc)})") from exc
        if row is None:  # pragma: no cover - sqlite always has a last_insert_rowid
            raise StoreBusy("job store unavailable (no rowid)")
        job = Job(
            id=int(row[0]),
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
            if self._evictable(job):
                doomed.append(job.id)
                if len(doomed) == excess:
                    break
        for job_id in doomed:
            del self._jobs[job_id]

    @staticmethod
    def _evictable(job: Job) -> bool:
        if job.finished:
            return True
        task = job.unsupervised() if job.unsupervised is not None else None
        return job.unsupervised is not None and (task is None or task.done())

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
            self._finish(job, "cancelled", describe(error))
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
        task.add_done_callback(lambda t: self._record(job, _outcome(t)))

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
        loop = asyncio.get_running_loop()
        pending = self._debounced.get(key)
        if pending is not None:
            pending.triggers += 1
            # Moving the deadline is all a trigger does: the timer task rechecks it when it
            # wakes, so a burst costs no task cancellations.
            pending.deadline = max(pending.deadline, loop.time() + delay_s)
            return pending.triggers, pending.job
        if len(self._debounced) >= MAX_DEBOUNCE_KEYS:
            raise StoreBusy(f"too many debounce keys waiting ({MAX_DEBOUNCE_KEYS})")
        # Registered before the first await, so a concurrent trigger joins this burst.
        pending = self._debounced[key] = _Debounce(deadline=loop.time() + delay_s)
        try:
            job = await self.create(
                "sleep", DEBOUNCE_RUN_S, origin="debounce", request_id=f"debounce:{key}"
            )
        except BaseException:
            del self._debounced[key]
            raise
        pending.job = job
        self._spawn(self._debounce_timer(key, pending, job), f"jobs-debounce-{key}")
        return pending.triggers, job

    async def _debounce_timer(self, key: str, pending: _Debounce, job: Job) -> None:
        loop = asyncio.get_running_loop()
        try:
            # Not polling: it sleeps exactly until the deadline, once per move it sees.
            while (wait := pending.deadline - loop.time()) > 0:  # noqa: ASYNC110
                await asyncio.sleep(wait)
        finally:
            # From here on a trigger starts a new burst (and a new job).
            self._debounced.pop(key, None)
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

    def tasks(self) -> Iterator[asyncio.Task[Any]]:
        """The store's live tasks (workers, writer, jobs) and the pitfall's live ones."""
        yield from (t for t in self._tasks if not t.done())
        yield from (t for t in self._unsupervised if not t.done())

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
        self._dirty[job.id] = job
        self._wake_writer.set()
        if not self._subscribers:
            return
        update = job.out()
        for updates in self._subscribers:
            if updates.full():
                updates.get_nowait()
            updates.put_nowait(update)

    # -- persistence ----------------------------------------------------------------------

    async def _write_loop(self) -> None:
        """Write changed jobs in batches: many changes in one loop turn cost one commit."""
        while not (self._writer_stopping and not self._dirty):
            await self._wake_writer.wait()
            self._wake_writer.clear()
            await self._flush()

    async def _flush(self) -> None:
        batch, self._dirty = self._dirty, {}
        if not batch:
            return
        rows = [
            (
                j.state,
                j.started_at,
                j.finished_at,
                j.duration_ms,
                j.error,
                j.response_sent_ms,
                j.id,
            )
            for j in batch.values()
        ]
        try:
            await self._db.executemany(_UPDATE, rows)
            await self._db.commit()
        except Exception as exc:
            # Keep serving from memory; say so once per kind of failure, not per write.
            text = describe(exc)
            if text not in self._db_errors:
                self._db_errors.add(text)
                log.error("could not save %d job update(s): %s", len(rows), text)

    async def _stop_writer(self) -> None:
        """Let the writer save what is left and end; then the last safety net."""
        self._writer_stopping = True
        self._wake_writer.set()
        if not self._writer.done():
            try:
                await asyncio.wait_for(asyncio.shield(self._writer), timeout=CANCEL_WAIT_S * 5)
            except TimeoutError:
                log.error("job writer did not finish in time; some updates were not saved")
                self._writer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._writer
        await self._flush()  # in case the writer had crashed (already logged)
        try:
            # A pitfall record dropped from memory while still "running" is the only row
            # that can be unfinished here; it must not wait for the next start to be named.
            await self._db.execute(
                "UPDATE jobs SET state = 'lost', error = ?, finished_at = ?"
                " WHERE state IN ('pending', 'running')",
                (UNHEARD, utc_now()),
            )
            await self._db.commit()
        except Exception as exc:
            log.error("could not save the final job states: %s", describe(exc))


def _outcome(task: asyncio.Task[Any]) -> BaseException | None:
    """A finished task's exception (``CancelledError`` if cancelled), retrieving it."""
    if task.cancelled():
        try:
            task.result()
        except asyncio.CancelledError as exc:
            return exc
    return task.exception()
