"""Background work: ``BackgroundTasks``, a bounded job queue, fire-and-forget, debounce.

Every job lives in the :class:`~server.patterns.tasks.jobs.JobStore` this router's lifespan
opens, so each one is visible (``GET /tasks/jobs``, ``GET /tasks/stream``), bounded, timed out,
recorded on failure, persisted, and accounted for at shutdown.

In blocking mode ``/tasks/fire-and-forget`` launches a task and drops the reference (the
outcome is lost, the exception swallowed), and ``/tasks/debounce`` runs a job per trigger.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, FastAPI, HTTPException, Query, status
from fastapi.responses import JSONResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent
from starlette.types import Message, Receive, Scope, Send

from server.deps import BlockingMode, provided
from server.patterns.tasks.jobs import DEBOUNCE_RUN_S, HISTORY, JobStore, StoreBusy
from server.patterns.tasks.journal import jobs_database
from server.patterns.tasks.models import (
    BackgroundIn,
    BackgroundOut,
    DebounceIn,
    DebounceOut,
    FireAndForgetOut,
    JobAccepted,
    JobsOut,
    JobSpec,
    QueueInfo,
    State,
)
from server.patterns.tasks.records import Batch, utc_now
from server.state import state_of

#: jobs in the SSE snapshot
SNAPSHOT_JOBS = 50


@asynccontextmanager
async def tasks_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the job store for the app's life; on the way out, finish or cancel its jobs.

    FastAPI nests a router's lifespan inside the app's, so this closes before the shared
    resources do.
    """
    state = state_of(app)
    settings = state.settings
    store = await JobStore.open(jobs_database(settings.data_dir))
    async with state.opened(JobStore, store, partial(store.close, grace_s=settings.job_grace_s)):
        yield


router = APIRouter(prefix="/tasks", tags=["tasks"], lifespan=tasks_lifespan)


JobStoreDep = Annotated[JobStore, Depends(provided(JobStore))]


#: documents the 503 every job-creating route may answer
REFUSED: dict[int | str, dict[str, Any]] = {
    503: {"description": "A bound was reached (queue full, too many jobs) or shutting down."}
}


def refuse(exc: StoreBusy) -> HTTPException:
    """A bound was hit: 503 with the reason, instead of waiting or growing without limit."""
    return HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=str(exc))


def jobs_report(store: JobStore, limit: int, state: State | None = None) -> JobsOut:
    return JobsOut(
        jobs=store.recent(limit, state),
        counts=store.counts(),
        queue=QueueInfo(
            size=store.queue_size, capacity=store.queue_capacity, workers=store.workers
        ),
    )


class MarkedJSONResponse(JSONResponse):
    """A JSON response that notes when its last byte went out.

    Starlette runs ``BackgroundTasks`` right after that send; each job's
    ``response_sent_ms`` is measured from this mark, so it shows the order, not assumes it.
    """

    def __init__(self, content: Any, batch: Batch) -> None:
        super().__init__(content)
        self.batch = batch

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_and_mark(message: Message) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                self.batch.sent_at = time.perf_counter()

        await super().__call__(scope, receive, send_and_mark)


# -- routes ---------------------------------------------------------------------------------


@router.post("/background", response_model=BackgroundOut, responses=REFUSED)
async def background_jobs(
    body: BackgroundIn, background: BackgroundTasks, store: JobStoreDep
) -> MarkedJSONResponse:
    """``BackgroundTasks``: answer at once, then run the jobs one after another.

    The jobs run in this request's task after the response is sent, in order. A failing
    job is recorded and the next one still runs (``JobStore.run`` catches and records).
    """
    request_id = uuid.uuid4().hex[:12]
    specs = [(spec.kind, spec.duration_s) for spec in body.jobs]
    try:
        batch = await store.create_batch(specs, request_id=request_id)
    except StoreBusy as exc:
        raise refuse(exc) from None
    for job in batch.jobs:
        background.add_task(store.run, job, batch)
    out = BackgroundOut(
        request_id=request_id, job_ids=[j.id for j in batch.jobs], responded_at=utc_now()
    )
    return MarkedJSONResponse(out.model_dump(), batch)


@router.post("/queue", status_code=status.HTTP_202_ACCEPTED, responses=REFUSED)
async def enqueue_job(spec: JobSpec, store: JobStoreDep) -> JobAccepted:
    """A bounded queue drained by a fixed set of workers.

    Full means 503 right away: the request neither waits for a slot nor grows the queue.
    """
    try:
        job = await store.enqueue(spec.kind, spec.duration_s)
    except StoreBusy as exc:
        raise refuse(exc) from None
    return JobAccepted(job_id=job.id)


@router.post("/fire-and-forget", status_code=status.HTTP_202_ACCEPTED, responses=REFUSED)
async def fire_and_forget(
    spec: JobSpec, store: JobStoreDep, blocking: BlockingMode
) -> FireAndForgetOut:
    """Start a task and answer without waiting for it.

    Right: the store keeps the task and a done callback records its outcome. Pitfall
    (blocking mode): ``asyncio.create_task`` with the task dropped; the job stays
    "running" whatever happens, and a failure is swallowed (see
    ``JobStore.run_unsupervised``).
    """
    try:
        job = await store.create(spec.kind, spec.duration_s, origin="fire_and_forget")
    except StoreBusy as exc:
        raise refuse(exc) from None
    if blocking:
        asyncio.create_task(store.run_unsupervised(job))  # noqa: RUF006 - the pitfall itself
    else:
        store.spawn(job)
    return FireAndForgetOut(job_id=job.id, supervised=not blocking)


@router.post("/debounce", responses=REFUSED)
async def debounce(body: DebounceIn, store: JobStoreDep, blocking: BlockingMode) -> DebounceOut:
    """Collapse a burst of triggers with one key into one run, ``delay_s`` after the last.

    Pitfall (blocking mode): no debounce, every trigger runs a job.
    """
    try:
        if blocking:
            job = await store.create(
                "sleep", DEBOUNCE_RUN_S, origin="debounce", request_id=f"debounce:{body.key}"
            )
            store.spawn(job)
            return DebounceOut(key=body.key, triggers=1, job_id=job.id)
        triggers, pending = await store.debounce(body.key, body.delay_s)
    except StoreBusy as exc:
        raise refuse(exc) from None
    return DebounceOut(
        key=body.key, triggers=triggers, job_id=pending.id if pending is not None else None
    )


@router.get("/jobs")
async def list_jobs(
    store: JobStoreDep,
    limit: Annotated[int, Query(ge=1, le=HISTORY, description="At most this many jobs.")] = 50,
    state: Annotated[State | None, Query(description="Only jobs in this state.")] = None,
) -> JobsOut:
    """Recent jobs, newest first, with per-state counts and the queue's fill."""
    return jobs_report(store, limit, state)


@router.get("/stream", response_class=EventSourceResponse)
async def stream_jobs(store: JobStoreDep) -> AsyncIterator[ServerSentEvent]:
    """SSE: a ``snapshot`` event (as ``GET /tasks/jobs``), then a ``job`` event per change.

    Subscribes before the snapshot, so no change falls between the two. FastAPI sends the
    keep-alive comments, and cancels this generator when the client goes away.
    """
    updates = store.subscribe()
    try:
        yield ServerSentEvent(event="snapshot", data=jobs_report(store, SNAPSHOT_JOBS))
        while True:
            job = await updates.get()
            yield ServerSentEvent(event="job", data=job)
    finally:
        store.unsubscribe(updates)
