"""A worker process: arq's own ``Worker`` running the demo job, one job at a time.

Started by :class:`~server.patterns.queue.fleet.WorkerFleet` as
``python -m server.patterns.queue.worker REDIS_URL``. Each worker keeps a small hash in
Redis (state, current job, jobs done) for the pane, and ends itself if the process that
started it goes away, so that no worker outlives the explorer, even one killed with -9.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from typing import Any

from arq.connections import RedisSettings
from arq.worker import Worker, func

from server.patterns.queue.demo_job import demo
from server.patterns.queue.names import (
    JOB_TIMEOUT_S,
    LOCK_MARGIN_S,
    MAX_TRIES,
    POLL_DELAY_S,
    QUEUE_NAME,
    WORKER_KEY,
)

#: how often a worker checks that the process that started it is still there
ORPHAN_CHECK_S = 0.5
#: workers run this much nicer than the server: on one machine, four CPU-bound workers
#: on two cores would otherwise take the server's core from it for a time slice at a
#: time (10 ms lag p99, measured); niced, the server's wake-ups preempt them. (Workers
#: on other machines, as in production, need none of it.)
WORKER_NICE = 10


def worker_key(pid: int) -> str:
    """The Redis hash a worker process keeps about itself."""
    return f"{WORKER_KEY}{pid}"


async def _started(ctx: dict[str, Any]) -> None:
    ctx["parent"] = os.getppid()
    ctx["orphan_watch"] = asyncio.create_task(_end_when_orphaned(ctx["parent"]))
    await ctx["redis"].hset(
        worker_key(os.getpid()),
        mapping={"state": "idle", "current": "", "done": 0, "started": time.time()},
    )


async def _job_started(ctx: dict[str, Any]) -> None:
    await ctx["redis"].hset(
        worker_key(os.getpid()), mapping={"state": "busy", "current": ctx["job_id"]}
    )


async def _job_ended(ctx: dict[str, Any]) -> None:
    key = worker_key(os.getpid())
    async with ctx["redis"].pipeline(transaction=True) as pipe:
        pipe.hset(key, mapping={"state": "idle", "current": ""})
        pipe.hincrby(key, "done", 1)
        await pipe.execute()


async def _stopping(ctx: dict[str, Any]) -> None:
    watch = ctx.get("orphan_watch")
    if watch is not None:
        watch.cancel()
    with contextlib.suppress(Exception):  # Redis gone: nothing to tidy
        await ctx["redis"].delete(worker_key(os.getpid()))


async def _end_when_orphaned(parent: int) -> None:
    """SIGTERM this process once its parent is gone (it is re-parented, to init)."""
    while os.getppid() == parent:  # noqa: ASYNC110 (no event says "re-parented": look)
        await asyncio.sleep(ORPHAN_CHECK_S)
    os.kill(os.getpid(), 15)


def build_worker(redis_url: str) -> Worker:
    """arq's worker for the demo queue: one job at a time, so N workers is N at once."""
    worker = Worker(
        functions=[func(demo, name="demo", timeout=JOB_TIMEOUT_S, max_tries=MAX_TRIES)],
        queue_name=QUEUE_NAME,
        redis_settings=RedisSettings.from_dsn(redis_url),
        max_jobs=1,
        poll_delay=POLL_DELAY_S,
        keep_result=3600,
        on_startup=_started,
        on_shutdown=_stopping,
        on_job_start=_job_started,
        after_job_end=_job_ended,
        health_check_interval=1,
        log_results=False,
    )
    # arq's lock on a running job lasts the longest timeout + 10 s: how long a job whose
    # worker was killed waits before another takes it. The demo's jobs are short.
    worker.in_progress_timeout_s = JOB_TIMEOUT_S + LOCK_MARGIN_S
    return worker


def main(argv: list[str] | None = None) -> int:
    """``python -m server.patterns.queue.worker REDIS_URL``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: python -m server.patterns.queue.worker REDIS_URL")
    os.nice(WORKER_NICE)
    build_worker(args[0]).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
