"""Run every scenario in both forms against the embedded server, with no UI, and measure."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx

from explorer.context import counting_explorer_code
from explorer.tools.report.measure import FormResult, RssSampler, StallMark, StallSummary
from explorer.tools.report.scenario import Scenario, ScenarioRun
from fastasync_probe.monitor import LoopMonitor
from server.runner import ServerHandle
from server.settings import Settings
from server.state import state_of

log = logging.getLogger("fastasync.report")

#: A stall is published by the watchdog thread once the loop moves on; give it this long.
STALL_SETTLE_S = 0.05
#: Quiet time between forms, so one form's tail does not land in the next one's figures.
COOL_DOWN_S = 0.2
REQUEST_TIMEOUT_S = 30.0

Progress = Callable[[str, int, int], None]


@dataclass(slots=True)
class ScenarioResult:
    """Both forms of a scenario and how they compare."""

    scenario: Scenario
    right: FormResult
    pitfall: FormResult

    @property
    def errored(self) -> bool:
        return self.right.error is not None or self.pitfall.error is not None

    def ratio(self, figure: Callable[[FormResult], float]) -> float | None:
        """pitfall ÷ right for one figure (None when right is zero or a form errored)."""
        if self.errored:
            return None
        right = figure(self.right)
        return figure(self.pitfall) / right if right > 0 else None


@dataclass(slots=True)
class Report:
    """Every scenario's result, and where it ran."""

    results: list[ScenarioResult] = field(default_factory=list)
    started_at: float = field(default_factory=time.time)
    wall_s: float = 0.0

    @property
    def errors(self) -> int:
        return sum(r.errored for r in self.results)


def report_settings(base: Settings, data_dir: Path) -> Settings:
    """The embedded server of a report: loopback, port 0, a long lag history."""
    # rolling_s bounds how far back LoopMonitor.lag_since can see: longer than any form.
    monitor = replace(base.monitor, rolling_s=300.0)
    local = replace(
        base, host="127.0.0.1", port=0, blocking_mode=False, data_dir=data_dir, monitor=monitor
    )
    # the scenarios' clients share the server's loop: their lines can be blamed too
    return counting_explorer_code(local)


async def run_form(
    scenario: Scenario, pitfall: bool, http: httpx.AsyncClient, server: ServerHandle
) -> FormResult:
    """One form: switch blocking mode, run the workload, measure what it cost."""
    form = "pitfall" if pitfall else "right"
    result = FormResult(scenario=scenario.key, form=form)
    monitor: LoopMonitor = state_of(server.app).monitor
    switched = await http.put("/monitor/blocking", json={"enabled": pitfall})
    switched.raise_for_status()
    run = ScenarioRun(http=http, server=server, pitfall=pitfall)
    if scenario.warmup is not None:
        try:
            await scenario.warmup(run)
        except Exception as error:  # recorded like a failed form; the report goes on
            log.exception("%s (%s) warm-up failed", scenario.key, form)
            result.error = f"warm-up: {type(error).__name__}: {error}"
            return result
    await asyncio.sleep(COOL_DOWN_S)
    stall_seq = monitor.last_stall_seq()
    sampler = RssSampler()
    sampler.start()
    loop_started = asyncio.get_running_loop().time()
    wall_started = time.time()  # stalls are stamped in unix time
    started = time.perf_counter()
    try:
        outcome = await scenario.run(run)
    except Exception as error:  # a report records every failure and goes on
        log.exception("%s (%s) failed", scenario.key, form)
        result.error = f"{type(error).__name__}: {error}"
    else:
        result.requests, result.note = outcome.requests, outcome.note
        result.extra = dict(outcome.extra)
    finally:
        result.wall_s = time.perf_counter() - started
        result.lag = monitor.lag_since(loop_started)
        result.lag_series = [
            (t - loop_started, lag) for t, lag in monitor.lag_samples_since(loop_started)
        ]
        result.rss_growth_bytes = sampler.finish()
        result.rss_peak_bytes = sampler.peak
    await asyncio.sleep(STALL_SETTLE_S)
    stalls = monitor.stalls_after(stall_seq)
    result.stalls = StallSummary.of(stalls)
    result.stall_marks = [StallMark.of(stall, wall_started) for stall in stalls]
    return result


async def run_report(
    scenarios: Sequence[Scenario], settings: Settings, progress: Progress | None = None
) -> Report:
    """Start the server, run each scenario right then pitfall, stop the server."""
    report = Report()
    started = time.perf_counter()
    server = ServerHandle(settings)
    await server.start()
    steps, step = len(scenarios) * 2, 0
    try:
        timeout = httpx.Timeout(REQUEST_TIMEOUT_S)
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
        async with httpx.AsyncClient(base_url=server.url, timeout=timeout, limits=limits) as http:
            for scenario in scenarios:
                forms: list[FormResult] = []
                for pitfall in (False, True):
                    if progress:
                        form = "pitfall" if pitfall else "right"
                        progress(f"{scenario.key} ({form})", step, steps)
                    forms.append(await run_form(scenario, pitfall, http, server))
                    step += 1
                report.results.append(ScenarioResult(scenario, forms[0], forms[1]))
            await http.put("/monitor/blocking", json={"enabled": False})
        if progress:
            progress("done", steps, steps)
    finally:
        await server.stop()
    report.wall_s = time.perf_counter() - started
    return report
