"""The basics pattern's scenarios: a sleep in the handler, CPU work offloaded."""

from __future__ import annotations

import asyncio
import time

from explorer.tools.report.scenario import Outcome, Scenario, ScenarioRun, expect

SLEEP_REQUESTS = 20
SLEEP_S = 0.1


async def basics_sleep(run: ScenarioRun) -> Outcome:
    """20 concurrent requests to a handler that waits 100 ms."""
    url = f"/basics/async?delay={SLEEP_S}"

    async def answered_after() -> float:
        started = time.perf_counter()
        expect(await run.http.get(url))
        return time.perf_counter() - started

    waits = await asyncio.gather(*(answered_after() for _ in range(SLEEP_REQUESTS)))
    slowest_ms = max(waits) * 1000
    note = f"{SLEEP_REQUESTS} × {SLEEP_S * 1000:.0f} ms waits; slowest answer {slowest_ms:.0f} ms"
    return Outcome(len(waits), note)


CPU_REQUESTS = 4
CPU_STEPS = 2_000_000


async def basics_cpu(run: ScenarioRun) -> Outcome:
    """4 concurrent requests, each ~2 M steps of CPU work."""
    url = f"/basics/offload?n={CPU_STEPS}"
    responses = await asyncio.gather(*(run.http.get(url) for _ in range(CPU_REQUESTS)))
    bodies = [expect(r).json() for r in responses]
    processes = {b["process"] for b in bodies}
    where = "on the server's own process" if run.pitfall else f"in {len(processes)} worker(s)"
    return Outcome(len(bodies), f"{CPU_REQUESTS} × {CPU_STEPS:,} steps {where}")


async def start_cpu_workers(run: ScenarioRun) -> Outcome:
    """The process pool starts its workers on first use: started apart, not compared."""
    pool = expect(await run.http.post("/basics/pool")).json()
    startup = pool["startup_ms"]
    note = f"{pool['workers']} workers" + (f", started in {startup:.0f} ms" if startup else "")
    return Outcome(1, note)


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("sleep", "await asyncio.sleep", "time.sleep in async def", basics_sleep),
    Scenario("cpu", "process pool", "CPU loop in async def", basics_cpu, start_cpu_workers),
)
