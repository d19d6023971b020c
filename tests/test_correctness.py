"""Correctness over real HTTP: missing await (the warning and its line, the row never
written), the read-await-write race on memory, SQLite and PostgreSQL (lost updates vs
exactly N), swallowed errors; bad input; then the pane (Pilot) and its snapshots.

PostgreSQL tests need ``FASTASYNC_TEST_PG_URL``; they work in a schema of their own,
dropped at the end.
"""

from __future__ import annotations

import asyncio
import gc
import os
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Select, TabbedContent

from explorer.app import ExplorerApp
from explorer.patterns.correctness.client import Race
from explorer.patterns.correctness.demo_tab import DemoTab
from explorer.patterns.correctness.pane import TABS, CorrectnessPane
from explorer.patterns.correctness.tabs import MissingAwaitTab, RaceTab, SwallowTab
from explorer.widgets.code_view import CodeView
from server.runner import ServerHandle
from server.settings import Settings
from tests.conftest import FrozenSnapshot, eventually, set_blocking
from tests.http_checks import clear_422_detail
from tests.layout import problems_of
from tests.pilots import live_pane, open_frozen, open_live, still_picture

Reply = dict[str, Any]
PG_ENV = "FASTASYNC_TEST_PG_URL"
N = 50


async def post(client: httpx.AsyncClient, path: str, **params: Any) -> Reply:
    response = await client.post(f"/correctness/{path}", params=params)
    assert response.status_code == 200, response.text
    body: Reply = response.json()
    return body


# -- missing await -----------------------------------------------------------------------


async def test_missing_await_gets_a_coroutine_warns_with_its_line_and_writes_nothing(
    client: httpx.AsyncClient,
) -> None:
    with warnings.catch_warnings(record=True) as escaped:
        warnings.simplefilter("always")
        body = await post(client, "missing-await", form="pitfall")
        gc.collect()
    assert body["got"].startswith("<coroutine object write_row at 0x")
    assert body["rows_before"] == body["rows_after"]
    assert body["written"] is False
    warned = body["warning"]
    assert warned["category"] == "RuntimeWarning"
    assert warned["message"] == "coroutine 'write_row' was never awaited"
    assert warned["origin"].startswith("missing_await.py:")
    assert "write_row(audit" in warned["origin_line"]
    # captured by the demo: nothing reached this test's warnings (nor the suite's watcher)
    assert not [w for w in escaped if "never awaited" in str(w.message)]


async def test_missing_await_fixed_form_writes_the_row(client: httpx.AsyncClient) -> None:
    body = await post(client, "missing-await", form="right")
    assert body["warning"] is None
    assert body["rows_after"] == body["rows_before"] + 1
    assert body["written"] is True
    assert int(body["got"]) >= 1


async def test_missing_await_follows_blocking_mode(client: httpx.AsyncClient) -> None:
    assert (await post(client, "missing-await"))["form"] == "right"
    await set_blocking(client, True)
    try:
        assert (await post(client, "missing-await"))["form"] == "pitfall"
    finally:
        await set_blocking(client, False)


def test_an_unexpected_never_awaited_coroutine_is_still_caught() -> None:
    """The demo's capture is local: outside it, "never awaited" still warns (and with the
    suite's filterwarnings = error, fails the test that does it)."""

    async def helper() -> None:
        return None

    with pytest.warns(RuntimeWarning, match="never awaited"):
        helper()  # type: ignore[unused-coroutine]  # deliberate: dropped at once, warns


# -- the race ----------------------------------------------------------------------------


async def race(client: httpx.AsyncClient, store: str, form: str, n: int = N) -> Reply:
    """Reset ``store`` to ``n``, fire ``n`` concurrent buys over HTTP, read the summary."""
    await post(client, "race/reset", store=store, stock=n)
    buys = [
        client.post("/correctness/race/buy", params={"store": store, "form": form})
        for _ in range(n)
    ]
    statuses = [r.status_code for r in await asyncio.gather(*buys)]
    assert statuses == [200] * n
    summary: Reply = (await client.get("/correctness/race", params={"store": store})).json()
    return summary


async def check_race(client: httpx.AsyncClient, store: str) -> None:
    lost = await race(client, store, "pitfall")
    print(f"{store}: pitfall lost {lost['lost']} of {N} updates (actual {lost['actual']})")
    assert lost["sold"] == N
    assert lost["expected"] == 0
    assert lost["lost"] >= 1
    assert lost["actual"] == lost["lost"]
    reads = [step["read"] for step in lost["timeline"]]
    assert len(reads) == N
    assert len(set(reads)) < N  # the interleaving: several buyers read the same level

    right = await race(client, store, "right")
    assert (right["sold"], right["expected"], right["actual"], right["lost"]) == (N, 0, 0, 0)
    assert sorted(step["read"] for step in right["timeline"]) == list(range(1, N + 1))


@pytest.mark.parametrize("store", ["memory", "sqlite"])
async def test_race_loses_updates_and_the_fix_counts_exactly_n(
    client: httpx.AsyncClient, store: str
) -> None:
    await check_race(client, store)


@pytest.fixture
async def pg_server(tmp_path: Path) -> AsyncIterator[ServerHandle]:
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"{PG_ENV} is not set (.ci/run sets it)")
    schema = f"test_correctness_{os.getpid()}"
    sep = "&" if "?" in url else "?"
    handle = ServerHandle(
        Settings(port=0, data_dir=tmp_path / "data", database_url=f"{url}{sep}schema={schema}")
    )
    await handle.start()
    try:
        yield handle
    finally:
        await handle.stop()
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()


async def test_race_on_postgresql(pg_server: ServerHandle) -> None:
    async with httpx.AsyncClient(base_url=pg_server.url, timeout=30.0) as client:
        await check_race(client, "postgres")


async def test_postgres_store_without_a_url_is_a_409_with_a_sentence(
    client: httpx.AsyncClient,
) -> None:
    for call in (
        client.post("/correctness/race/reset", params={"store": "postgres"}),
        client.post("/correctness/race/buy", params={"store": "postgres"}),
        client.get("/correctness/race", params={"store": "postgres"}),
    ):
        response = await call
        assert response.status_code == 409
        assert "no PostgreSQL configured" in response.json()["detail"]


async def test_sold_out_is_a_410(client: httpx.AsyncClient) -> None:
    await post(client, "race/reset", store="memory", stock=1)
    await post(client, "race/buy", store="memory", form="right")
    response = await client.post("/correctness/race/buy", params={"store": "memory"})
    assert response.status_code == 410
    assert "sold out" in response.json()["detail"]


# -- swallowed errors --------------------------------------------------------------------


async def test_a_task_exception_never_retrieved_is_swallowed_and_the_right_form_reports_it(
    client: httpx.AsyncClient,
) -> None:
    pitfall = await post(client, "swallow", kind="task", form="pitfall")
    assert (pitfall["said"], pitfall["failed"], pitfall["really_failed"]) == ("ok", [], 1)
    assert pitfall["loop_logged"].startswith("Task exception was never retrieved")
    assert "SMTP connection refused" in pitfall["loop_logged"]
    # the task inspector lists it too, with the request that created the task
    unread = (await client.get("/monitor/tasks")).json()["never_retrieved"]
    dropped = [u for u in unread if u["name"] == "correctness-send-receipt"]
    assert dropped, unread
    assert "SMTP connection refused" in dropped[-1]["exception"]
    assert dropped[-1]["route"] == "POST /correctness/swallow"
    right = await post(client, "swallow", kind="task", form="right")
    assert right["said"].startswith("failed: send_receipt failed")
    assert right["failed"] == ["send_receipt failed: SMTP connection refused"]
    assert right["loop_logged"] is None


async def test_unchecked_gather_results_say_five_done_while_two_failed(
    client: httpx.AsyncClient,
) -> None:
    pitfall = await post(client, "swallow", kind="gather", form="pitfall")
    assert (pitfall["said"], pitfall["failed"], pitfall["really_failed"]) == ("5 done", [], 2)
    right = await post(client, "swallow", kind="gather", form="right")
    assert right["said"] == "3 done, 2 failed"
    assert len(right["failed"]) == 2


async def test_no_demo_leaves_a_task_behind(client: httpx.AsyncClient) -> None:
    for form in ("pitfall", "right"):
        await post(client, "swallow", kind="task", form=form)
        await post(client, "missing-await", form=form)
        await race(client, "memory", form, n=5)
    await asyncio.sleep(0.05)
    names = {t.get_name() for t in asyncio.all_tasks()}
    assert not [n for n in names if n.startswith("correctness-")]


# -- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("race/reset", {"stock": 0}),
        ("race/reset", {"stock": 501}),
        ("race/reset", {"stock": 10**12}),
        ("race/reset", {"store": "redis"}),
        ("race/buy", {"form": "maybe"}),
        ("missing-await", {"form": "sometimes"}),
        ("swallow", {"kind": "thread"}),
        ("swallow", {"form": ""}),
    ],
)
async def test_bad_input_is_a_422_with_a_message(
    client: httpx.AsyncClient, path: str, params: dict[str, Any]
) -> None:
    clear_422_detail(await client.post(f"/correctness/{path}", params=params))


# -- the pane (Pilot) --------------------------------------------------------------------


async def open_pane(app: ExplorerApp, pilot: Pilot[Any]) -> CorrectnessPane:
    pane = await open_live(app, pilot, CorrectnessPane)
    await pilot.pause()
    assert pane.display
    return pane


async def show(pilot: Pilot[Any], pane: CorrectnessPane, tab_id: str) -> None:
    """Show the tab ``tab_id``; again if the focus the app gave the pane just opened (on a
    control of the first tab) pulled it back."""
    tabs = pane.query_one(TabbedContent)
    for _ in range(20):
        tabs.active = tab_id
        await pilot.pause(0.05)
        if tabs.active == tab_id:
            break
    assert tabs.active == tab_id


async def run_and_wait(pilot: Pilot[Any], tab: DemoTab) -> Any:
    tab.result = None
    await pilot.press("r")
    await eventually(lambda: tab.result is not None and not tab.running, within=20)
    return tab.result


def lesson(tab: DemoTab) -> str:
    return str(tab.query_one(f"#{tab.PREFIX}-lesson").render())


def results(tab: DemoTab) -> tuple[str, ...]:
    return (f"#{tab.PREFIX}-verdict", f"#{tab.PREFIX}-run")


def test_the_tabs_are_in_order_with_the_guide_last() -> None:
    assert [title for title, _, _ in TABS] == [
        "Missing await",
        "Race",
        "Deadlock",
        "Swallowed",
        "Guide fixes",
    ]


@pytest.mark.parametrize("size", [(100, 30), (140, 45)])
async def test_pane_missing_await_right_then_pitfall_and_the_code_view(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    async with live_pane(tmp_path, size, open_pane) as (app, pilot, pane):
        tab = pane.query_one(MissingAwaitTab)
        assert problems_of(pane, results=results(tab)) == []
        body = await run_and_wait(pilot, tab)
        assert body["written"] is True
        assert "the row was written" in tab.figures["verdict"]
        await pilot.press("b")
        await pilot.pause()
        assert lesson(tab).startswith("Blocking mode: The handler calls an async def")
        body = await run_and_wait(pilot, tab)
        assert body["written"] is False
        assert "no row written" in tab.figures["verdict"]
        assert "coroutine 'write_row' was never awaited" in tab.figures["log"]
        assert "created at missing_await.py:" in tab.figures["log"]
        assert problems_of(pane, results=results(tab)) == []

        await pilot.press("c")
        code = app.query_one(CodeView)
        await eventually(lambda: bool(code.blocks))
        assert "def call_without_await" in code.blocks[0].text
        assert any("async def missing_await" in b.text for b in code.blocks)
        await pilot.press("c")
        assert not app.showing_code
        app.blocking_switch.set(False)


@pytest.mark.parametrize("size", [(100, 30), (140, 45)])
async def test_pane_race_loses_updates_then_counts_every_sale(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    async with live_pane(tmp_path, size, open_pane) as (app, pilot, pane):
        await show(pilot, pane, "tab-race")
        tab = pane.query_one(RaceTab)
        assert problems_of(pane, results=results(tab)) == []
        run: Race = await run_and_wait(pilot, tab)
        assert run.summary["lost"] == 0
        assert run.summary["sold"] == N
        assert "0 lost updates" in tab.figures["verdict"]
        await pilot.press("b")
        await pilot.pause()
        assert lesson(tab).startswith("Blocking mode: Read the stock, await")
        run = await run_and_wait(pilot, tab)
        assert run.summary["lost"] >= 1
        assert f"{run.summary['lost']} lost updates" in tab.figures["verdict"]
        assert "same read: lost" in tab.figures["log"]
        assert problems_of(pane, results=results(tab)) == []
        tab.query_one("#race-choice", Select).value = "sqlite"
        await pilot.pause()
        assert "SqliteStore.buy_racy" in pane.code_blocks()[0].title or any(
            "UPDATE stock SET n = ?" in b.text for b in pane.code_blocks()
        )
        app.blocking_switch.set(False)


@pytest.mark.parametrize("size", [(100, 30), (140, 45)])
async def test_pane_swallowed_errors_in_both_kinds(tmp_path: Path, size: tuple[int, int]) -> None:
    async with live_pane(tmp_path, size, open_pane) as (app, pilot, pane):
        await show(pilot, pane, "tab-swallow")
        tab = pane.query_one(SwallowTab)
        body = await run_and_wait(pilot, tab)
        assert "1 failure(s) surfaced" in tab.figures["verdict"]
        await pilot.press("b")
        await pilot.pause()
        body = await run_and_wait(pilot, tab)
        assert body["said"] == "ok"
        assert "answered 'ok' while 1 failed" in tab.figures["verdict"]
        assert "Task exception was never retrieved" in tab.figures["log"]
        tab.query_one("#swallow-choice", Select).value = "gather"
        await pilot.pause()
        assert "gather(..., return_exceptions=True)" in lesson(tab)
        await run_and_wait(pilot, tab)
        assert "answered '5 done' while 2 failed" in tab.figures["verdict"]
        assert problems_of(pane, results=results(tab)) == []
        app.blocking_switch.set(False)


async def test_pane_refuses_an_absurd_n(tmp_path: Path) -> None:
    async with live_pane(tmp_path, (100, 30), open_pane) as (app, pilot, pane):
        await show(pilot, pane, "tab-race")
        tab = pane.query_one(RaceTab)
        tab.query_one("#race-n", Input).value = "999"
        await pilot.press("r")
        await pilot.pause()
        assert not tab.running
        assert tab.result is None
        assert any("Invalid input" in (n.title or "") for n in app._notifications)


async def test_leaving_the_pane_mid_run_cancels_the_run(tmp_path: Path) -> None:
    async with live_pane(tmp_path, (100, 30), open_pane) as (app, pilot, pane):
        await show(pilot, pane, "tab-race")
        tab = pane.query_one(RaceTab)
        tab.query_one("#race-choice", Select).value = "sqlite"
        tab.query_one("#race-n", Input).value = "500"
        # r, then at once the code view: it covers the pane, the run is not cancelled
        await pilot.press("r", "c")
        await eventually(lambda: tab.result is not None and not tab.running, within=30)
        await pilot.press("c")
        assert not app.showing_code

        # r, then at once another pane: the run (500 buys, ~0.5 s) is cancelled
        tab.result = None
        await pilot.press("r", "1")
        await eventually(lambda: not tab.running, within=5)
        assert tab.result is None
        assert "the pane was left mid-run" in tab.figures["verdict"]
        assert not [w for w in tab.workers if w.group == "race" and not w.is_finished]


async def test_pane_says_why_postgres_is_not_there(tmp_path: Path) -> None:
    async with live_pane(tmp_path, (100, 30), open_pane) as (_app, pilot, pane):
        await show(pilot, pane, "tab-race")
        tab = pane.query_one(RaceTab)
        tab.query_one("#race-choice", Select).value = "postgres"
        await pilot.pause()
        await pilot.press("r")
        await eventually(lambda: not tab.running and "409" in tab.figures["verdict"], within=20)
        assert "no PostgreSQL configured" in tab.figures["verdict"]
        assert problems_of(pane, results=results(tab)) == []


# -- snapshots (live numbers frozen) -------------------------------------------------------

FROZEN_AWAIT: Reply = {
    "form": "pitfall",
    "got": "<coroutine object write_row at 0x7f0000000000>",
    "warning": {
        "category": "RuntimeWarning",
        "message": "coroutine 'write_row' was never awaited",
        "origin": "missing_await.py:101 in call_without_await",
        "origin_line": 'got = write_row(audit, "pitfall")  # the bug: no await',
    },
    "rows_before": 3,
    "rows_after": 3,
    "written": False,
}


def frozen_race() -> Race:
    steps = []
    for seq in range(1, 11):
        read = 10 - (seq - 1) // 3
        steps.append(
            {"seq": seq, "read": read, "wrote": read - 1, "began_ms": seq * 0.5, "done_ms": 9.0}
        )
    summary = {
        "store": "memory",
        "form": "pitfall",
        "stock": 10,
        "sold": 10,
        "expected": 0,
        "actual": 6,
        "lost": 6,
        "timeline": steps,
    }
    return Race(summary, [200] * 10)


def frozen_run(tab_id: str, tab_type: type[DemoTab], result: Any) -> Any:
    async def run_before(pilot: Pilot[Any]) -> None:
        app, pane = await open_frozen(pilot, CorrectnessPane)
        app.blocking_switch.set(True)
        await show(pilot, pane, tab_id)
        tab = pane.query_one(tab_type)
        if isinstance(result, Race):  # the field says the N of the frozen run
            tab.query_one("#race-n", Input).value = str(result.summary["stock"])
        tab.post_message(DemoTab.Done(tab, result))
        await pilot.pause(0.3)
        await still_picture(pilot)

    return run_before


@pytest.mark.parametrize("size", [(100, 30), (140, 45)])
def test_correctness_pane_missing_await_pitfall(
    frozen_snapshot: FrozenSnapshot, size: tuple[int, int]
) -> None:
    assert frozen_snapshot(size, frozen_run("tab-await", MissingAwaitTab, FROZEN_AWAIT))


@pytest.mark.parametrize("size", [(100, 30), (140, 45)])
def test_correctness_pane_race_pitfall(
    frozen_snapshot: FrozenSnapshot, size: tuple[int, int]
) -> None:
    assert frozen_snapshot(size, frozen_run("tab-race", RaceTab, frozen_race()))


FROZEN_GATHER: Reply = {
    "kind": "gather",
    "form": "pitfall",
    "said": "5 done",
    "failed": [],
    "really_failed": 2,
    "loop_logged": None,
}


@pytest.mark.parametrize("size", [(100, 30), (140, 45)])
def test_correctness_pane_swallow_pitfall(
    frozen_snapshot: FrozenSnapshot, size: tuple[int, int]
) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        app, pane = await open_frozen(pilot, CorrectnessPane)
        app.blocking_switch.set(True)
        await show(pilot, pane, "tab-swallow")
        tab = pane.query_one(SwallowTab)
        tab.query_one("#swallow-choice", Select).value = "gather"
        await pilot.pause()
        tab.post_message(DemoTab.Done(tab, FROZEN_GATHER))
        await pilot.pause(0.3)
        await still_picture(pilot)

    assert frozen_snapshot(size, run_before)
