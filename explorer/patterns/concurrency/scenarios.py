"""The concurrency pattern's scenarios: gather, race, timeout, bounded fan-out."""

from __future__ import annotations

from typing import Any

from explorer.tools.report.scenario import Outcome, Scenario, ScenarioRun, expect


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


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("gather", "gather", "sequential awaits", concurrency_gather),
    Scenario("race", "wait(tasks)", "wait(coroutines)", concurrency_race),
    Scenario("timeout", "asyncio.timeout", "no timeout", concurrency_timeout),
    Scenario("bounded", "semaphore", "unbounded", concurrency_bounded),
)
