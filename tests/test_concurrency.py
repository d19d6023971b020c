"""Concurrency over real HTTP: nine strategies, timed task by task, and their pitfalls.

Bounds are read off the server's own timestamps and leave room for a slow, noisy machine.
Where the outcome depends on the upstreams' random draw, the test picks a seed whose draw
(computed with the server's own ``simulated_outcome``) makes the expected outcome clear-cut.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Select, Static

from explorer.app import ExplorerApp
from explorer.patterns.concurrency.pane import ConcurrencyPane, KeptRun
from explorer.patterns.concurrency.strategies import FIELDS
from explorer.widgets.code_view import CodeView
from explorer.widgets.timeline import Bar, Timeline
from server.patterns.concurrency.router import STRATEGY_FUNCTIONS, DemoClient, simulated_outcome
from server.runner import ServerHandle
from server.state import state_of
from tests.conftest import FrozenSnapshot, eventually
from tests.http_checks import clear_422_detail, send_raw
from tests.layout import problems_of, visible_region
from tests.pilots import (
    enter_and_click,
    escape_leaves_the_field,
    live_pane,
    open_frozen,
    open_live,
    press_for,
    quit_with_q,
    still_picture,
    tab_order,
    told_invalid_input,
)

Report = dict[str, Any]
Draw = list[tuple[float, bool]]


def our_tasks(prefix: str = "concurrency:") -> list[str]:
    """Names of the run's tasks (or the upstreams', ``upstream:``) pending on this loop."""
    return sorted(t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith(prefix))


async def run(
    client: httpx.AsyncClient, body: dict[str, Any] | None = None, **fields: Any
) -> Report:
    """POST a run; every task it created must be finished by the time it answers."""
    body = {**(body or {}), **fields}
    response = await client.post("/concurrency/run", json=body)
    assert response.status_code == 200, response.text
    assert our_tasks() == []
    report: Report = response.json()
    assert report["ok"] + report["failed"] + report["cancelled"] == len(report["tasks"])
    return report


@dataclass(frozen=True)
class Upstreams:
    """A run's upstream parameters, and what its upstreams will do for a given seed."""

    n: int
    latency: float
    jitter: float = 0.0
    fail: float = 0.0

    def draw(self, seed: int) -> Draw:
        """``(delay, fails)`` of ``up-0`` .. ``up-{n-1}`` for this seed."""
        return [
            simulated_outcome(f"up-{i}", self.latency, self.jitter, self.fail, seed)
            for i in range(self.n)
        ]

    def delays(self, seed: int) -> list[float]:
        return [delay for delay, _ in self.draw(seed)]

    def find_seed(self, wanted: Callable[[Draw], bool]) -> int:
        """The first seed whose draw satisfies ``wanted``."""
        for seed in range(20_000):
            if wanted(self.draw(seed)):
                return seed
        raise AssertionError("no seed gives that draw")

    def body(self, strategy: str, seed: int, **more: float) -> dict[str, Any]:
        """The ``POST /concurrency/run`` body for these upstreams."""
        return {
            "strategy": strategy,
            "n": self.n,
            "latency": self.latency,
            "jitter": self.jitter,
            "failure_rate": self.fail,
            "seed": seed,
            **more,
        }


def states(report: Report) -> list[str]:
    return [task["state"] for task in report["tasks"]]


def peak_overlap(report: Report) -> int:
    """Most tasks in flight at once, from the recorded timestamps."""
    edges = sorted(
        [(t["start_ms"], 1) for t in report["tasks"]] + [(t["end_ms"], -1) for t in report["tasks"]]
    )
    peak = current = 0
    for _, step in edges:
        current += step
        peak = max(peak, current)
    return peak


# -- right forms ------------------------------------------------------------------------


async def test_gather_overlaps_and_sequential_queues_up(client: httpx.AsyncClient) -> None:
    gathered = await run(client, strategy="gather", n=5, latency=0.2)
    assert gathered["effective"] == "gather"
    assert states(gathered) == ["ok"] * 5
    tasks = gathered["tasks"]
    assert all(a["start_ms"] < b["end_ms"] for a in tasks for b in tasks)  # the bars overlap
    assert 190 <= gathered["wall_ms"] < 600

    sequential = await run(client, strategy="sequential", n=5, latency=0.2)
    assert sequential["effective"] == "sequential"
    tasks = sequential["tasks"]
    assert all(b["start_ms"] >= a["end_ms"] for a, b in itertools.pairwise(tasks))
    assert 1000 <= sequential["wall_ms"] < 2000
    assert sequential["completion_order"] == [0, 1, 2, 3, 4]


def clear_winner(d: Draw) -> bool:
    """The fastest upstream beats the next by 150 ms at least: no doubt which one wins."""
    first, second = sorted(delay for delay, _ in d)[:2]
    return second - first >= 0.15


async def test_race_cancels_and_awaits_the_losers(client: httpx.AsyncClient) -> None:
    upstreams = Upstreams(n=5, latency=0.3, jitter=0.2)

    seed = upstreams.find_seed(clear_winner)
    delays = upstreams.delays(seed)
    report = await run(client, upstreams.body("race", seed))

    winner = delays.index(min(delays))
    assert report["winner"] == winner
    assert report["ok"] == 1
    assert report["tasks"][winner]["state"] == "ok"
    assert report["completion_order"] == [winner]
    won_at = report["tasks"][winner]["end_ms"]
    losers = [t for t in report["tasks"] if t["index"] != winner]
    assert [t["state"] for t in losers] == ["cancelled"] * 4
    for loser in losers:  # cancelled *and awaited*: their finally ran right after the win
        assert loser["finally_ms"] is not None
        assert won_at <= loser["finally_ms"] <= won_at + 100
    assert report["wall_ms"] < min(delays) * 1000 + 150  # nobody waited for the slow ones


async def test_race_skips_a_failure_that_comes_first(client: httpx.AsyncClient) -> None:
    upstreams = Upstreams(n=4, latency=0.3, jitter=0.2, fail=0.3)

    def fails_then_wins(d: Draw) -> bool:
        ranked = sorted(d)
        return (
            ranked[0][1]
            and not ranked[1][1]
            and ranked[1][0] - ranked[0][0] >= 0.08
            and ranked[2][0] - ranked[1][0] >= 0.1
        )

    seed = upstreams.find_seed(fails_then_wins)
    delays = upstreams.delays(seed)
    ranked = sorted(range(4), key=lambda i: delays[i])
    report = await run(client, upstreams.body("race", seed))
    assert report["tasks"][ranked[0]]["state"] == "failed"
    assert report["winner"] == ranked[1]
    assert report["completion_order"] == ranked[:2]
    assert sorted(states(report)) == ["cancelled", "cancelled", "failed", "ok"]


async def test_taskgroup_failure_cancels_the_siblings(client: httpx.AsyncClient) -> None:
    upstreams = Upstreams(n=5, latency=0.3, jitter=0.2, fail=0.3)

    def one_fast_failure(d: Draw) -> bool:
        failing = [delay for delay, fails in d if fails]
        others = [delay for delay, fails in d if not fails]
        return len(failing) == 1 and min(others) - failing[0] >= 0.15

    seed = upstreams.find_seed(one_fast_failure)
    culprit = next(i for i, (_, fails) in enumerate(upstreams.draw(seed)) if fails)
    report = await run(client, upstreams.body("taskgroup", seed))
    assert report["error"].startswith("ExceptionGroup: unhandled errors in a TaskGroup")
    assert f"upstream up-{culprit} failed (simulated)" in report["error"]
    failed_at = report["tasks"][culprit]["end_ms"]
    assert report["tasks"][culprit]["state"] == "failed"
    siblings = [t for t in report["tasks"] if t["index"] != culprit]
    assert [t["state"] for t in siblings] == ["cancelled"] * 4
    assert all(failed_at <= t["finally_ms"] <= failed_at + 100 for t in siblings)
    assert "cancelled its 4" in report["note"]


async def test_taskgroup_when_every_call_fails(client: httpx.AsyncClient) -> None:
    report = await run(client, strategy="taskgroup", n=5, failure_rate=1)
    assert report["ok"] == 0
    assert report["failed"] >= 1
    assert report["failed"] + report["cancelled"] == 5
    assert "ExceptionGroup" in report["error"]
    assert "failed (simulated)" in report["error"]


async def test_gather_with_and_without_return_exceptions(client: httpx.AsyncClient) -> None:
    upstreams = Upstreams(n=6, latency=0.2, fail=0.5)
    seed = upstreams.find_seed(lambda d: 2 <= sum(fails for _, fails in d) <= 4)
    expected = ["failed" if fails else "ok" for _, fails in upstreams.draw(seed)]

    report = await run(client, upstreams.body("gather_exceptions", seed))
    assert states(report) == expected  # nothing cancelled, every call got its answer
    assert report["error"] is None
    for task in report["tasks"]:
        if task["state"] == "failed":
            assert task["error"] == f"UpstreamError: upstream {task['label']} failed (simulated)"
        else:
            assert task["error"] is None

    plain = await run(client, upstreams.body("gather", seed))
    assert states(plain) == expected  # gather raised, yet the other calls ran on
    assert plain["error"].startswith("gather raised UpstreamError")


async def test_as_completed_yields_in_finishing_order(client: httpx.AsyncClient) -> None:
    upstreams = Upstreams(n=4, latency=0.25, jitter=0.2)

    def spread(d: Draw) -> bool:
        delays = sorted(delay for delay, _ in d)
        return all(b - a >= 0.04 for a, b in itertools.pairwise(delays))

    seed = upstreams.find_seed(spread)
    delays = upstreams.delays(seed)
    report = await run(client, upstreams.body("as_completed", seed))
    assert report["completion_order"] == sorted(range(4), key=lambda i: delays[i])
    assert report["completion_order"] != [0, 1, 2, 3] or delays == sorted(delays)


async def test_timeout_cancels_the_slow_calls_at_the_deadline(client: httpx.AsyncClient) -> None:
    upstreams = Upstreams(n=6, latency=0.3, jitter=0.25)

    def clear_cut(d: Draw) -> bool:
        delays = [delay for delay, _ in d]
        return (
            not any(0.2 <= x <= 0.4 for x in delays)
            and any(x < 0.2 for x in delays)
            and any(x > 0.4 for x in delays)
        )

    seed = upstreams.find_seed(clear_cut)
    delays = upstreams.delays(seed)
    report = await run(client, upstreams.body("timeout", seed, timeout_s=0.3))
    assert report["error"] == "TimeoutError: the 0.3 s deadline passed"
    for delay, task in zip(delays, report["tasks"], strict=True):
        if delay < 0.2:
            assert task["state"] == "ok"
        else:
            assert task["state"] == "cancelled"
            assert 290 <= task["end_ms"] < 400
            assert task["finally_ms"] is not None
    assert 290 <= report["wall_ms"] < 450


async def test_bounded_never_exceeds_its_limit(client: httpx.AsyncClient) -> None:
    # 60 calls, 5 at a time, 0.2 s each: 12 waves, ~2.4 s.
    report = await run(client, strategy="bounded", n=60, latency=0.2, limit=5)
    assert report["ok"] == 60
    assert peak_overlap(report) <= 5
    assert 2400 <= report["wall_ms"] < 6000
    assert "Semaphore(5)" in report["note"]


async def test_unbounded_fan_out_runs_out_of_pooled_connections(
    client: httpx.AsyncClient,
) -> None:
    # 60 calls of 1.5 s at once through 10 connections: 50 wait more than the 1 s pool timeout.
    report = await run(client, strategy="unbounded", n=60, latency=1.5)
    assert report["ok"] >= 1
    assert report["failed"] >= 40
    for task in report["tasks"]:
        if task["state"] == "failed":
            assert task["error"].startswith("PoolTimeout")
            assert 990 <= task["end_ms"] < 1490  # gave up at the pool timeout
    assert peak_overlap(report) > 10
    assert "PoolTimeout" in report["note"]
    assert report["wall_ms"] < 3000


async def test_a_run_says_what_each_upstream_drew(client: httpx.AsyncClient) -> None:
    """Every run is seeded (drawn when not given), so a cancelled call's latency is known."""
    upstreams = Upstreams(n=4, latency=0.3, jitter=0.2)

    seed = upstreams.find_seed(clear_winner)
    report = await run(client, upstreams.body("race", seed))
    assert report["seed"] == seed
    for delay, task in zip(upstreams.delays(seed), report["tasks"], strict=True):
        assert task["planned_ms"] == round(delay * 1000, 3)
        if task["state"] == "cancelled":  # cut before its upstream would have answered
            assert task["end_ms"] - task["start_ms"] < task["planned_ms"]

    unseeded = await run(client, strategy="gather", n=3, latency=0.05, jitter=0.05)
    again = Upstreams(n=3, latency=0.05, jitter=0.05).delays(unseeded["seed"])
    assert [t["planned_ms"] for t in unseeded["tasks"]] == [round(d * 1000, 3) for d in again]


# -- blocking mode: the pitfall forms ----------------------------------------------------


@pytest.mark.usefixtures("blocking")
async def test_blocking_mode_makes_gather_sequential(client: httpx.AsyncClient) -> None:
    report = await run(client, strategy="gather", n=5, latency=0.2)
    assert report["blocking_mode"] is True
    assert report["strategy"] == "gather"
    assert report["effective"] == "sequential"
    tasks = report["tasks"]
    assert all(b["start_ms"] >= a["end_ms"] for a, b in itertools.pairwise(tasks))
    assert report["wall_ms"] >= 5 * 200
    assert "Blocking mode" in report["note"]


@pytest.mark.usefixtures("blocking")
async def test_blocking_mode_runs_the_guides_broken_race(client: httpx.AsyncClient) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = await run(client, strategy="race", n=5)
        gc.collect()  # an unclosed coroutine would warn "never awaited" now at the latest
    assert not [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert report["effective"] == "race_coroutines"
    assert report["error"] == ("TypeError: Passing coroutines is forbidden, use tasks explicitly.")
    assert report["winner"] is None
    assert report["cancelled"] == 5
    assert all(t["error"] == "never started" and t["finally_ms"] is None for t in report["tasks"])
    assert "create_task" in report["note"]


@pytest.mark.usefixtures("blocking")
async def test_blocking_mode_drops_the_timeout_and_the_semaphore(
    client: httpx.AsyncClient,
) -> None:
    untimed = await run(client, strategy="timeout", n=3, latency=0.5, timeout_s=0.2)
    assert untimed["effective"] == "no_timeout"
    assert untimed["ok"] == 3
    assert untimed["error"] is None
    assert untimed["wall_ms"] >= 500

    unbounded = await run(client, strategy="bounded", n=20, latency=0.1, limit=2)
    assert unbounded["effective"] == "unbounded"
    assert peak_overlap(unbounded) > 2


async def test_every_effective_strategy_has_its_code() -> None:
    assert set(STRATEGY_FUNCTIONS) == {
        "sequential",
        "gather",
        "gather_exceptions",
        "taskgroup",
        "as_completed",
        "race",
        "race_coroutines",
        "timeout",
        "no_timeout",
        "bounded",
        "unbounded",
    }


# -- the client goes away; the lifespan-owned client --------------------------------------


async def test_a_disconnected_client_cancels_the_run(server: ServerHandle) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=0.5) as impatient:
        request = asyncio.create_task(
            impatient.post("/concurrency/run", json={"strategy": "gather", "latency": 3.0})
        )
        await eventually(lambda: len(our_tasks()) >= 5, within=2)
        with pytest.raises(httpx.ReadTimeout):
            await request
    # Well before the 3 s calls would end: the run's tasks, then the upstreams they called.
    gone_at = time.perf_counter()
    await eventually(lambda: our_tasks() == [], within=1.5)
    await eventually(lambda: our_tasks("upstream:") == [], within=1.5)
    assert time.perf_counter() - gone_at < 1.5


async def test_lifespan_opens_and_closes_the_demo_client(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    demo: httpx.AsyncClient = state_of(server.app).need(DemoClient).client
    assert not demo.is_closed
    assert "concurrency" in (await client.get("/")).json()["patterns"]
    await server.stop()
    assert demo.is_closed


# -- the simulated upstream --------------------------------------------------------------


async def test_upstream_answers_fails_and_repeats_with_a_seed(client: httpx.AsyncClient) -> None:
    started = time.perf_counter()
    ok = await client.get("/concurrency/upstream/alpha", params={"latency": 0.1})
    assert ok.status_code == 200
    assert ok.json() == {"name": "alpha", "slept_ms": 100.0}
    assert time.perf_counter() - started >= 0.1

    failed = await client.get("/concurrency/upstream/beta", params={"latency": 0, "fail": 1})
    assert failed.status_code == 503
    assert failed.json() == {"detail": "upstream beta failed (simulated)"}

    params = {"latency": 0.05, "jitter": 0.05, "fail": 0.5, "seed": 7}
    first = await client.get("/concurrency/upstream/gamma", params=params)
    again = await client.get("/concurrency/upstream/gamma", params=params)
    assert (first.status_code, first.text) == (again.status_code, again.text)
    delay, fails = simulated_outcome("gamma", 0.05, 0.05, 0.5, 7)
    assert first.status_code == (503 if fails else 200)
    if not fails:
        assert first.json()["slept_ms"] == round(delay * 1000, 3)
    draws = {simulated_outcome("gamma", 0.05, 0.05, 0.5, seed)[0] for seed in range(5)}
    assert len(draws) > 1  # the seed matters


# -- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b'{"strategy": "sprint"}',
        b'{"strategy": "gather", "n": 0}',
        b'{"strategy": "gather", "n": 100000}',
        b'{"strategy": "gather", "latency": -1}',
        b'{"strategy": "gather", "latency": NaN}',
        b'{"strategy": "gather", "n": Infinity}',
        b'{"strategy": "gather", "extra": [-Infinity]}',
        b"NaN",
        b'{"strategy": "gather", "jitter": 11}',
        b'{"strategy": "gather", "failure_rate": 1.5}',
        b'{"strategy": "timeout", "timeout_s": 0}',
        b'{"strategy": "bounded", "limit": 0}',
        b'{"strategy": "gather", "seed": "abc"}',
        # JSON Schema types, not Python's coercions (found by tests/test_fuzz.py)
        b'{"strategy": "gather", "seed": false}',
        b'{"strategy": "gather", "n": "5"}',
        b'{"strategy": "gather", "n": 5.5}',
        b'{"strategy": "gather", "failure_rate": false}',
        b'{"strategy": "gather", "seed": 9007199254740992}',
        b'{"strategy": "gather", "extra": 1}',
        b'{"n": 5}',
        b"not json",
        b"[]",
        # valid fields, but 200 calls of 1 s one after another would take 200 s
        b'{"strategy": "sequential", "n": 200, "latency": 1}',
    ],
)
async def test_bad_run_bodies_get_a_clear_422(client: httpx.AsyncClient, body: bytes) -> None:
    detail = clear_422_detail(await send_raw(client, "POST", "/concurrency/run", body))
    assert detail
    assert our_tasks() == []


async def test_an_integral_float_is_an_integer(client: httpx.AsyncClient) -> None:
    """JSON Schema counts 3.0 as an integer; the strict model must not refuse it."""
    body = {"strategy": "gather", "n": 3.0, "limit": 2.0, "latency": 0, "seed": 7.0}
    response = await client.post("/concurrency/run", json=body)
    assert response.status_code == 200, response.text
    assert len(response.json()["tasks"]) == 3


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("a", {"fail": "2"}),
        ("a", {"latency": "-0.1"}),
        ("a", {"latency": "11"}),
        ("a", {"jitter": "-1"}),
        ("a", {"latency": "soon"}),
        ("a", {"seed": "1.5"}),
        ("x" * 65, {}),
        ("a%20b", {}),
    ],
)
async def test_bad_upstream_input_gets_a_clear_422(
    client: httpx.AsyncClient, name: str, params: dict[str, str]
) -> None:
    clear_422_detail(await client.get(f"/concurrency/upstream/{name}", params=params))


# -- the pane (Pilot) -------------------------------------------------------------------


async def open_pane(app: ExplorerApp, pilot: Pilot[Any]) -> ConcurrencyPane:
    pane = await open_live(app, pilot, ConcurrencyPane)
    await pilot.pause()
    return pane


async def test_pane_runs_gather_then_sequential_and_keeps_both(tmp_path: Path) -> None:
    async with live_pane(tmp_path, (120, 40), open_pane) as (app, pilot, pane):
        assert pane.display
        await pilot.click("#pane-concurrency #run")
        await eventually(lambda: pane.report is not None, within=10)
        assert pane.report is not None
        assert pane.report["effective"] == "gather"
        bars = app.query_one("#pane-concurrency #timeline", Timeline).bars
        assert len(bars) == 5
        assert all(bar.state == "ok" for bar in bars)
        assert max(b.start for b in bars) < min(b.end or 0 for b in bars)  # they overlap
        await pilot.click("#pane-concurrency #keep")
        await pilot.pause()
        assert len(app.query(KeptRun)) == 1

        pane.strategy_key = "sequential"
        pane.report = None
        await pilot.press("r")
        await eventually(lambda: pane.report is not None, within=10)
        assert pane.report is not None
        assert pane.report["wall_ms"] >= 1000
        bars = app.query_one("#pane-concurrency #timeline", Timeline).bars
        for before, after in itertools.pairwise(bars):
            assert after.start >= (before.end or 0)

        await pilot.press("c")
        await pilot.pause(0.2)
        panels = app.query_one(CodeView).blocks
        assert panels[0].path == "server/patterns/concurrency/router.py"
        assert "run_strategy" in panels[1].text


async def test_pane_shows_the_guides_race_bug_in_blocking_mode(tmp_path: Path) -> None:
    async with live_pane(tmp_path, (120, 40), open_pane) as (app, pilot, pane):
        pane.strategy_key = "race"
        await pilot.press("b")
        await pilot.press("r")
        await eventually(lambda: pane.report is not None, within=10)
        assert pane.report is not None
        assert "TypeError" in str(pane.report["error"])
        summary = str(app.query_one("#pane-concurrency #summary", Static).content)
        assert "TypeError" in summary


async def test_pane_refuses_bad_parameters(tmp_path: Path) -> None:
    async with live_pane(tmp_path, (120, 40), open_pane) as (app, pilot, pane):
        await enter_and_click(pilot, "#failure_rate", "1.5", "#pane-concurrency #run")
        await pilot.pause()
        assert not pane.running
        assert pane.report is None
        assert told_invalid_input(app)


# -- the pane at every size, its keys and its lessons (Pilot, real server) ---------------

SIZES = [(100, 30), (140, 45), (200, 60)]
RESULTS = ("#timeline", "#summary")


def pane_of(app: ExplorerApp) -> ConcurrencyPane:
    return app.query_one(ConcurrencyPane)


async def run_pane(pilot: Pilot[Any], within: float = 20) -> Report:
    """Press r and wait for the run's report to be shown."""
    assert isinstance(pilot.app, ExplorerApp)
    pane = pane_of(pilot.app)
    pane.report = None
    return await press_for(pilot, "r", lambda: pane.report, within)


async def pick(pilot: Pilot[Any], strategy: str) -> None:
    """Choose a strategy in the menu, as a user does (its defaults fill the fields)."""
    assert isinstance(pilot.app, ExplorerApp)
    pane_of(pilot.app).query_one("#strategy-select", Select).value = strategy
    await pilot.pause()


def shown_bars(app: ExplorerApp) -> tuple[Bar, ...]:
    return app.query_one("#pane-concurrency #timeline", Timeline).bars


def drawn_extent(timeline: Timeline) -> int:
    """Cells from the axis' origin to the right end of the furthest bar (ghosts excluded)."""
    rows = timeline.render().plain.splitlines()[:-1]  # the last line is the axis
    ends = [
        max(i for i, cell in enumerate(row) if cell in "█▏▎▍▌▋▊▉") - Timeline.LABEL_WIDTH + 1
        for row in rows
        if any(cell in "█▏▎▍▌▋▊▉" for cell in row)
    ]
    return max(ends)


def in_flight_peak(bars: tuple[Bar, ...]) -> int:
    edges = sorted([(b.start, 1) for b in bars] + [(b.end or 0.0, -1) for b in bars])
    peak = current = 0
    for _, step in edges:
        current += step
        peak = max(peak, current)
    return peak


@pytest.mark.parametrize("size", SIZES, ids=lambda size: f"{size[0]}x{size[1]}")
async def test_pane_is_whole_before_and_after_a_run(size: tuple[int, int], tmp_path: Path) -> None:
    async with live_pane(tmp_path, size, open_pane) as (app, pilot, pane):
        assert problems_of(pane, RESULTS) == []
        for strategy in ("gather", "race", "taskgroup"):  # the longest menu value, notes
            await pick(pilot, strategy)
            await run_pane(pilot)
            assert problems_of(pane, RESULTS) == [], strategy
            timeline = app.query_one("#pane-concurrency #timeline", Timeline)
            assert visible_region(timeline).height >= len(timeline.bars) + 1, strategy


async def test_enter_in_every_field_runs_and_escape_leaves_it(tmp_path: Path) -> None:
    async with live_pane(tmp_path, (100, 30), open_pane) as (app, pilot, _):
        await pilot.pause(0.2)
        pane = pane_of(app)
        for name in FIELDS:
            field = pane.query_one(f"#{name}", Input)
            field.focus()
            await pilot.pause()
            assert app.focused is field
            pane.report = None
            await pilot.press("enter")
            await eventually(lambda: pane.report is not None, within=20)
            await eventually(lambda: not pane.running)
        await escape_leaves_the_field(pilot, pane.query_one("#limit", Input))
        await quit_with_q(pilot, within=5)
    assert app.return_code == 0


async def test_tab_follows_the_screen(tmp_path: Path) -> None:
    """From the strategy menu, Tab visits the controls in reading order."""
    async with live_pane(tmp_path, (100, 30), open_pane) as (app, pilot, _):
        await pilot.pause(0.2)
        pane = pane_of(app)
        visited = await tab_order(pilot, pane.query_one("#strategy-select", Select), 10)
        ids = [widget.id for widget in visited]
        assert ids == ["strategy-select", "run", "keep", "clear", *FIELDS]
        places = [(visible_region(w).y, visible_region(w).x) for w in visited]
        assert places == sorted(places)  # top to bottom, left to right


async def test_picking_a_strategy_fills_in_what_shows_its_difference(tmp_path: Path) -> None:
    async with live_pane(tmp_path, (100, 30), open_pane) as (app, pilot, pane):

        def fields() -> dict[str, str]:
            return {name: pane.query_one(f"#{name}", Input).value for name in FIELDS}

        await pick(pilot, "race")
        assert float(fields()["jitter"]) > 0  # one upstream wins early
        await pick(pilot, "bounded")
        assert int(fields()["limit"]) < int(fields()["n"])  # the waves show
        await pick(pilot, "timeout")
        values = fields()
        deadline, slowest = float(values["timeout_s"]), float(values["latency"])
        assert slowest + float(values["jitter"]) > deadline > slowest - float(values["jitter"])
        pane.query_one("#n", Input).value = "7"  # the user can still change them
        await run_pane(pilot)
        assert len(shown_bars(app)) == 7


async def test_gather_against_its_pitfall_and_kept_runs_on_one_scale(tmp_path: Path) -> None:
    async with live_pane(tmp_path, (140, 45), open_pane) as (app, pilot, pane):
        await run_pane(pilot)
        fast = max(bar.end or 0.0 for bar in shown_bars(app))
        await pilot.click("#pane-concurrency #keep")
        await pilot.pause()

        await pilot.press("b")
        lesson = str(pane.query_one("#lesson", Static).content)
        assert "one await after another" in lesson  # what blocking mode really runs
        await run_pane(pilot)
        bars = shown_bars(app)
        for before, after in itertools.pairwise(bars):
            assert after.start >= (before.end or 0.0)  # sequential: one after another
        slow = max(bar.end or 0.0 for bar in bars)
        assert slow / fast >= 2.5  # ~5 times on an idle machine: the sum against the slowest

        current = app.query_one("#pane-concurrency #timeline", Timeline)
        kept = app.query_one(KeptRun).timeline
        assert kept.span == current.span  # one time scale for all
        ratio = drawn_extent(current) / drawn_extent(kept)
        assert ratio == pytest.approx(slow / fast, rel=0.3)


async def test_race_default_shows_the_winner_and_the_cancelled_losers(tmp_path: Path) -> None:
    async with live_pane(tmp_path, (100, 30), open_pane) as (app, pilot, _):
        await pick(pilot, "race")
        await run_pane(pilot)
        bars = shown_bars(app)
        winners = [bar for bar in bars if bar.note == "winner"]
        assert len(winners) == 1
        assert winners[0].state == "ok"
        losers = [bar for bar in bars if bar.state == "cancelled"]
        assert losers
        # cut mid-way: the ghost (┄) runs on to where the upstream would have answered
        ghosts = [bar.ghost_end for bar in losers if bar.ghost_end is not None]
        assert ghosts
        slowest = max(ghosts)  # the slowest upstream's latency
        for loser in losers:
            assert (loser.end or 0.0) < slowest
            assert loser.ghost_end is None or (loser.end or 0.0) < loser.ghost_end
        assert all("┄" in row for row in current_rows(app) if "would take" in row)


async def test_bounded_default_shows_its_waves(tmp_path: Path) -> None:
    async with live_pane(tmp_path, (100, 30), open_pane) as (app, pilot, _):
        await pick(pilot, "bounded")
        pane = pane_of(app)
        limit = int(pane.query_one("#limit", Input).value)
        n = int(pane.query_one("#n", Input).value)
        await run_pane(pilot)
        bars = shown_bars(app)
        assert len(bars) == n
        assert in_flight_peak(bars) <= limit
        latency = float(pane.query_one("#latency", Input).value)
        waves = math.ceil(n / limit)
        assert max(bar.end or 0.0 for bar in bars) >= 0.9 * waves * latency


async def test_the_guides_race_gets_a_readable_axis(tmp_path: Path) -> None:
    async with live_pane(tmp_path, (100, 30), open_pane) as (app, pilot, _):
        await pick(pilot, "race")
        await pilot.press("b")
        pane = pane_of(app)
        assert "TypeError" in str(pane.query_one("#lesson", Static).content)
        await run_pane(pilot)
        axis = current_rows(app, axis=True)[-1].split()
        labels = [word for word in axis if word not in {"ms", "s"}]
        assert len(labels) >= 3
        assert len(set(labels)) == len(labels)  # not "0 ms 0 ms 0 ms 0 ms"
        assert all(bar.note == "never started" for bar in shown_bars(app))


def current_rows(app: ExplorerApp, axis: bool = False) -> list[str]:
    """The current timeline as drawn (without its axis line unless asked)."""
    rows = app.query_one("#pane-concurrency #timeline", Timeline).render().plain.splitlines()
    return rows if axis else rows[:-1]


# -- snapshot (every live number frozen) ------------------------------------------------


def frozen_task(
    index: int,
    span: tuple[float, float],
    state: str,
    planned_ms: float,
    error: str | None = None,
) -> dict[str, Any]:
    """One task of a run report, as the server sends it."""
    start, end = span
    return {
        "index": index,
        "label": f"up-{index}",
        "start_ms": start,
        "end_ms": end,
        "state": state,
        "error": error,
        "finally_ms": end + 0.1,
        "planned_ms": planned_ms,
    }


def frozen_report(
    strategy: str, effective: str, tasks: list[dict[str, Any]], note: str, **more: Any
) -> dict[str, Any]:
    """A run report with every figure fixed."""
    states = [task["state"] for task in tasks]
    return {
        "strategy": strategy,
        "effective": effective,
        "blocking_mode": effective != strategy,
        "wall_ms": max(task["end_ms"] for task in tasks) + 0.3,
        "tasks": tasks,
        "ok": states.count("ok"),
        "failed": states.count("failed"),
        "cancelled": states.count("cancelled"),
        "winner": None,
        "completion_order": [t["index"] for t in tasks if t["state"] != "cancelled"],
        "error": None,
        "seed": 1234,
        "note": note,
        **more,
    }


FROZEN_RACE = frozen_report(
    "race",
    "race",
    [
        frozen_task(0, (0.3, 152.1), "cancelled", 449.2),
        frozen_task(1, (0.4, 151.8), "ok", 148.3),
        frozen_task(2, (0.5, 152.2), "cancelled", 396.0),
        frozen_task(
            3, (0.6, 96.0), "failed", 92.7, "UpstreamError: upstream up-3 failed (simulated)"
        ),
        frozen_task(4, (0.6, 152.3), "cancelled", 268.9),
    ],
    "up-1 answered first (152 ms); the 3 losers were cancelled and awaited, so their "
    "finally blocks ran at once (by 152 ms).",
    winner=1,
    completion_order=[3, 1],
)

FROZEN_GATHER = frozen_report(
    "gather",
    "gather",
    [frozen_task(i, (0.3 + 0.1 * i, 206.2 + 0.4 * i), "ok", 200.0) for i in range(5)],
    "asyncio.gather had all 5 calls in flight at once: 208 ms, about the slowest call "
    "rather than the sum.",
)

FROZEN_SEQUENTIAL = frozen_report(
    "gather",
    "sequential",
    [frozen_task(i, (0.3 + 204.1 * i, 204.1 * (i + 1)), "ok", 200.0) for i in range(5)],
    "Blocking mode: gather became one await after another: the 5 calls took 1021 ms, the "
    "sum of the calls, not the slowest.",
)


async def frozen_pane(pilot: Pilot[Any], strategy: str, blocking: bool) -> ConcurrencyPane:
    """The pane open, the strategy picked (its defaults in the fields), figures frozen."""
    app, pane = await open_frozen(pilot, ConcurrencyPane)
    app.blocking_switch.set(blocking)
    pane.query_one(Select).value = strategy
    await pilot.pause(0.1)
    app.clear_notifications()
    return pane


def frozen_run(strategy: str, report: Report) -> Any:
    """A ``run_before``: the pane on ``strategy`` after the run ``report`` tells of."""

    async def run_before(pilot: Pilot[Any]) -> None:
        pane = await frozen_pane(pilot, strategy, blocking=False)
        pane.report = report
        await still_picture(pilot)

    return run_before


def test_concurrency_pane_after_a_race(frozen_snapshot: FrozenSnapshot) -> None:
    assert frozen_snapshot((120, 40), frozen_run("race", FROZEN_RACE))


def test_concurrency_pane_at_100x30_after_a_default_run(frozen_snapshot: FrozenSnapshot) -> None:
    assert frozen_snapshot((100, 30), frozen_run("gather", FROZEN_GATHER))


def test_concurrency_pane_at_140x45_with_a_kept_run(frozen_snapshot: FrozenSnapshot) -> None:
    """gather kept, then its blocking-mode form: both drawn on one time scale."""

    async def run_before(pilot: Pilot[Any]) -> None:
        pane = await frozen_pane(pilot, "gather", blocking=False)
        pane.report = FROZEN_GATHER
        await pilot.pause(0.05)
        pane.keep_current()
        assert isinstance(pilot.app, ExplorerApp)
        pilot.app.blocking_switch.set(True)
        pane.report = FROZEN_SEQUENTIAL
        await still_picture(pilot)

    assert frozen_snapshot((140, 45), run_before)
