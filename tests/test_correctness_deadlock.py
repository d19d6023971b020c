"""The correctness pattern's deadlock demo: two transfers on two locks in opposite order, a
dependency that waits for its own handler; seen by the task inspector, bounded, endable.

Over real HTTP against the real app; the tab in the real explorer at 100x30 and 140x45.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from textual.pilot import Pilot
from textual.widgets import Select, TabbedContent

from explorer.app import ExplorerApp
from explorer.patterns.correctness.deadlock_client import Cycle, Watch
from explorer.patterns.correctness.deadlock_tab import DeadlockTab
from explorer.patterns.correctness.pane import CorrectnessPane
from fastasync_probe.monitor import LagStats, LoopMonitor
from server.patterns.correctness.deadlock import DeadlockLab
from server.runner import ServerHandle
from server.settings import Settings
from server.state import state_of
from tests.conftest import FrozenSnapshot, eventually
from tests.frozen import FrozenMonitor
from tests.http_checks import clear_422_detail
from tests.layout import problems_of
from tests.pilots import live_pane, open_frozen, open_live, still_picture
from tests.test_correctness import show

TRANSFER = "/correctness/deadlock/transfer"
HANDSHAKE = "/correctness/deadlock/handshake"
NAMES = {"transfer A->B", "transfer B->A"}


def lab_of(server: ServerHandle) -> DeadlockLab:
    return state_of(server.app).need(DeadlockLab)


def transfers(
    client: httpx.AsyncClient, form: str, **query: Any
) -> list[asyncio.Task[httpx.Response]]:
    """The two opposite transfers, sent at once."""
    return [
        asyncio.create_task(client.post(TRANSFER, params={"first": lock, "form": form, **query}))
        for lock in "AB"
    ]


async def tasks_seen(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/monitor/tasks", params={"long_wait_s": 0.2})
    assert response.status_code == 200
    seen: dict[str, Any] = response.json()
    return seen


def lab_tasks_left() -> list[str]:
    """The lab's request tasks still on the loop (by the names the server gives them)."""
    names = [task.get_name() for task in asyncio.all_tasks()]
    return [name for name in names if name in NAMES or name.startswith("handshake")]


async def test_opposite_transfers_deadlock_the_inspector_names_the_cycle_and_lag_stays_flat(
    server: ServerHandle, client: httpx.AsyncClient, monitor: LoopMonitor
) -> None:
    began = asyncio.get_running_loop().time()
    sent = transfers(client, "pitfall", bound_s=30)
    cycle: dict[str, Any] | None = None
    seen: dict[str, Any] = {}
    for _ in range(20):  # within 1 s of forming (it forms after hold_s, 50 ms)
        await asyncio.sleep(0.05)
        seen = await tasks_seen(client)
        cycle = next((c for c in seen["cycles"] if set(c["tasks"]) == NAMES), None)
        if cycle is not None:
            break
    formed = asyncio.get_running_loop().time()
    assert cycle is not None, seen["cycles"]
    assert asyncio.get_running_loop().time() - began < 1.0 + 0.5  # allow the HTTP round trips
    assert sorted(cycle["locks"]) == ["lock A", "lock B"]
    rows = {row["name"]: row for row in seen["tasks"] if row["name"] in NAMES}
    assert rows["transfer A->B"]["holds"][0]["label"] == "lock A"
    assert rows["transfer A->B"]["waits_on"]["label"] == "lock B"
    assert rows["transfer B->A"]["holds"][0]["label"] == "lock B"
    assert "in_cycle" in rows["transfer B->A"]["flags"]
    # the whole template, though the route sits in a router included by another
    assert rows["transfer A->B"]["route"] == "POST /correctness/deadlock/transfer"
    # the lab's own view agrees
    lab = (await client.get("/correctness/deadlock")).json()
    assert lab["holders"] == {"lock A": "transfer A->B", "lock B": "transfer B->A"}
    await asyncio.sleep(2.0)  # 200 lag samples: p99 is past any one slow sample
    assert not any(task.done() for task in sent)  # still stuck: nothing moves ...
    lag = monitor.lag_since(formed)
    assert lag.p99 < 5.0, (lag, monitor.stalls_after(0))  # ... and the loop idles meanwhile
    ended = (await client.post("/correctness/deadlock/end")).json()
    assert ended == {"ended": 2}
    answers = await asyncio.gather(*sent)
    assert [a.status_code for a in answers] == [409, 409]
    assert all("ended by the user (End)" in a.json()["detail"] for a in answers)
    await eventually(lambda: not lab_tasks_left(), within=2)
    assert lab_of(server).running == []
    assert not (await tasks_seen(client))["cycles"]


async def test_a_hang_nobody_ends_answers_409_at_its_bound(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    answers = await asyncio.wait_for(asyncio.gather(*transfers(client, "pitfall", bound_s=0.5)), 5)
    # the first bound to fire fails its request, which releases its lock: the other one
    # may then finish before its own bound
    ended = [a for a in answers if a.status_code == 409]
    assert ended, [a.text for a in answers]
    assert all("ended by its 0.5 s bound" in a.json()["detail"] for a in ended)
    assert all(a.status_code in (200, 409) for a in answers)
    assert not lab_of(server).locks["A"].locked()
    assert not lab_of(server).locks["B"].locked()


@pytest.mark.parametrize("form", ["ordered", "timeout"])
async def test_the_fixes_let_both_transfers_finish(client: httpx.AsyncClient, form: str) -> None:
    answers = await asyncio.wait_for(asyncio.gather(*transfers(client, form, bound_s=10)), 12)
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    bodies = [a.json() for a in answers]
    if form == "ordered":
        assert all(body["order"] == ["lock A", "lock B"] for body in bodies)
    else:  # at least one backed off and retried, or one got through in the other's gap
        assert all(body["attempts"] >= 1 for body in bodies)


async def test_blocking_mode_picks_the_opposite_order(
    client: httpx.AsyncClient, blocking: None
) -> None:
    sent = [
        asyncio.create_task(client.post(TRANSFER, params={"first": lock, "bound_s": 0.3}))
        for lock in "AB"
    ]
    answers = await asyncio.gather(*sent)
    assert any("deadlocked" in a.text for a in answers), [a.text for a in answers]
    assert all(a.status_code in (200, 409) for a in answers)


async def test_a_dependency_waiting_for_its_handler_hangs_and_the_fix_does_not(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    stuck = asyncio.create_task(client.post(HANDSHAKE, params={"form": "pitfall"}))
    await eventually(lambda: bool(lab_of(server).running), within=2)
    await asyncio.sleep(0.3)
    rows = [r for r in (await tasks_seen(client))["tasks"] if r["name"] == "handshake (pitfall)"]
    assert rows, "the inspector lists the stuck handshake"
    assert rows[0]["waits_on"]["kind"] == "event"
    assert rows[0]["waits_on"]["label"] == "handler-ran event"
    assert (await client.post("/correctness/deadlock/end")).json() == {"ended": 1}
    answer = await stuck
    assert answer.status_code == 409
    assert "the dependency waited for its own handler" in answer.json()["detail"]
    right = await client.post(HANDSHAKE, params={"form": "right"})
    assert right.status_code == 200
    assert right.json()["form"] == "right"


async def test_quitting_ends_a_hang_in_time(tmp_path: Path) -> None:
    handle = ServerHandle(Settings(port=0, data_dir=tmp_path))
    await handle.start()
    async with httpx.AsyncClient(base_url=handle.url) as http:
        sent = [
            asyncio.create_task(
                http.post(TRANSFER, params={"first": lock, "form": "pitfall", "bound_s": 60})
            )
            for lock in "AB"
        ]
        await eventually(lambda: len(state_of(handle.app).need(DeadlockLab).running) == 2)
        began = asyncio.get_running_loop().time()
        await handle.stop()
        assert asyncio.get_running_loop().time() - began < 5.0
        answers = await asyncio.gather(*sent, return_exceptions=True)
    replies = [a for a in answers if isinstance(a, httpx.Response)]
    assert [a.status_code for a in replies] == [409, 409]
    assert all("ended by the server stopping" in a.json()["detail"] for a in replies)
    assert not [t for t in asyncio.all_tasks() if t.get_name() in NAMES]


@pytest.mark.parametrize(
    ("path", "query", "field"),
    [
        (TRANSFER, {"first": "C"}, "first"),
        (TRANSFER, {"first": "A", "bound_s": -1}, "bound_s"),
        (TRANSFER, {"first": "A", "bound_s": 1e9}, "bound_s"),
        (TRANSFER, {"first": "A", "form": "bogus"}, "form"),
        (TRANSFER, {"first": "A", "acquire_s": 0}, "acquire_s"),
        (HANDSHAKE, {"form": "bogus"}, "form"),
    ],
)
async def test_bad_input_is_a_clear_422(
    client: httpx.AsyncClient, path: str, query: dict[str, Any], field: str
) -> None:
    response = await client.post(path, params=query)
    detail = clear_422_detail(response)
    assert [item["loc"][-1] for item in detail] == [field]


# -- the tab, in the real explorer ------------------------------------------------------


async def open_tab(app: ExplorerApp, pilot: Pilot[Any]) -> CorrectnessPane:
    pane = await open_live(app, pilot, CorrectnessPane)
    pane.query_one(TabbedContent).active = "tab-deadlock"
    await pilot.pause()
    return pane


@pytest.mark.parametrize("size", [(100, 30), (140, 45)])
async def test_tab_shows_the_cycle_while_stuck_and_the_fix_finishing(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    async with live_pane(tmp_path, size, open_tab) as (_app, pilot, pane):
        tab = pane.query_one(DeadlockTab)
        assert problems_of(pane, results=("#deadlock-verdict", "#deadlock-view")) == []
        await pilot.press("r")  # by mode: fixed order
        await eventually(lambda: tab.last_run is not None and not tab.running, within=20)
        assert "all 2 finished (200)" in str(tab.query_one("#deadlock-verdict").render())

        await pilot.press("b")  # the pitfall
        assert "Blocking mode" in str(tab.query_one("#deadlock-lesson").render())
        await pilot.press("r")
        await eventually(lambda: tab.last_run is not None and tab.last_run.cycle is not None, 10)
        await pilot.pause(0.6)
        verdict = str(tab.query_one("#deadlock-verdict").render())
        view = str(tab.query_one("#deadlock-view").render())
        assert "cycle found by the task inspector" in verdict
        assert "loop lag p99 meanwhile" in verdict
        assert "transfer A->B holds lock A, waits for lock B" in view
        await pilot.press("c")  # the code view does not end it ...
        await pilot.pause(0.3)
        assert tab.running
        await pilot.press("escape")
        await pilot.click("#deadlock-end")  # ... End does
        await eventually(lambda: not tab.running, within=5)
        assert "2 of 2 ended stuck (409)" in str(tab.query_one("#deadlock-verdict").render())
        await pilot.press("b")


async def test_leaving_the_pane_ends_a_hang(tmp_path: Path) -> None:
    async with live_pane(tmp_path, (100, 30), open_tab) as (app, pilot, pane):
        tab = pane.query_one(DeadlockTab)
        tab.query_one("#deadlock-form", Select).value = "pitfall"
        await pilot.press("r")
        assert app.context is not None
        lab = state_of(app.server.app).need(DeadlockLab)
        await eventually(lambda: len(lab.running) == 2, within=5)
        await pilot.press("1")  # another pane
        await eventually(lambda: not lab.running and not tab.running, within=5)
        assert tab.last_run is not None
        assert [a.status for a in tab.last_run.answers] == [409, 409]


# -- snapshots (every live number frozen) ---------------------------------------------


class FrozenWatch(Watch):
    """A run that has been stuck for exactly 3.2 s."""

    @property
    def elapsed_s(self) -> float:
        return 3.2


FROZEN_CYCLE = Cycle(
    tasks=["transfer A->B", "transfer B->A"],
    locks=["lock B", "lock A"],
    lines=[
        "transfer A->B holds lock A, waits for lock B, held by transfer B->A",
        "transfer B->A holds lock B, waits for lock A, held by transfer A->B",
    ],
)


@pytest.mark.parametrize("size", [(100, 30), (140, 45)])
def test_correctness_pane_deadlock_pitfall(
    frozen_snapshot: FrozenSnapshot, size: tuple[int, int]
) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        app, pane = await open_frozen(pilot, CorrectnessPane)
        app.blocking_switch.set(True)
        # a deadlock idles the loop: the frozen gauges say so too
        assert isinstance(app.context.monitor, FrozenMonitor)  # type: ignore[union-attr]
        app.context.monitor.lag_stats = LagStats(  # type: ignore[union-attr]
            p50=0.1, p95=0.2, p99=0.3, max=0.4, samples=320
        )
        await show(pilot, pane, "tab-deadlock")
        tab = pane.query_one(DeadlockTab)
        watch = FrozenWatch("transfer", "mode", cycle=FROZEN_CYCLE, cycle_after_s=0.5)
        tab.running = True
        tab.post_message(DeadlockTab.Looked(watch))
        await pilot.pause(0.3)
        await still_picture(pilot)

    assert frozen_snapshot(size, run_before)
