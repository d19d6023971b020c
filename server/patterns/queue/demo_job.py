"""The job the worker processes run: sleep, CPU, fail or hang, and idempotent.

arq delivers a job at least once: a worker killed mid-job leaves it to be run again by
another. So the job's effect is written under its own id (a second run writes the same
value), and each start is counted, which is how the pane shows a job that ran twice.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from server.patterns.basics.cpu_pool import CpuPool
from server.patterns.queue.names import OUTPUT_KEY, RAN_BY_KEY, RUNS_KEY, JobKind


class DemoJobFailed(RuntimeError):
    """What a "fail" job raises: its text comes back with the result."""


def burn_cpu(seconds: float) -> int:
    """Pure-Python work for ``seconds`` of wall time: a CPU-heavy job."""
    deadline = time.perf_counter() + seconds
    rounds = 0
    while time.perf_counter() < deadline:
        for i in range(2_000):  # a plain loop: the stall names this function, not a genexpr
            rounds ^= i * i
    return rounds


async def demo(ctx: dict[str, Any], kind: JobKind, seconds: float) -> str:
    """One demo job, as arq runs it in a worker process (``ctx`` is arq's)."""
    redis = ctx["redis"]
    job_id: str = ctx["job_id"]
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hincrby(RUNS_KEY, job_id, 1)
        pipe.hset(RAN_BY_KEY, job_id, os.getpid())
        await pipe.execute()
    output = await job_body(kind, seconds, job_id)
    await redis.hset(OUTPUT_KEY, job_id, output)  # the same value on every run
    return output


async def job_body(
    kind: JobKind | str, seconds: float, job_id: str, offload: CpuPool | None = None
) -> str:
    """What a job of ``kind`` does, wherever it runs: a worker process (arq cuts a hang at
    its job timeout) or the server that took it (:mod:`.inprocess`). A CPU job runs on the
    loop that runs it, unless sent to ``offload``'s processes: in a worker that blocks the
    worker's own loop only; in the server it is the pitfall, every request waits."""
    if kind == "sleep":
        await asyncio.sleep(seconds)
    elif kind == "cpu" and offload is not None:
        await offload.run(burn_cpu, seconds)  # the loop only awaits the pool's answer
    elif kind == "cpu":
        burn_cpu(seconds)
    elif kind == "fail":
        await asyncio.sleep(seconds)
        raise DemoJobFailed(f"job {job_id} failed on purpose after {seconds:g} s")
    elif kind == "hang":
        await asyncio.sleep(3600)  # until the job timeout cuts it
    return f"{kind} {seconds:g} s"
