"""The durable queue's scenario: CPU-heavy jobs in worker processes, or on the server's loop."""

from __future__ import annotations

import asyncio
import time

from explorer.tools.report.scenario import Outcome, Scenario, ScenarioError, ScenarioRun, expect

CPU_JOBS = 4
CPU_SECONDS = 0.25
WORKERS = 2
#: the jobs take a second of CPU in all: anything past this is lost, not slow
FINISH_WITHIN_S = 20.0


async def queue_cpu_jobs(run: ScenarioRun) -> Outcome:
    """4 CPU jobs of 0.25 s: on the Redis queue (2 worker processes) or as BackgroundTasks."""
    backend = "inprocess" if run.pitfall else "redis"
    requests = 0
    if backend == "redis":
        status = expect(await run.http.get("/queue")).json()
        requests += 1
        if not status["redis_up"]:
            raise ScenarioError(status["reason"])
        expect(await run.http.put("/queue/workers", json={"workers": WORKERS}))
        requests += 1
    began = time.perf_counter()
    try:
        body = {"kind": "cpu", "seconds": CPU_SECONDS, "count": CPU_JOBS, "backend": backend}
        ids = expect(await run.http.post("/queue/jobs", json=body), 202).json()["ids"]
        requests += 1
        listing: dict[str, object] = {}
        while time.perf_counter() - began < FINISH_WITHIN_S:
            listing = expect(
                await run.http.get("/queue/jobs", params={"backend": backend, "ids": ",".join(ids)})
            ).json()
            requests += 1
            counts = listing["counts"]
            assert isinstance(counts, dict)
            if counts.get("done", 0) == CPU_JOBS:
                break
            await asyncio.sleep(0.05)
        else:
            raise ScenarioError(f"the CPU jobs were not done after {FINISH_WITHIN_S:g} s")
    finally:
        if backend == "redis":
            await run.http.put("/queue/workers", json={"workers": 0})
    wall = time.perf_counter() - began
    where = f"{WORKERS} worker processes" if backend == "redis" else "the server's own loop"
    return Outcome(
        requests, f"{CPU_JOBS} CPU jobs done in {wall:.2f} s on {where}", {"wall_s": wall}
    )


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("cpu-jobs", "queue workers", "BackgroundTasks", queue_cpu_jobs),
)
