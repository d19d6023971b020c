"""Concurrency over real HTTP: nine strategies, timed task by task, and their pitfalls.

Bounds are read off the server's own timestamps and leave room for a slow, noisy machine.
Where the outcome depends on the upstreams' random draw, the test picks a seed whose draw
(computed with the server's own ``simulated_outcome``) makes the expected outcome clear-cut.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
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
from explorer.panes.concurrency import ConcurrencyPane, KeptRun
from explorer.registry import PANES
from explorer.widgets.code_view import CodeView
from explorer.widgets.timeline import Timeline
from explorer.widgets.top_bar import TopBar
from server.routes.concurrency import STRATEGY_FUNCTIONS, simulated_outcome
from server.runner import ServerHandle
from server.settings import Settings

from .conftest import eventually
from .frozen import FrozenMonitor, key_of

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


async def test_race_cancels_and_awaits_the_losers(client: httpx.AsyncClient) -> None:
    upstreams = Upstreams(n=5, latency=0.3, jitter=0.2)

    def clear_winner(d: Draw) -> bool:
        first, second = sorted(delay for delay, _ in d)[:2]
        return second - first >= 0.15

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
    demo: httpx.AsyncClient = server.app.state.concurrency_client
    assert demo is not server.app.state.http  # its own small pool, not the shared one
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
    response = await client.post(
        "/concurrency/run", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail
    assert all(item["msg"] for item in detail)
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
    response = await client.get(f"/concurrency/upstream/{name}", params=params)
    assert response.status_code == 422, response.text
    assert all(item["msg"] for item in response.json()["detail"])


# -- the pane (Pilot) -------------------------------------------------------------------


async def open_pane(app: ExplorerApp, pilot: Pilot[Any], slug: str) -> None:
    await eventually(lambda: app.context is not None and bool(app.query(f"#pane-{slug}")))
    await pilot.press(str([p.SLUG for p in PANES].index(slug) + 1))
    await pilot.pause()


async def test_pane_runs_gather_then_sequential_and_keeps_both(tmp_path: Path) -> None:
    app = ExplorerApp(Settings(port=0, data_dir=tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        await open_pane(app, pilot, "concurrency")
        pane = app.query_one(ConcurrencyPane)
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
        assert panels[0].path == "server/routes/concurrency.py"
        assert "run_strategy" in panels[1].text


async def test_pane_shows_the_guides_race_bug_in_blocking_mode(tmp_path: Path) -> None:
    app = ExplorerApp(Settings(port=0, data_dir=tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        await open_pane(app, pilot, "concurrency")
        pane = app.query_one(ConcurrencyPane)
        pane.strategy_key = "race"
        await pilot.press("b")
        await pilot.press("r")
        await eventually(lambda: pane.report is not None, within=10)
        assert pane.report is not None
        assert "TypeError" in str(pane.report["error"])
        summary = str(app.query_one("#pane-concurrency #summary", Static).content)
        assert "TypeError" in summary


async def test_pane_refuses_bad_parameters(tmp_path: Path) -> None:
    app = ExplorerApp(Settings(port=0, data_dir=tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        await open_pane(app, pilot, "concurrency")
        pane = app.query_one(ConcurrencyPane)
        app.query_one("#failure_rate", Input).value = "1.5"
        await pilot.click("#pane-concurrency #run")
        await pilot.pause()
        assert not pane.running
        assert pane.report is None
        assert any("Invalid input" in (n.title or "") for n in app._notifications)


# -- snapshot (every live number frozen) ------------------------------------------------


FROZEN_RACE = {
    "strategy": "race",
    "effective": "race",
    "blocking_mode": False,
    "wall_ms": 212.4,
    "tasks": [
        {
            "index": 0,
            "label": "up-0",
            "start_ms": 0.3,
            "end_ms": 212.1,
            "state": "cancelled",
            "error": "CancelledError: lost the race",
            "finally_ms": 212.3,
        },
        {
            "index": 1,
            "label": "up-1",
            "start_ms": 0.4,
            "end_ms": 151.8,
            "state": "ok",
            "error": None,
            "finally_ms": 151.9,
        },
        {
            "index": 2,
            "label": "up-2",
            "start_ms": 0.5,
            "end_ms": 212.2,
            "state": "cancelled",
            "error": "CancelledError: lost the race",
            "finally_ms": 212.4,
        },
        {
            "index": 3,
            "label": "up-3",
            "start_ms": 0.6,
            "end_ms": 96.0,
            "state": "failed",
            "error": "HTTPStatusError: upstream up-3 failed (simulated)",
            "finally_ms": 96.1,
        },
    ],
    "ok": 1,
    "failed": 1,
    "cancelled": 2,
    "winner": 1,
    "completion_order": [3, 1],
    "error": None,
    "note": "up-1 won after 152 ms; the two losers were cancelled and their finally "
    "blocks ran within 1 ms.",
}


def test_concurrency_pane_after_a_race(snap_compare: Any, utc_clock: None, tmp_path: Path) -> None:
    monitor = FrozenMonitor()
    app = ExplorerApp(Settings(port=0, data_dir=tmp_path), monitor_source=monitor)

    async def run_before(pilot: Pilot[Any]) -> None:
        assert isinstance(pilot.app, ExplorerApp)
        while not pilot.app.query(ConcurrencyPane):
            await pilot.pause(0.02)
        await pilot.press(key_of(ConcurrencyPane))
        pilot.app.query_one(TopBar).url = "http://127.0.0.1:8000"
        pane = pilot.app.query_one(ConcurrencyPane)
        pane.strategy_key = "race"
        pane.query_one(Select).value = "race"
        pane.report = FROZEN_RACE
        await pilot.pause(0.1)

    assert snap_compare(app, terminal_size=(120, 40), run_before=run_before)
