"""The background jobs pattern's scenario: fire-and-forget, supervised or lost."""

from __future__ import annotations

import asyncio
import time

from explorer.tools.report.scenario import Outcome, Scenario, ScenarioError, ScenarioRun, expect

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
    Scenario("fire-and-forget", "supervised", "task lost", tasks_fire_and_forget),
)
