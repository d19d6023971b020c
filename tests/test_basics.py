"""Basics over real HTTP (five handler styles, bad input, blocking mode) and its pane (Pilot)."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse
from textual.pilot import Pilot
from textual.widgets import Input, RadioButton, Static

from explorer.app import ExplorerApp
from explorer.patterns.basics.figures import LoopComparison, LoopComparisonView, RunLag
from explorer.patterns.basics.pane import STYLE_BY_KEY, BasicsPane, BatchPlan, BatchSummary
from explorer.patterns.basics.styles import peak_overlap
from explorer.widgets.code_view import CodeView
from explorer.widgets.stall_inspector import StallInspector
from explorer.widgets.timeline import Bar, Timeline
from explorer.widgets.top_bar import TopBar
from tests.conftest import FrozenSnapshot, eventually
from tests.frozen import FROZEN_STALLS, FrozenMonitor
from tests.http_checks import clear_422_detail, send_raw
from tests.layout import problems_of, visible_region
from tests.pilots import (
    escape_leaves_the_field,
    frozen_app,
    press_for,
    quit_with_q,
    running,
    settle,
    tab_order,
)

# -- HTTP -------------------------------------------------------------------------------


async def concurrently(client: httpx.AsyncClient, path: str, count: int, **params: float) -> float:
    """Send ``count`` identical requests at once; the wall time for all of them."""
    started = time.perf_counter()
    responses = await asyncio.gather(*(client.get(path, params=params) for _ in range(count)))
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    return time.perf_counter() - started


async def test_async_handlers_overlap_and_blocking_mode_serialises_them(
    client: httpx.AsyncClient,
) -> None:
    await client.get("/basics/async", params={"delay": 0})  # warm the connection pool up
    overlapped = await concurrently(client, "/basics/async", 5, delay=0.2)
    assert overlapped < 0.7  # ~0.2 s: the sleeps overlap

    switched = await client.put("/monitor/blocking", json={"enabled": True})
    assert switched.json() == {"enabled": True}
    serialised = await concurrently(client, "/basics/async", 5, delay=0.2)
    assert serialised >= 0.98  # five 0.2 s time.sleep calls cannot overlap on one loop
    report = (await client.get("/basics/async", params={"delay": 0})).json()
    assert report["blocking_mode"] is True

    await client.put("/monitor/blocking", json={"enabled": False})
    assert (await client.get("/monitor")).json()["blocking_mode"] is False


async def test_sync_handler_runs_on_the_threadpool(client: httpx.AsyncClient) -> None:
    report = (await client.get("/basics/sync", params={"delay": 0.01})).json()
    assert report["style"] == "sync"
    assert report["thread"] != "MainThread"
    assert report["handler_ms"] >= 10
    assert (await concurrently(client, "/basics/sync", 5, delay=0.2)) < 0.7


async def test_cpu_styles_inline_versus_offloaded(client: httpx.AsyncClient) -> None:
    inline = (await client.get("/basics/cpu", params={"n": 10_000})).json()
    assert inline["thread"] == "MainThread"
    assert inline["process"] == os.getpid()
    offloaded = (await client.get("/basics/offload", params={"n": 10_000})).json()
    assert offloaded["process"] != os.getpid()  # a worker process did the work
    assert offloaded["result"] == inline["result"]

    await client.put("/monitor/blocking", json={"enabled": True})
    pitfall = (await client.get("/basics/offload", params={"n": 10_000})).json()
    assert pitfall["process"] == os.getpid()  # blocking mode: the work stays on the loop
    await client.put("/monitor/blocking", json={"enabled": False})


async def test_handlers_report_when_they_ran(client: httpx.AsyncClient) -> None:
    """Five time.sleep handlers one after another: their own start and end say so."""
    before = time.time()
    responses = await asyncio.gather(
        *(client.get("/basics/blocking", params={"delay": 0.1}) for _ in range(5))
    )
    spans = sorted((r.json()["started_at"], r.json()["ended_at"]) for r in responses)
    assert before <= spans[0][0]
    for (_, ended), (began, _) in itertools.pairwise(spans):
        assert began >= ended - 0.002  # each began once the previous one had ended
    assert all(end - start >= 0.1 for start, end in spans)

    responses = await asyncio.gather(
        *(client.get("/basics/async", params={"delay": 0.3}) for _ in range(5))
    )
    spans = [(r.json()["started_at"], r.json()["ended_at"]) for r in responses]
    assert max(start for start, _ in spans) < min(end for _, end in spans)  # all overlap


async def test_the_pool_starts_apart_and_only_once(client: httpx.AsyncClient) -> None:
    first = (await client.post("/basics/pool")).json()
    assert first["workers"] == 2
    assert first["started_now"] is True
    assert first["startup_ms"] > 0
    again = (await client.post("/basics/pool")).json()
    assert again == {**first, "started_now": False}  # the start-up it measured, kept
    offloaded = (await client.get("/basics/offload", params={"n": 10})).json()
    assert offloaded["process"] != os.getpid()


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/basics/async", {"delay": "-1"}),
        ("/basics/async", {"delay": "11"}),
        ("/basics/async", {"delay": "soon"}),
        ("/basics/async", {}),
        ("/basics/sync", {"delay": "nan"}),
        ("/basics/blocking", {"delay": "1e9"}),
        ("/basics/cpu", {"n": "0"}),
        ("/basics/cpu", {"n": "1000000000"}),
        ("/basics/offload", {"n": "2.5"}),
        ("/monitor", {"window": "0"}),
        ("/monitor", {"after": "-3"}),
    ],
)
async def test_bad_input_gets_a_clear_422(
    client: httpx.AsyncClient, path: str, params: dict[str, str]
) -> None:
    detail = clear_422_detail(await client.get(path, params=params))
    assert detail


@pytest.mark.parametrize(
    "body",
    [
        b'{"enabled": "maybe"}',
        b"{}",
        b'{"enabled": true, "extra": 1}',
        b"not json",
        b"[]",
        # Python's JSON parser takes these; the 422 that echoes them must still encode
        b'{"enabled": NaN}',
        b'{"enabled": 1e999}',
        b'{"x": -Infinity}',
    ],
)
async def test_bad_blocking_switch_bodies_are_refused(
    client: httpx.AsyncClient, body: bytes
) -> None:
    response = await send_raw(client, "PUT", "/monitor/blocking", body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"]
    assert (await client.get("/monitor")).json()["blocking_mode"] is False


async def test_monitor_report_has_the_contract_fields(client: httpx.AsyncClient) -> None:
    await client.get("/basics/blocking", params={"delay": 0.03})
    await asyncio.sleep(0.05)
    report = (await client.get("/monitor")).json()
    assert set(report["lag_ms"]) == {"p50", "p95", "p99", "max"}
    assert 0 <= report["utilization"] <= 1
    assert report["blocking_mode"] is False
    stall = next(s for s in report["stalls"] if s["route"] == "GET /basics/blocking")
    assert {"started_at", "duration_ms", "location", "route"} <= set(stall)
    assert stall["location"].startswith("server/patterns/basics/router.py:")
    newer = (await client.get("/monitor", params={"after": stall["seq"]})).json()
    assert all(s["seq"] > stall["seq"] for s in newer["stalls"])


async def test_monitor_stream_sends_lag_windows_and_stalls(client: httpx.AsyncClient) -> None:
    events: list[tuple[str, dict[str, object]]] = []

    async def read() -> None:
        async with aconnect_sse(client, "GET", "/monitor/stream") as source:
            assert source.response.headers["content-type"].startswith("text/event-stream")
            async for event in source.aiter_sse():
                data = event.json()
                events.append((event.event, data))
                if event.event == "stall" and data["route"] == "GET /basics/blocking":
                    return

    reader = asyncio.create_task(read())
    await eventually(lambda: any(kind == "lag" for kind, _ in events))
    async with httpx.AsyncClient(base_url=str(client.base_url)) as other:
        await other.get("/basics/blocking", params={"delay": 0.05})
    await asyncio.wait_for(reader, timeout=5)
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "hello"
    stall = events[-1][1]
    assert str(stall["location"]).startswith("server/patterns/basics/router.py:")


# -- the pane (Pilot) -------------------------------------------------------------------


async def started(app: ExplorerApp, _: Pilot[Any]) -> None:
    """Wait until the server answers and the pane is mounted."""
    await eventually(lambda: app.context is not None and bool(app.query(BasicsPane)))


def bars(app: ExplorerApp) -> tuple[str, ...]:
    return tuple(bar.state for bar in app.query_one("#pane-basics #timeline", Timeline).bars)


async def test_pane_runs_a_batch_and_shows_the_blocking_stall() -> None:
    async with running((120, 40), started) as (app, pilot):
        pane = app.query_one(BasicsPane)
        count = app.query_one("#count", Input)
        count.value = "3"
        await pilot.click("#pane-basics #run")
        await eventually(lambda: pane.summary is not None, within=10)
        assert bars(app) == ("ok", "ok", "ok")
        assert pane.summary is not None
        assert peak_overlap(pane.summary.handler_spans) >= 2  # the handlers overlapped
        assert not [s for s in pane.summary.stalls if s.route]  # the UI may repaint, though

        await pilot.press("b")
        assert app.blocking_switch.enabled
        assert "BLOCKING MODE ON" in str(app.query_one("TopBar").render())
        pane.summary = None
        await pilot.press("r")
        await eventually(lambda: pane.summary is not None, within=10)
        assert pane.summary is not None
        assert pane.summary.wall_s >= 0.58  # three 0.2 s sleeps, one after another
        # Two handlers can run back to back in one loop iteration: that is one longer stall.
        mine = [s for s in pane.summary.stalls if s.route == "GET /basics/async"]
        assert len(mine) in {1, 2, 3}
        assert sum(s.blocked_ms for s in mine) >= 0.99 * 600
        inspector = app.query_one(StallInspector)
        await eventually(lambda: inspector.row_count >= 3)
        rows = [inspector.get_row_at(i) for i in range(inspector.row_count)]
        assert any("server/patterns/basics/router.py" in str(row[6]) for row in rows)

        await pilot.press("c")
        code = app.query_one(CodeView)
        await eventually(lambda: bool(code.blocks))
        panels = code.blocks
        assert panels[0].path == "server/patterns/basics/router.py"
        assert "async def async_sleep" in panels[0].text
        assert panels[0].highlight  # the line that stalled
        assert "async def send_batch" in panels[1].text
        await pilot.press("c")
        assert not app.showing_code
        await quit_with_q(pilot, within=5)
    assert app.return_code == 0


async def test_pane_switches_style_and_refuses_bad_input() -> None:
    async with running((120, 40), started) as (app, pilot):
        pane = app.query_one(BasicsPane)
        await pilot.click("#style-offload")
        assert pane.style_key == "offload"
        assert app.query_one("#work-row").display
        assert not app.query_one("#delay-row").display
        assert isinstance(app.query_one("#style-offload"), RadioButton)

        app.query_one("#work", Input).value = "0"
        await pilot.click("#pane-basics #run")
        await pilot.pause()
        assert not pane.running  # refused before any request
        assert any("Invalid input" in (n.title or "") for n in app._notifications)

        app.query_one("#work", Input).value = "20000"
        await pilot.click("#pane-basics #run")
        await eventually(lambda: pane.summary is not None, within=20)
        assert set(bars(app)) == {"ok"}
        notes = {bar.note for bar in app.query_one("#pane-basics #timeline", Timeline).bars}
        # "ran 12-340 pid 4242": the handler's span, then where the work ran
        assert all(" pid " in note for note in notes)
        pids = {note.rsplit(" pid ", 1)[-1] for note in notes}
        assert str(os.getpid()) not in pids  # ran in worker processes


async def test_inspector_folds_ui_stalls_into_one_row() -> None:
    from explorer.widgets.stall_inspector import OTHER_ROW, UI_ROW
    from fastasync_probe.monitor import Stall

    def stall(seq: int, location: str, route: str | None = None) -> Stall:
        return Stall(seq, time.time() + 1, 20.0 + seq, "cpu", location, route)

    async with running((120, 40), started) as (app, _):
        inspector = app.query_one(StallInspector)
        before = inspector.row_count
        inspector.add_stalls(
            [
                stall(1001, "textual/_compositor.py:1 in render"),
                stall(1002, "rich/text.py:2 in plain"),
                stall(1003, "server/patterns/basics/router.py:77 in async_sleep", "GET /b/async"),
                stall(1004, "server/patterns/basics/work.py:12 in crunch"),  # server, no request
                stall(1005, "asyncio/events.py:80 in _run"),  # neither UI nor server
            ]
        )
        rows = {str(key.value) for key in inspector.rows}
        assert {"1003", "1004", UI_ROW, OTHER_ROW} <= rows
        assert not {"1001", "1002", "1005"} & rows
        assert inspector.row_count == before + 2  # the folded rows were there from the start
        ui = inspector.get_row(UI_ROW)
        assert ui[0] == "explorer UI"
        assert ui[1] == "×2"
        assert "rich/text.py:2 in plain" in ui[6]  # the worst one (22 ms)
        assert inspector.get_row(OTHER_ROW)[1] == "×1"


async def test_command_palette_toggles_blocking_mode() -> None:
    async with running((120, 40), started) as (app, pilot):
        await pilot.press("ctrl+p")
        await pilot.pause(0.1)
        await pilot.press(*"toggle blocking")
        await pilot.pause(0.4)
        await pilot.press("enter")
        await eventually(lambda: app.blocking_switch.enabled)
        assert app.query_one(BasicsPane).styles.inline.has_rule("border_top")  # red border


# -- the pane at every size, its keys and its lessons (Pilot, real server) ---------------

SIZES = [(100, 30), (140, 45), (200, 60)]
RESULTS = ("#timeline", "#summary")


async def run_batch(pilot: Pilot[Any], pane: BasicsPane, within: float = 30) -> BatchSummary:
    """Press r and wait for the batch's summary."""
    pane.summary = None
    return await press_for(pilot, "r", lambda: pane.summary, within)


def timeline_whole(app: ExplorerApp) -> bool:
    """Every bar and the axis on screen, without scrolling."""
    timeline = app.query_one("#pane-basics #timeline", Timeline)
    return visible_region(timeline).height >= len(timeline.bars) + 1


def handler_spans(app: ExplorerApp) -> list[tuple[float, float]]:
    """The server-side spans the timeline draws (solid), in the order they began."""
    spans = [bar.inner for bar in app.query_one("#pane-basics #timeline", Timeline).bars]
    assert all(span is not None for span in spans)
    return sorted(span for span in spans if span is not None)


def shown(app: ExplorerApp, selector: str) -> str:
    """What the pane's Static ``selector`` shows now."""
    return str(app.query_one(BasicsPane).query_one(selector, Static).content)


@pytest.mark.parametrize("size", SIZES, ids=lambda size: f"{size[0]}x{size[1]}")
async def test_pane_is_whole_before_and_after_a_run(size: tuple[int, int]) -> None:
    async with running(size, started) as (app, pilot):
        await pilot.pause()
        pane = app.query_one(BasicsPane)
        assert problems_of(pane, RESULTS) == []
        await run_batch(pilot, pane)
        assert problems_of(pane, RESULTS) == []
        assert timeline_whole(app)

        await pilot.click("#style-cpu")
        await pilot.pause()
        assert problems_of(pane, (*RESULTS, "#compare")) == []
        await run_batch(pilot, pane)
        assert problems_of(pane, (*RESULTS, "#compare")) == []
        assert timeline_whole(app)
        assert visible_region(app.query_one(LoopComparison)).height == 4


async def test_enter_in_every_field_runs_and_escape_leaves_it() -> None:
    async with running((100, 30), started) as (app, pilot):
        await pilot.pause(0.2)  # the app focuses the pane's first control after mounting
        pane = app.query_one(BasicsPane)

        async def enter_in(field_id: str) -> None:
            pane.summary = None
            field = app.query_one(f"#{field_id}", Input)
            field.focus()
            await pilot.pause()
            assert app.focused is field
            await pilot.press("enter")
            await eventually(lambda: pane.summary is not None, within=20)

        await enter_in("count")
        await enter_in("delay")
        await pilot.click("#style-cpu")
        app.query_one("#work", Input).value = "20000"
        await enter_in("work")
        assert pane.summary is not None
        assert pane.summary.plan.params == {"n": 20000}

        await escape_leaves_the_field(pilot, app.query_one("#work", Input))
        await quit_with_q(pilot, within=5)
    assert app.return_code == 0


async def test_tab_follows_the_screen() -> None:
    async with running((100, 30), started) as (app, pilot):
        await pilot.pause(0.2)
        visited = await tab_order(pilot, app.query_one("#style"), 3)
        assert [widget.id for widget in visited] == ["style", "count", "run"]
        await pilot.press("shift+tab")
        await pilot.click("#style-cpu")
        app.query_one("#pane-basics #run").focus()
        await pilot.pause()
        await pilot.press("tab")
        assert app.focused is app.query_one(
            "#pane-basics #work", Input
        )  # the field under the button


async def test_the_pitfall_runs_the_handlers_one_after_another() -> None:
    """The server's own spans show the staircase the client's bars cannot."""
    async with running((100, 30), started) as (app, pilot):
        pane = app.query_one(BasicsPane)
        await run_batch(pilot, pane)
        assert peak_overlap(handler_spans(app)) >= 2  # await: the handlers overlap
        assert "the handlers ran up to" in shown(app, "#summary")

        await pilot.press("b")
        await run_batch(pilot, pane)
        spans = handler_spans(app)
        assert len(spans) == 5
        for (_, ended), (began, _) in itertools.pairwise(spans):
            assert began >= ended - 0.005  # each began after the previous one ended
        summary = shown(app, "#summary")
        assert "one after another" in summary
        assert "the client" in summary  # why its own bars do not show the queue
        assert "time.sleep" in shown(app, "#lesson")

        await pilot.press("b")
        await pilot.click("#style-blocking")  # the pitfall itself, always on
        await run_batch(pilot, pane)
        assert peak_overlap(handler_spans(app)) == 1
        assert "one after another" in shown(app, "#summary")


async def test_offloading_keeps_the_loop_free() -> None:
    """Defaults: the loop's lag with the CPU work on it, then offloaded, side by side."""
    async with running((100, 30), started) as (app, pilot):
        pane = app.query_one(BasicsPane)
        figure = app.query_one(LoopComparison)
        await pilot.click("#style-cpu")
        await run_batch(pilot, pane)
        await pilot.click("#style-offload")
        await run_batch(pilot, pane, within=90)  # the pool starts first, timed apart
        await eventually(lambda: figure.view.latest == "offloaded")

        view = figure.view
        assert view.on_loop is not None
        assert view.offloaded is not None
        assert view.on_loop.stalls >= 1  # every handler stalled the loop
        assert view.offloaded.lag_max_ms < view.on_loop.lag_max_ms / 2
        assert view.pool_started_now
        assert view.pool_startup_s is not None
        assert view.pool_startup_s > 0
        text = str(figure.render())
        assert f"{view.on_loop.lag_max_ms:.1f} ms" in text
        assert f"{view.offloaded.lag_max_ms:.1f} ms" in text
        assert f"pool start-up {view.pool_startup_s:.2f} s" in text
        assert "timed apart" in text

        await pilot.press("b")  # offload's pitfall: the work stays on the loop
        await run_batch(pilot, pane)
        await eventually(lambda: figure.view.latest == "loop")
        assert figure.view.on_loop is not None
        assert figure.view.on_loop.via == "offload, blocking mode"
        assert figure.view.on_loop.stalls >= 1
        assert figure.view.offloaded == view.offloaded  # the offloaded run is kept


# -- snapshot (every live number frozen) ------------------------------------------------


async def frozen_app_ready(pilot: Pilot[Any], monitor: FrozenMonitor, blocking: bool) -> None:
    """The app with its live figures frozen: the top bar's URL, the monitor, no toasts."""
    app = pilot.app
    assert isinstance(app, ExplorerApp)
    await settle(
        pilot, lambda: app.context is not None and bool(app.query(BasicsPane)), "basics mounted"
    )
    await pilot.pause(0.1)
    app.query_one(TopBar).url = "http://127.0.0.1:8000"
    app.blocking_switch.set(blocking)
    monitor.freeze()
    app.refresh_gauges()
    await pilot.pause(0.05)
    app.clear_notifications()  # toasts come and go; the inspector rows stay


def frozen_bars(
    clients: list[tuple[float, float]], handlers: list[tuple[float, float]], where: str
) -> tuple[Bar, ...]:
    """Bars as a batch draws them: the client's request, the handler's span inside it."""
    return tuple(
        Bar(f"#{i + 1}", start, end, "ok", f"ran {hs * 1000:.0f}–{he * 1000:.0f} {where}", (hs, he))
        for i, ((start, end), (hs, he)) in enumerate(zip(clients, handlers, strict=True))
    )


def show_frozen_batch(
    app: ExplorerApp,
    plan: BatchPlan,
    clients: list[tuple[float, float]],
    handlers: list[tuple[float, float]],
    lag_max_ms: float,
    blocking: bool,
) -> None:
    pane = app.query_one(BasicsPane)
    app.query_one("#pane-basics #timeline", Timeline).bars = frozen_bars(clients, handlers, "loop")
    wall = max(end for _, end in clients)
    stalls = FROZEN_STALLS if blocking else ()
    summary = BatchSummary(
        plan,
        wall,
        lag_max_ms,
        stalls,
        0,
        blocking,
        handler_spans=tuple(sorted(handlers)),
        client_ends=tuple(sorted(end for _, end in clients)),
    )
    pane.show_summary(summary)


def basics_snapshot(
    frozen_snapshot: FrozenSnapshot,
    size: tuple[int, int],
    blocking: bool,
    draw: Callable[[Pilot[Any], ExplorerApp], Awaitable[None]],
) -> bool:
    """Whether the pane at ``size`` is its snapshot, once frozen (the blocking switch at
    ``blocking``) and ``draw`` has put in the figures of a run."""
    monitor = FrozenMonitor()

    async def run_before(pilot: Pilot[Any]) -> None:
        await frozen_app_ready(pilot, monitor, blocking)
        assert isinstance(pilot.app, ExplorerApp)
        await draw(pilot, pilot.app)
        # the tables settle their column widths a refresh later: on a loaded machine the
        # picture was once taken between the two
        await pilot.pause(0.4)

    return frozen_snapshot(size, run_before, frozen_app(monitor=monitor))


def test_basics_pane_after_a_blocking_run(frozen_snapshot: FrozenSnapshot) -> None:
    async def draw(pilot: Pilot[Any], app: ExplorerApp) -> None:
        clients = [(0.0, 0.611), (0.004, 0.613), (0.006, 0.619)]
        handlers = [(0.005, 0.206), (0.207, 0.409), (0.410, 0.611)]
        app.query_one("#count", Input).value = "3"
        plan = BatchPlan(STYLE_BY_KEY["async"], 3, {"delay": 0.2})
        show_frozen_batch(app, plan, clients, handlers, 205.2, blocking=True)

    assert basics_snapshot(frozen_snapshot, (120, 40), True, draw)


def test_basics_pane_at_100x30_after_a_default_run(frozen_snapshot: FrozenSnapshot) -> None:
    """Five requests of 0.2 s in the right form: the handlers overlap."""

    async def draw(pilot: Pilot[Any], app: ExplorerApp) -> None:
        clients = [(0.001 * i, 0.215 + 0.001 * i) for i in range(5)]
        handlers = [(0.006 + 0.001 * i, 0.207 + 0.001 * i) for i in range(5)]
        plan = BatchPlan(STYLE_BY_KEY["async"], 5, {"delay": 0.2})
        show_frozen_batch(app, plan, clients, handlers, 3.4, blocking=False)

    assert basics_snapshot(frozen_snapshot, (100, 30), False, draw)


def test_basics_pane_at_140x45_comparing_the_cpu_styles(frozen_snapshot: FrozenSnapshot) -> None:
    """The CPU loop on the loop (a stall per handler) beside the offloaded run (none)."""

    async def draw(pilot: Pilot[Any], app: ExplorerApp) -> None:
        await pilot.click("#style-offload")
        pane = app.query_one(BasicsPane)
        clients = [(0.001 * i, 0.9 + 0.001 * i) for i in range(5)]
        ends = (0.41, 0.43, 0.82, 0.84, 0.9)
        handlers = [(0.004 + 0.001 * i, end) for i, end in enumerate(ends)]
        app.query_one("#pane-basics #timeline", Timeline).bars = tuple(
            Bar(
                f"#{i + 1}",
                cs,
                ce,
                "ok",
                f"ran {hs * 1000:.0f}–{he * 1000:.0f} pid {4242 + i % 2}",
                (hs, he),
            )
            for i, ((cs, ce), (hs, he)) in enumerate(zip(clients, handlers, strict=True))
        )
        plan = BatchPlan(STYLE_BY_KEY["offload"], 5, {"n": 2_000_000})
        pane.show_summary(BatchSummary(plan, 0.905, 4.1, (), 0, False, tuple(handlers)))
        pane.comparison = LoopComparisonView(
            on_loop=RunLag(5, 2_000_000, 0.633, 612.3, 5, 610.0),
            offloaded=RunLag(5, 2_000_000, 0.905, 4.1, 0, 0.0),
            latest="offloaded",
            pool_workers=2,
            pool_startup_s=0.912,
            pool_started_now=True,
        )

    assert basics_snapshot(frozen_snapshot, (140, 45), False, draw)
