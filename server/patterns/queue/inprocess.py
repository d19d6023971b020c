"""The in-process backend: the same jobs as ``BackgroundTasks`` of the server that took them.

Nothing to install, and nothing durable: the jobs live in this process's memory and run on
its loop, so a CPU-heavy one stalls every request of the server, and a server killed with
-9 takes its queued and running jobs with it. The history is only as durable as the
process (the pane reads it before it kills the server).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict

from server.patterns.basics.cpu_pool import CpuPool
from server.patterns.queue.demo_job import DemoJobFailed, job_body
from server.patterns.queue.models import JobView
from server.patterns.queue.names import HISTORY, JOB_TIMEOUT_S, JobKind


class InProcessJobs:
    """The in-process jobs' history (bounded) and the function ``BackgroundTasks`` runs."""

    def __init__(self) -> None:
        self._jobs: OrderedDict[str, JobView] = OrderedDict()

    def accept(self, kind: JobKind, seconds: float, count: int) -> list[str]:
        """Record ``count`` queued jobs; their ids (the route hands them to BackgroundTasks)."""
        ids = [f"bg-{uuid.uuid4().hex[:12]}" for _ in range(count)]
        for job_id in ids:
            self._jobs[job_id] = JobView(
                id=job_id, backend="inprocess", kind=kind, seconds=seconds, state="queued"
            )
        while len(self._jobs) > HISTORY:
            self._jobs.popitem(last=False)
        return ids

    async def run(self, job_id: str, offload: CpuPool | None = None) -> None:
        """Run one job in this server (what ``BackgroundTasks`` calls after the response),
        a CPU one in ``offload``'s processes, or on this loop without. Its failure is
        recorded with its text, never swallowed."""
        job = self._jobs.get(job_id)
        if job is None:
            return
        job.state, job.runs = "running", job.runs + 1
        try:
            job.result = await run_in_process(job.kind, job.seconds, job_id, offload)
            job.state = "done"
        except DemoJobFailed as exc:
            job.state, job.error = "failed", f"{type(exc).__name__}: {exc}"
        except TimeoutError:
            job.state = "failed"
            job.error = f"TimeoutError: the job ran past its {JOB_TIMEOUT_S:g} s timeout"

    def views(self, limit: int) -> list[JobView]:
        """The newest ``limit`` jobs, oldest first."""
        return list(self._jobs.values())[-limit:]

    def get(self, ids: list[str]) -> list[JobView]:
        return [self._jobs[i] for i in ids if i in self._jobs]

    def clear(self) -> None:
        """Forget the finished jobs (queued and running ones stay: they are still owed)."""
        for job_id in [i for i, j in self._jobs.items() if j.state in ("done", "failed")]:
            del self._jobs[job_id]


async def run_in_process(
    kind: str, seconds: float, job_id: str, offload: CpuPool | None = None
) -> str:
    """The demo job in the server's own process, cut at the job timeout as arq cuts it."""
    async with asyncio.timeout(JOB_TIMEOUT_S):
        return await job_body(kind, seconds, job_id, offload)
