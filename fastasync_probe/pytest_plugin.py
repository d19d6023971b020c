"""pytest plugin: fail a test during which the event loop stalled longer than a budget.

Opt in with ``--loop-stall-budget 50ms`` (every test) or ``@pytest.mark.loop_stall_budget
("80ms")`` (one test, overriding the option); ``--loop-stall-report PATH`` writes every
monitored test's stalls as JSON (given alone, it monitors every test and fails none).
Without any of them the plugin only registers its options and marker: no monitor, no patch.

How: once some test opted in, ``BaseEventLoop.run_forever`` notes which loops run. During
an opted-in test's call phase every loop that runs (pytest-asyncio's, ``asyncio.run``'s,
Starlette's TestClient portal) has a :class:`LoopMonitor`, on its own thread: started as it
enters ``run_forever`` or, already running, from a callback inside it; stopped at the end
of the call. Starlette's ``__call__`` is wrapped meanwhile, so a stall names its route.
"""

from __future__ import annotations

import argparse
import asyncio
import asyncio.base_events
import contextlib
import dataclasses
import functools
import json
import math
import re
import sys
import threading
import time
from collections.abc import Callable, Generator, Iterator, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .monitor import LoopMonitor, Stall

MARKER = "loop_stall_budget"
#: the watchdog's stall threshold never exceeds this (shorter budgets lower it)
_THRESHOLD_S = 0.015
#: how long the end of a test waits for a loop in another thread to stop its monitor
_STOP_WAIT_S = 2.0
_BUDGET = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s)?\s*$")
_PASSES_THROUGH = 8  # library frames shown after the test's own ones


def parse_budget(text: str | float) -> float:
    """Seconds from ``50ms``, ``0.05s`` or ``50`` (milliseconds); ValueError otherwise."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        text = f"{text}ms"
    match = _BUDGET.match(str(text))
    value = float(match[1]) / (1000.0 if match[2] != "s" else 1.0) if match else math.nan
    if not math.isfinite(value) or value <= 0:
        raise ValueError(
            f"a loop stall budget is a positive duration like 50ms or 0.05s, not {text!r}"
        )
    return value


def _budget_option(text: str) -> float:
    try:
        return parse_budget(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("fastasync_probe", "event-loop stalls (fastasync_probe)")
    group.addoption(
        "--loop-stall-budget",
        type=_budget_option,
        default=None,
        metavar="DURATION",
        help="fail any test during which the event loop stalled longer (50ms, 0.05s, 50=ms)",
    )
    group.addoption(
        "--loop-stall-report",
        default=None,
        metavar="PATH",
        help="write every monitored test's loop stalls to PATH as JSON",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(duration): fail the test if the event loop stalls longer than duration "
        "(50ms, 0.05s, 50=ms); overrides --loop-stall-budget",
    )
    report = config.getoption("--loop-stall-report")
    if report is not None and not Path(report).resolve().parent.is_dir():
        raise pytest.UsageError(f"the folder of --loop-stall-report {report} does not exist")


@dataclass
class _Watch:
    """One loop's monitor for one test: the stalls it had before are not this test's."""

    monitor: LoopMonitor
    before: list[Stall]
    done: threading.Event = field(default_factory=threading.Event)
    stalls: list[Stall] = field(default_factory=list)

    def new_stalls(self) -> list[Stall]:
        known = {id(stall) for stall in self.before}
        return [stall for stall in list(self.monitor.stalls) if id(stall) not in known]


class _Recording:
    """The loops monitored during one test's call phase and the stalls they had."""

    def __init__(self, threshold_s: float) -> None:
        self.threshold_s = threshold_s
        self.started_at = time.time()
        self.active = True
        self._lock = threading.Lock()
        self.watches: dict[asyncio.AbstractEventLoop, _Watch] = {}

    def watch(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start monitoring ``loop`` (on its thread)."""
        from .monitor import USER_CODE, LoopMonitor, MonitorConfig

        with self._lock:
            if not self.active or loop in self.watches:
                return
            config = MonitorConfig(stall_threshold_s=self.threshold_s, project_code=USER_CODE)
            monitor = LoopMonitor.for_loop(loop, config)
            self.watches[loop] = _Watch(monitor, list(monitor.stalls))
        monitor.start()

    def unwatch(self, loop: asyncio.AbstractEventLoop) -> None:
        """Stop monitoring ``loop`` (on its thread) and keep what it recorded."""
        watch = self.watches.get(loop)
        if watch is None or watch.done.is_set():
            return
        watch.monitor.stop()  # joins the watchdog: every finished stall is published
        watch.stalls = watch.new_stalls()
        watch.done.set()

    def finish(self) -> list[Stall]:
        """Stop every loop's monitor (waiting for loops in other threads) and the stalls
        that began during the call phase, in order."""
        with self._lock:
            self.active = False
            watches = list(self.watches.items())
        for loop, watch in watches:
            if watch.done.is_set():
                continue
            with contextlib.suppress(RuntimeError):  # closed: run_forever's exit unwatched it
                loop.call_soon_threadsafe(self.unwatch, loop)
            if not watch.done.wait(_STOP_WAIT_S):
                # stuck (or never to run again): what it recorded so far, monitor left on
                watch.stalls = watch.new_stalls()
        stalls = [s for _, w in watches for s in w.stalls if s.started_at >= self.started_at]
        return sorted(stalls, key=lambda s: s.started_at)


class _Loops:
    """The running asyncio loops, known by patching ``BaseEventLoop.run_forever``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.running: dict[asyncio.AbstractEventLoop, int] = {}
        self.recording: _Recording | None = None
        self._watched_by: dict[asyncio.AbstractEventLoop, _Recording] = {}
        self._original: Callable[[asyncio.base_events.BaseEventLoop], None] | None = None

    def install(self) -> None:
        original = self._original = asyncio.base_events.BaseEventLoop.run_forever
        loops = self

        def run_forever(loop: asyncio.base_events.BaseEventLoop) -> None:
            loops._entered(loop)
            try:
                original(loop)
            finally:
                loops._left(loop)

        asyncio.base_events.BaseEventLoop.run_forever = run_forever  # type: ignore[method-assign, assignment]

    def uninstall(self) -> None:
        if self._original is not None:
            asyncio.base_events.BaseEventLoop.run_forever = self._original  # type: ignore[method-assign, assignment]
            self._original = None

    def _entered(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            self.running.setdefault(loop, threading.get_ident())
            recording = self.recording
            if recording is not None:
                self._watched_by[loop] = recording
        if recording is not None:
            recording.watch(loop)

    def _left(self, loop: asyncio.AbstractEventLoop) -> None:
        if loop.is_running():  # a nested run_forever refused: the outer one goes on
            return
        with self._lock:
            self.running.pop(loop, None)
            recording = self._watched_by.pop(loop, None)
        if recording is not None:
            recording.unwatch(loop)

    def begin(self, threshold_s: float) -> _Recording:
        """Monitor every loop from now on, those already running included."""
        recording = _Recording(threshold_s)
        with self._lock:
            self.recording = recording
            running = list(self.running.items())
            for loop, _ in running:
                self._watched_by[loop] = recording
        for loop, thread in running:
            if thread == threading.get_ident():
                recording.watch(loop)
            else:
                with contextlib.suppress(RuntimeError):  # closed meanwhile
                    loop.call_soon_threadsafe(recording.watch, loop)
        return recording

    def end(self, recording: _Recording) -> list[Stall]:
        with self._lock:
            self.recording = None
        return recording.finish()


@contextlib.contextmanager
def _naming_routes() -> Iterator[None]:
    """While it lasts, Starlette apps register each request's task with its scope (the
    middleware of ``install``), so that a stall names its route."""
    starlette: Any = getattr(sys.modules.get("starlette.applications"), "Starlette", None)
    if starlette is None:  # not imported: no Starlette app can run in this test
        yield
        return
    from .middleware import RequestAttribution
    from .monitor import request_tasks

    original = starlette.__call__

    async def __call__(self: Any, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        task = asyncio.current_task()
        if task is not None and request_tasks.request_of(task) is not None:
            # named already: the app has the probe (install) or the middleware inside
            await original(self, scope, receive, send)
            return
        await RequestAttribution(functools.partial(original, self))(scope, receive, send)

    starlette.__call__ = __call__
    try:
        yield
    finally:
        starlette.__call__ = original


@dataclass
class _Outcome:
    """What the report says of one monitored test."""

    nodeid: str
    budget_ms: float | None
    stalls: list[Stall] = field(default_factory=list)
    outcome: str = "not run"


class StallBudget:
    """The plugin's state for a session in which some test opted in."""

    def __init__(self, config: pytest.Config) -> None:
        self.budget_s: float | None = config.getoption("--loop-stall-budget")
        report = config.getoption("--loop-stall-report")
        self.report = Path(report) if report is not None else None
        self.loops = _Loops()
        self.outcomes: dict[str, _Outcome] = {}

    def budget_of(self, item: pytest.Item) -> float | None:
        """The test's budget in seconds (its marker's, else the option's), else None."""
        marker = item.get_closest_marker(MARKER)
        if marker is None:
            return self.budget_s
        if len(marker.args) != 1 or marker.kwargs:
            raise pytest.UsageError(f'{item.nodeid}: {MARKER} takes one duration, like "50ms"')
        try:
            return parse_budget(marker.args[0])
        except ValueError as error:
            raise pytest.UsageError(f"{item.nodeid}: {error}") from None

    def monitored(self, item: pytest.Item) -> bool:
        return self.report is not None or self.budget_of(item) is not None

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, object, object]:
        if not self.monitored(item):
            return (yield)
        budget = self.budget_of(item)
        recording = self.loops.begin(min(budget or _THRESHOLD_S, _THRESHOLD_S))
        failed = True
        try:
            with _naming_routes():
                result = yield
            failed = False
        finally:
            stalls = self.loops.end(recording)
            budget_ms = None if budget is None else budget * 1000.0
            self.outcomes[item.nodeid] = _Outcome(item.nodeid, budget_ms, stalls)
            if failed and stalls:  # the test's own failure first; its stalls beside it
                item.add_report_section("call", "loop stalls", describe(stalls, budget))
        over = [s for s in stalls if budget_ms is not None and s.duration_ms > budget_ms]
        if over:
            pytest.fail(describe(over, budget), pytrace=False)
        return result

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        outcome = self.outcomes.get(report.nodeid)
        # the call phase's outcome, unless setup or teardown went wrong
        decisive = report.when == "call" or report.outcome != "passed"
        if outcome is not None and decisive and outcome.outcome in ("not run", "passed"):
            outcome.outcome = report.outcome

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.loops.uninstall()
        if self.report is not None:
            self.report.write_text(json.dumps(self.as_json(), indent=2) + "\n")

    def as_json(self) -> dict[str, Any]:
        """The report: each monitored test's outcome and stalls (over budget or not)."""
        tests: list[dict[str, Any]] = []
        for test in self.outcomes.values():
            stalls = [stall.as_dict() for stall in test.stalls]
            for entry in stalls:
                budget = test.budget_ms
                entry["over_budget"] = budget is not None and entry["duration_ms"] > budget
            tests.append({**dataclasses.asdict(test), "stalls": stalls})
        over = sum(any(entry["over_budget"] for entry in test["stalls"]) for test in tests)
        stalls_total = sum(len(test["stalls"]) for test in tests)
        budget_ms = None if self.budget_s is None else self.budget_s * 1000.0
        summary = {"tests": len(tests), "over_budget": over, "stalls": stalls_total}
        return {
            "plugin": "fastasync_probe",
            "budget_ms": budget_ms,
            "summary": summary,
            "tests": tests,
        }


def describe(stalls: list[Stall], budget_s: float | None) -> str:
    """The failure text: each stall, longest first (its first line says it all), with its
    culprit line, route, stack (the test's own frames first) and the requests that waited."""
    budget = "" if budget_s is None else f" (budget {budget_s * 1000.0:g} ms)"
    lines: list[str] = []
    for stall in sorted(stalls, key=lambda s: -s.duration_ms):
        route = f", on {stall.route}" if stall.route else ""
        where = stall.location or "an unknown line"
        lines.append(f"event loop stalled {stall.duration_ms:.1f} ms{budget} at {where}{route}")
        lines.append(
            f"  {stall.kind}: {stall.blocked_ms:.1f} ms blocked, {stall.cpu_ms:.1f} ms CPU"
        )
        own, library = _split_stack(stall)
        lines += ["  own frames, innermost first:", *(f"    {frame}" for frame in own)]
        lines += ["  library frames:", *(f"    {f}" for f in library[:_PASSES_THROUGH])]
        if len(library) > _PASSES_THROUGH:
            lines.append(f"    ... {len(library) - _PASSES_THROUGH} more")
        for victim in stall.victims:
            lines.append(
                f"  waited {victim.waited_ms:.1f} ms: {victim.route} ({victim.request_id})"
            )
    return "\n".join(lines)


def _split_stack(stall: Stall) -> tuple[list[str], list[str]]:
    """The stack (innermost first) as the user's own frames, then the libraries'."""
    if not stall.frames:
        return [], list(stall.stack)
    own = [str(frame) for frame in stall.frames if frame.own]
    return own, [str(frame) for frame in stall.frames if not frame.own]


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Switch the plugin on only if some test opted in (a budget, a marker, a report)."""
    wanted = (
        config.getoption("--loop-stall-budget") is not None
        or config.getoption("--loop-stall-report") is not None
        or any(item.get_closest_marker(MARKER) for item in items)
    )
    if wanted and not config.pluginmanager.has_plugin("fastasync_probe-budget"):
        plugin = StallBudget(config)
        for item in items:
            plugin.budget_of(item)  # a bad marker is a usage error before anything runs
        plugin.loops.install()
        config.pluginmanager.register(plugin, "fastasync_probe-budget")
