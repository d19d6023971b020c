"""The lifespan pattern's scenarios.

- ``startup-fails``: a child app whose second resource fails to open at startup, run 3
  times. Right, the corrected lifespan closes what it opened; as the pitfall ``on_event``
  (blocking mode) leaves the first resource open every time (the scenario closes them
  after counting).
- ``leaked-connections``: 6 failing requests on a pool of 5. Right, ``async with``: idle
  stays 5; as the pitfall each failing request keeps its connection, and the sixth times
  out (503). The scenario gives them back after counting.
"""

from __future__ import annotations

from explorer.tools.report.scenario import Outcome, Scenario, ScenarioRun, expect

LIVES = 3
FAILING_REQUESTS = 6
TIMEOUT_S = 0.5


async def startup_fails(run: ScenarioRun) -> Outcome:
    """3 child apps whose startup fails after the first open: what is left open?"""
    left = 0
    warned = False
    for _ in range(LIVES):
        life = expect(await run.http.post("/lifespan/app/run", params={"fail_at": "second"}))
        body = life.json()
        left += len(body["still_open"])
        warned = warned or bool(body["warnings"])
    closed = expect(await run.http.post("/lifespan/app/cleanup")).json()["closed"]
    note = f"{LIVES} failed startups: {left} resource(s) left open"
    if warned:
        note += " (and a DeprecationWarning)"
    extra = {"lives": LIVES, "left_open": left, "cleaned_up": len(closed)}
    return Outcome(LIVES + 1, note, extra)


async def leaked_connections(run: ScenarioRun) -> Outcome:
    """6 failing requests on a pool of 5: the idle count after each."""
    expect(await run.http.post("/lifespan/pool/reset"))
    idle: list[int] = []
    statuses: list[int] = []
    params = {"timeout_s": str(TIMEOUT_S)}
    for _ in range(FAILING_REQUESTS):
        response = expect(await run.http.post("/lifespan/pool/request", params=params), 409, 503)
        statuses.append(response.status_code)
        idle.append(int(expect(await run.http.get("/lifespan/pool")).json()["idle"]))
    returned = expect(await run.http.post("/lifespan/pool/reset")).json()["returned"]
    timeouts = statuses.count(503)
    note = f"idle after each failing request: {' '.join(map(str, idle))}"
    if timeouts:
        note += f"; {timeouts} × 503 (acquire timed out)"
    extra = {"idle": idle, "statuses": statuses, "leaked": returned}
    return Outcome(2 * FAILING_REQUESTS + 2, note, extra)


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("startup-fails", "lifespan closes", "on_event leaves open", startup_fails),
    Scenario("leaked-connections", "async with", "bare acquire leaks", leaked_connections),
)
