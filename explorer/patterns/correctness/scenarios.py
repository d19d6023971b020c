"""The correctness pattern's scenarios (blocking mode picks each demo's pitfall form).

- ``missing-await``: 5 calls of the row-writing helper. Right, awaited: 5 rows written; as
  the pitfall: 0 rows, 5 "never awaited" warnings (captured by the server).
- ``race``: N = 50 concurrent buys of a stock of 50 in memory and in the SQLite file.
  Right (lock / atomic UPDATE): 0 lost updates; as the pitfall, lost updates counted.
- ``deadlock``: two transfers taking lock A and lock B, sent at once. Right (one order):
  both finish; as the pitfall (opposite orders) both hang, the task inspector reports the
  cycle, and End answers both 409 (each hang is also bounded by the server, 5 s here).
- ``swallow``: a failing background task and a gather with 2 failing steps. Right: 3
  failures reported; as the pitfall: 0 reported while 3 happened.
"""

from __future__ import annotations

import asyncio

from explorer.tools.report.scenario import Outcome, Scenario, ScenarioRun, expect

CALLS = 5
BUYERS = 50
STORES = ("memory", "sqlite")


async def missing_await(run: ScenarioRun) -> Outcome:
    """5 calls of the helper: rows written, warnings given."""
    written = warned = 0
    for _ in range(CALLS):
        body = expect(await run.http.post("/correctness/missing-await")).json()
        written += body["rows_after"] - body["rows_before"]
        warned += body["warning"] is not None
    note = f"{CALLS} calls: {written} row(s) written, {warned} 'never awaited' warning(s)"
    return Outcome(CALLS, note, {"written": written, "warned": warned})


async def race(run: ScenarioRun) -> Outcome:
    """50 concurrent buys of 50 items per store: the lost updates."""
    lost: dict[str, int] = {}
    for store in STORES:
        reset = {"store": store, "stock": str(BUYERS)}
        expect(await run.http.post("/correctness/race/reset", params=reset))
        buys = [
            run.http.post("/correctness/race/buy", params={"store": store}) for _ in range(BUYERS)
        ]
        for response in await asyncio.gather(*buys):
            expect(response)
        summary = expect(await run.http.get("/correctness/race", params={"store": store})).json()
        lost[store] = int(summary["lost"])
    note = ", ".join(f"{store}: {n} of {BUYERS} updates lost" for store, n in lost.items())
    return Outcome(len(STORES) * (BUYERS + 2), note, {"lost": lost})


async def deadlock(run: ScenarioRun) -> Outcome:
    """Two opposite transfers: finished, or stuck in a cycle the task inspector names."""
    path = "/correctness/deadlock/transfer"
    sent = [
        asyncio.create_task(run.http.post(path, params={"first": lock, "bound_s": "5"}))
        for lock in "AB"
    ]
    done, _ = await asyncio.wait(sent, timeout=1.0)
    cycle: list[str] = []
    if len(done) < len(sent):  # stuck: what the task inspector sees, then End
        tasks = expect(await run.http.get("/monitor/tasks", params={"long_wait_s": "0.2"}))
        cycles = tasks.json()["cycles"]
        cycle = list(cycles[0]["locks"]) if cycles else []
        expect(await run.http.post("/correctness/deadlock/end"))
    statuses = [(await task).status_code for task in sent]
    finished = statuses.count(200)
    if finished == len(sent):
        note = f"{finished} transfers finished"
    else:
        seen = " -> ".join(cycle) if cycle else "no cycle seen"
        note = f"{len(sent) - finished} stuck (cycle: {seen}), ended by End (409)"
    return Outcome(len(sent), note, {"finished": finished, "cycle": cycle})


async def swallow(run: ScenarioRun) -> Outcome:
    """A failing task and a gather with 2 failures: how many the answers reported."""
    reported = happened = 0
    for kind in ("task", "gather"):
        body = expect(await run.http.post("/correctness/swallow", params={"kind": kind})).json()
        reported += len(body["failed"])
        happened += body["really_failed"]
    note = f"{happened} failures, {reported} reported"
    return Outcome(2, note, {"reported": reported, "happened": happened})


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("missing-await", "awaited", "no await", missing_await),
    Scenario("race", "lock / atomic UPDATE", "read-await-write", race),
    Scenario("deadlock", "one lock order", "opposite orders", deadlock),
    Scenario("swallow", "checked", "swallowed", swallow),
)
