"""The durable queue: jobs on Redis run by arq worker processes, or ``BackgroundTasks``.

``POST /queue/jobs`` enqueues demo jobs (sleep, CPU, fail, hang) on one of two backends:
``inprocess`` (the default: ``BackgroundTasks`` of this server, nothing to install, and
nothing durable) or ``redis`` (arq's queue, run by the worker processes of
``PUT /queue/workers``). In blocking mode an in-process CPU job runs in the background
task itself, on this server's loop (the pitfall: every request waits); otherwise in the
server's CPU process pool. On Redis it runs in a worker either way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, FastAPI, HTTPException, Query, status

from server.deps import BlockingMode, CpuPoolDep, provided
from server.patterns.queue.backends import QueueBackends
from server.patterns.queue.models import (
    Backend,
    JobsAccepted,
    JobsIn,
    JobsOut,
    JobView,
    QueueStatus,
    WorkersIn,
    WorkerView,
)
from server.patterns.queue.redis_queue import QueueDown, redacted
from server.state import state_of


@asynccontextmanager
async def queue_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The backends for the app's life; on the way out, the workers it started stop."""
    state = state_of(app)
    backends = QueueBackends.on(state.settings.redis_url)
    async with state.opened(QueueBackends, backends, backends.close):
        yield


router = APIRouter(prefix="/queue", tags=["queue"], lifespan=queue_lifespan)

BackendsDep = Annotated[QueueBackends, Depends(provided(QueueBackends))]

DOWN: dict[int | str, dict[str, Any]] = {503: {"description": "Redis does not answer."}}


def down(exc: QueueDown) -> HTTPException:
    return HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=str(exc))


@router.get("")
async def queue_status(backends: BackendsDep) -> QueueStatus:
    """Whether Redis answers (one sentence when not), and the worker processes."""
    up = await backends.redis.available()
    return QueueStatus(
        redis_url=redacted(backends.redis.url),
        redis_up=up,
        reason=None if up else backends.redis.reason,
        workers=await backends.workers(),
    )


@router.post("/jobs", status_code=status.HTTP_202_ACCEPTED, responses=DOWN)
async def enqueue(
    body: JobsIn,
    background: BackgroundTasks,
    backends: BackendsDep,
    blocking: BlockingMode,
    cpu_pool: CpuPoolDep,
) -> JobsAccepted:
    """Enqueue ``count`` jobs. In-process they run after this response, one after another,
    in this request's task (a CPU job on the loop in blocking mode, else in the CPU process
    pool); on Redis they wait for a worker process."""
    backend = body.backend
    if backend == "inprocess":
        ids = backends.inprocess.accept(body.kind, body.seconds, body.count)
        offload = None if blocking else cpu_pool
        for job_id in ids:
            background.add_task(backends.inprocess.run, job_id, offload)
        return JobsAccepted(backend=backend, ids=ids)
    try:
        ids = await backends.redis.enqueue(body.kind, body.seconds, body.count)
    except QueueDown as exc:
        raise down(exc) from None
    return JobsAccepted(backend=backend, ids=ids)


@router.get("/jobs", responses=DOWN)
async def list_jobs(
    backends: BackendsDep,
    backend: Backend = "redis",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ids: Annotated[
        str | None,
        Query(
            max_length=2_000,
            pattern=r"^[A-Za-z0-9,-]*$",
            description="Job ids, comma-separated (about a hundred at most).",
        ),
    ] = None,
) -> JobsOut:
    """The newest ``limit`` jobs of ``backend`` (or the ones of ``ids``), their counts by
    state and how many ran more than once."""
    wanted = [i for i in (ids or "").split(",") if i]
    if backend == "inprocess":
        jobs = backends.inprocess.get(wanted) if wanted else backends.inprocess.views(limit)
    else:
        try:
            jobs = await backends.redis.jobs(wanted or await backends.redis.recent_ids(limit))
        except QueueDown as exc:
            raise down(exc) from None
        dead = backends.dead_pids()
        jobs = [_orphaned(job, dead) for job in jobs]
    counts = Counter[str](job.state for job in jobs)
    return JobsOut(
        backend=backend,
        jobs=jobs,
        counts=dict(counts),
        ran_twice=sum(job.runs > 1 for job in jobs),
    )


def _orphaned(job: JobView, dead: set[int]) -> JobView:
    """A "running" job whose worker has died waits for arq's lock to expire: retrying."""
    if job.state == "running" and job.worker in dead:
        return job.model_copy(update={"state": "retrying"})
    return job


@router.delete("/jobs", responses=DOWN)
async def clear_jobs(backends: BackendsDep) -> dict[str, int]:
    """Forget the finished in-process jobs, and delete the demo's keys on Redis (only
    those: its queue, its jobs' arq keys and its own)."""
    backends.inprocess.clear()
    try:
        deleted = await backends.redis.clear()
    except QueueDown as exc:
        raise down(exc) from None
    backends.fleet.clear()
    return {"deleted_keys": deleted}


@router.put("/workers", responses=DOWN)
async def scale_workers(body: WorkersIn, backends: BackendsDep) -> list[WorkerView]:
    """Run ``workers`` worker processes (0 to 8): start new ones or stop the newest."""
    if body.workers and not await backends.redis.available():
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=backends.redis.reason)
    await backends.fleet.scale(body.workers)
    return await backends.workers()


@router.post("/workers/{pid}/kill", responses={404: {"description": "No such worker."}})
async def kill_worker(pid: int, backends: BackendsDep) -> list[WorkerView]:
    """SIGKILL the worker ``pid`` (one this server started), in the middle of its job if
    it has one: arq gives that job to another worker once its lock expires."""
    try:
        backends.fleet.kill(pid)
    except KeyError:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail=f"No running worker {pid} started by this server."
        ) from None
    return await backends.workers()
