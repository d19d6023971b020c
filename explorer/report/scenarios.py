"""The report's scenarios, one or more per pattern, in menu order.

Each drives the embedded server over real loopback HTTP (and WebSocket) exactly as a user
would; the runner switches blocking mode (``PUT /monitor/blocking``) between the two
forms, so the server code that runs is the code the panes show. The patterns after
``tasks`` have a module each: ``scenarios_<slug>.py``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from . import scenarios_cache, scenarios_db, scenarios_sse, scenarios_stream, scenarios_ws
from .scenario import Outcome, Scenario, ScenarioError, ScenarioRun, expect

# -- basics ---------------------------------------------------------------------------------

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


# -- concurrency ----------------------------------------------------------------------------


async def _strategy(run: ScenarioRun, body: dict[str, Any]) -> Outcome:
    report = expect(await run.http.post("/concurrency/run", json=body)).json()
    note = (
        f"{report['effective']}: {report['ok']} ok, {report['failed']} failed, "
        f"{report['cancelled']} cancelled"
    )
    if report["error"]:
        note += f"; {report['error'].split(':')[0]}"
    # the run's upstream calls are real requests too
    return Outcome(1 + len(report["tasks"]), note)


async def concurrency_gather(run: ScenarioRun) -> Outcome:
    """10 upstream calls of 100 ms."""
    return await _strategy(run, {"strategy": "gather", "n": 10, "latency": 0.1, "seed": 1})


async def concurrency_race(run: ScenarioRun) -> Outcome:
    """First of 5 upstreams (100 ms ± 50 ms) wins, the rest are cancelled."""
    body = {"strategy": "race", "n": 5, "latency": 0.1, "jitter": 0.05, "seed": 1}
    return await _strategy(run, body)


async def concurrency_timeout(run: ScenarioRun) -> Outcome:
    """An upstream that takes 1 s, with a 200 ms deadline."""
    body = {"strategy": "timeout", "n": 3, "latency": 1.0, "timeout_s": 0.2, "seed": 1}
    return await _strategy(run, body)


async def concurrency_bounded(run: ScenarioRun) -> Outcome:
    """50 upstream calls of 50 ms, at most 5 in flight."""
    body = {"strategy": "bounded", "n": 50, "latency": 0.05, "limit": 5, "seed": 1}
    return await _strategy(run, body)


# -- background tasks -----------------------------------------------------------------------

FIRE_JOBS = 10
FINISHED = {"done", "failed", "cancelled", "lost"}
#: the jobs fail after 50 ms; an outcome not heard within this long is never heard
HEARD_WITHIN_S = 1.5


async def tasks_fire_and_forget(run: ScenarioRun) -> Outcome:
    """10 fire-and-forget jobs that fail after 50 ms: is each failure heard?"""
    spec = {"kind": "fail", "duration_s": 0.05}
    accepted = await asyncio.gather(
        *(run.http.post("/tasks/fire-and-forget", json=spec) for _ in range(FIRE_JOBS))
    )
    ids = {expect(r, 202).json()["job_id"] for r in accepted}
    states: dict[int, str] = {}
    requests = len(accepted)
    deadline = time.perf_counter() + HEARD_WITHIN_S
    while time.perf_counter() < deadline:
        listing = expect(await run.http.get("/tasks/jobs", params={"limit": 200})).json()
        requests += 1
        states = {j["id"]: j["state"] for j in listing["jobs"] if j["id"] in ids}
        if len(states) == len(ids) and set(states.values()) <= FINISHED:
            break
        await asyncio.sleep(0.05)
    failed = sum(state == "failed" for state in states.values())
    unheard = len(ids) - sum(state in FINISHED for state in states.values())
    if unheard and not run.pitfall:
        raise ScenarioError(f"{unheard} supervised job(s) unfinished after {HEARD_WITHIN_S} s")
    note = f"failures recorded {failed}/{FIRE_JOBS}"
    if unheard:
        note += f"; {unheard} still 'running' {HEARD_WITHIN_S:g} s later (outcome never heard)"
    return Outcome(requests, note)


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("basics", "sleep", "await asyncio.sleep", "time.sleep in async def", basics_sleep),
    Scenario(
        "basics", "cpu", "process pool", "CPU loop in async def", basics_cpu, start_cpu_workers
    ),
    Scenario("concurrency", "gather", "gather", "sequential awaits", concurrency_gather),
    Scenario("concurrency", "race", "wait(tasks)", "wait(coroutines)", concurrency_race),
    Scenario("concurrency", "timeout", "asyncio.timeout", "no timeout", concurrency_timeout),
    Scenario("concurrency", "bounded", "semaphore", "unbounded", concurrency_bounded),
    Scenario("tasks", "fire-and-forget", "supervised", "task lost", tasks_fire_and_forget),
    *scenarios_ws.SCENARIOS,
    *scenarios_sse.SCENARIOS,
    *scenarios_stream.SCENARIOS,
    *scenarios_db.SCENARIOS,
    *scenarios_cache.SCENARIOS,
)
