"""The pane's scripted demos, over real HTTP, also run by the tests and the benchmark.

- :func:`kill_a_worker`: jobs on Redis, the worker SIGKILLed mid-job, another started:
  every job finishes, and the one it was running ran twice (at-least-once delivery).
- :func:`kill_the_server`: the same jobs as ``BackgroundTasks`` and on Redis, both taken by
  a ``serve`` child that is then SIGKILLed: the in-process ones it had not finished are
  lost, the Redis ones finish in the workers.
- :func:`scale`: the same batch of jobs with 1, 2 and 4 workers, wall time beside the ideal.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from explorer.patterns.queue.client import Listing, QueueClient, QueueUnavailable
from explorer.patterns.queue.server_child import ServeChild

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


#: arq's lock on a killed worker's job expires after the job timeout (5 s) and a margin
REDELIVERY_WAIT_S = 6.0


@dataclass(frozen=True, slots=True)
class WorkerKill:
    """What :func:`kill_a_worker` saw."""

    jobs: int
    done: int
    failed: int
    killed_pid: int
    killed_job: str | None
    #: the jobs that ran more than once (the killed one, redelivered)
    ran_twice: list[str]
    wall_s: float


async def kill_a_worker(
    queue: QueueClient,
    jobs: int = 50,
    seconds: float = 0.1,
    kill_after: int = 20,
    progress: Progress = _quiet,
) -> WorkerKill:
    """``jobs`` jobs on one worker; SIGKILL it mid-job after ``kill_after``; start another."""
    await queue.require_redis()
    began = time.perf_counter()
    await queue.scale(1)
    await queue.workers_ready(1)
    ids = await queue.enqueue("sleep", seconds, jobs, "redis")
    progress(f"{jobs} jobs on Redis, 1 worker")
    await queue.until("redis", ids, kill_after, within_s=jobs * seconds + 30)
    victim = await _busy_worker(queue)
    await queue.kill(victim["pid"])
    progress(f"SIGKILL worker {victim['pid']} in the middle of job {victim['current']}")
    await queue.scale(1)
    progress(f"a new worker started; arq gives the killed job back after ~{REDELIVERY_WAIT_S:g} s")
    listing = await queue.until("redis", ids, jobs, within_s=jobs * seconds + 60)
    return WorkerKill(
        jobs=jobs,
        done=listing.count("done"),
        failed=listing.count("failed"),
        killed_pid=victim["pid"],
        killed_job=victim["current"],
        ran_twice=[job["id"] for job in listing.jobs if job["runs"] > 1],
        wall_s=time.perf_counter() - began,
    )


async def _busy_worker(queue: QueueClient, within_s: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        busy = [w for w in (await queue.status())["workers"] if w["current"]]
        if busy:
            found: dict[str, Any] = busy[0]
            return found
        await asyncio.sleep(0.01)
    raise QueueUnavailable(f"no worker was busy within {within_s:g} s")


@dataclass(frozen=True, slots=True)
class ServerKill:
    """What :func:`kill_the_server` saw."""

    jobs: int
    child_pid: int
    #: in-process jobs done before the kill, and the ones it took with it
    inprocess_done: int
    lost: list[str]
    #: the Redis jobs the same server had taken: finished by the workers afterwards
    redis_done: int
    redis_failed: int


async def kill_the_server(
    queue: QueueClient,
    redis_url: str,
    jobs: int = 50,
    seconds: float = 0.1,
    kill_after: int = 20,
    workers: int = 2,
    progress: Progress = _quiet,
) -> ServerKill:
    """A ``serve`` child takes ``jobs`` in-process jobs and ``jobs`` Redis jobs; it is
    SIGKILLed after ``kill_after`` in-process ones finished. Which survive?"""
    await queue.require_redis()
    await queue.scale(workers)
    progress("starting a serve child to kill")
    async with (
        ServeChild.started(redis_url) as child,
        httpx.AsyncClient(base_url=child.url, timeout=10.0) as http,
    ):
        doomed = QueueClient(http)
        local = await doomed.enqueue("sleep", seconds, jobs, "inprocess")
        durable = await doomed.enqueue("sleep", seconds, jobs, "redis")
        progress(f"server {child.pid} took {jobs} BackgroundTasks jobs and {jobs} Redis jobs")
        before = await doomed.until("inprocess", local, kill_after, within_s=jobs * seconds + 30)
        child.kill()  # right after the listing: what it shows is what the process held
        await asyncio.to_thread(child.process.wait)
        progress(f"SIGKILL server {child.pid}")
    lost = [job["id"] for job in before.jobs if job["state"] not in ("done", "failed")]
    progress(f"{len(lost)} in-process jobs lost; waiting for the Redis ones")
    after: Listing = await queue.until("redis", durable, jobs, within_s=jobs * seconds + 60)
    return ServerKill(
        jobs=jobs,
        child_pid=child.pid,
        inprocess_done=before.count("done"),
        lost=lost,
        redis_done=after.count("done"),
        redis_failed=after.count("failed"),
    )


@dataclass(frozen=True, slots=True)
class ScaleRow:
    """One batch on ``workers`` workers: its wall time beside the ideal."""

    workers: int
    jobs: int
    seconds: float
    wall_s: float

    @property
    def ideal_s(self) -> float:
        return self.jobs * self.seconds / self.workers

    @property
    def jobs_per_s(self) -> float:
        return self.jobs / self.wall_s if self.wall_s else 0.0


async def scale(
    queue: QueueClient,
    jobs: int = 100,
    seconds: float = 1.0,
    worker_counts: Sequence[int] = (1, 2, 4),
    progress: Progress = _quiet,
) -> list[ScaleRow]:
    """The same batch of sleep jobs with each worker count in turn (one job at a time
    per worker: the ideal is jobs × seconds ÷ workers)."""
    await queue.require_redis()
    rows: list[ScaleRow] = []
    for count in worker_counts:
        await queue.scale(count)
        await queue.workers_ready(count)
        progress(f"{jobs} × {seconds:g} s jobs on {count} worker(s)")
        began = time.perf_counter()
        ids = await queue.enqueue("sleep", seconds, jobs, "redis")
        listing = await queue.until("redis", ids, jobs, within_s=jobs * seconds + 60)
        if listing.finished < jobs:
            raise QueueUnavailable(f"{jobs - listing.finished} jobs unfinished on {count} workers")
        rows.append(ScaleRow(count, jobs, seconds, time.perf_counter() - began))
    return rows
