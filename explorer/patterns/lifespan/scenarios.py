"""The lifespan pattern's scenarios: blocking mode switches the server to the pitfall form.

- ``app-startup``: a child app whose startup fails after its first resource opened. Right,
  the corrected ``lifespan`` closes what it opened; as the pitfall (``@app.on_event``) the
  shutdown handlers never run and the first resource is left open.
- ``pool-leak``: 7 failing requests on a pool of 5. Right, ``async with`` rolls back and
  releases each time and the pool stays full; as the pitfall each failing request keeps its
  connection, idle drops by one per request, then acquires time out (503).
"""

from __future__ import annotations

from explorer.tools.report.scenario import Outcome, Scenario, ScenarioError, ScenarioRun, expect

#: more failing requests than the pool has connections: the pitfall runs it dry
FAILING_REQUESTS = 7
#: a short acquire timeout, so the 503s of an empty pool come quickly
ACQUIRE_TIMEOUT_S = 0.2


async def lifespan_app_startup(run: ScenarioRun) -> Outcome:
    """A child app's life (under uvicorn) whose startup fails after the first open."""
    response = await run.http.post("/lifespan/app/run", params={"fail_at": "second"})
    life = expect(response).json()
    closed = expect(await run.http.post("/lifespan/app/cleanup")).json()
    left = list(life["still_open"])
    if left and not run.pitfall:
        raise ScenarioError(f"the corrected lifespan left {left} open")
    warned = " (DeprecationWarning recorded)" if life["warnings"] else ""
    verdict = f"LEFT OPEN: {', '.join(left)}" if left else "closed all it opened"
    note = f"{life['form']}, startup fails at the 2nd open: {verdict}{warned}"
    extra = {
        "form": life["form"],
        "opened": life["opened"],
        "still_open": left,
        "cleaned_up": closed["closed"],
    }
    return Outcome(2, note, extra)


async def lifespan_pool_leak(run: ScenarioRun) -> Outcome:
    """7 failing requests, one after another, on a pool of 5 connections."""
    expect(await run.http.post("/lifespan/pool/reset"))
    params: dict[str, str | float] = {"fail": "true", "timeout_s": ACQUIRE_TIMEOUT_S}
    idle: list[int] = []
    statuses: list[int] = []
    try:
        for _ in range(FAILING_REQUESTS):
            answer = expect(await run.http.post("/lifespan/pool/request", params=params), 409, 503)
            statuses.append(answer.status_code)
            idle.append(int(expect(await run.http.get("/lifespan/pool")).json()["idle"]))
    finally:
        returned = int(expect(await run.http.post("/lifespan/pool/reset")).json()["returned"])
    if not run.pitfall and (returned or 503 in statuses):
        raise ScenarioError(f"async with leaked: idle {idle}, statuses {statuses}")
    timeouts = statuses.count(503)
    note = f"{FAILING_REQUESTS} failing requests: idle after each {idle}"
    note += f", {returned} leaked" if returned else ", none leaked"
    if timeouts:
        note += f", then {timeouts} × 503 (acquire timed out)"
    extra = {"idle": idle, "statuses": statuses, "leaked": returned}
    return Outcome(2 * FAILING_REQUESTS + 2, note, extra)


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("app-startup", "lifespan (corrected)", "@app.on_event", lifespan_app_startup),
    Scenario("pool-leak", "async with", "bare acquire", lifespan_pool_leak),
)
