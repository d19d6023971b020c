"""Basics over real HTTP (five handler styles, bad input, blocking mode) and its pane (Pilot)."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse
from textual.pilot import Pilot
from textual.widgets import Input, RadioButton

from explorer.app import ExplorerApp
from explorer.panes.basics import STYLE_BY_KEY, BasicsPane, BatchPlan, BatchSummary
from explorer.widgets.code_view import CodeView
from explorer.widgets.stall_inspector import StallInspector
from explorer.widgets.timeline import Bar, Timeline
from explorer.widgets.top_bar import TopBar
from server.settings import Settings

from .conftest import eventually
from .frozen import FROZEN_STALLS, FrozenMonitor

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
    response = await client.get(path, params=params)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail
    assert all(item["msg"] for item in detail)


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
    response = await client.put(
        "/monitor/blocking", content=body, headers={"content-type": "application/json"}
    )
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
    assert stall["location"].startswith("server/routes/basics.py:")
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
    assert str(stall["location"]).startswith("server/routes/basics.py:")


# -- the pane (Pilot) -------------------------------------------------------------------


async def started(app: ExplorerApp) -> None:
    await eventually(lambda: app.context is not None and bool(app.query(BasicsPane)))


def bars(app: ExplorerApp) -> tuple[str, ...]:
    return tuple(bar.state for bar in app.query_one(Timeline).bars)


async def test_pane_runs_a_batch_and_shows_the_blocking_stall() -> None:
    app = ExplorerApp(Settings(port=0))
    async with app.run_test(size=(120, 40)) as pilot:
        await started(app)
        pane = app.query_one(BasicsPane)
        count = app.query_one("#count", Input)
        count.value = "3"
        await pilot.click("#pane-basics #run")
        await eventually(lambda: pane.summary is not None, within=10)
        assert bars(app) == ("ok", "ok", "ok")
        assert pane.summary is not None
        assert pane.summary.wall_s < 0.7
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
        assert any("server/routes/basics.py" in str(row[6]) for row in rows)

        await pilot.press("c")
        code = app.query_one(CodeView)
        await eventually(lambda: bool(code.blocks))
        panels = code.blocks
        assert panels[0].path == "server/routes/basics.py"
        assert "async def async_sleep" in panels[0].text
        assert panels[0].highlight  # the line that stalled
        assert "async def send_batch" in panels[1].text
        await pilot.press("c")
        assert not app.showing_code
        await pilot.press("q")
        await eventually(lambda: app.return_code is not None, within=5)
    assert app.return_code == 0


async def test_pane_switches_style_and_refuses_bad_input() -> None:
    app = ExplorerApp(Settings(port=0))
    async with app.run_test(size=(120, 40)) as pilot:
        await started(app)
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
        notes = {bar.note for bar in app.query_one(Timeline).bars}
        assert all(note.startswith("pid ") for note in notes)  # ran in worker processes


async def test_inspector_folds_ui_stalls_into_one_row() -> None:
    from explorer.widgets.stall_inspector import OTHER_ROW, UI_ROW
    from server.monitor import Stall

    def stall(seq: int, location: str, route: str | None = None) -> Stall:
        return Stall(seq, time.time() + 1, 20.0 + seq, "cpu", location, route)

    app = ExplorerApp(Settings(port=0))
    async with app.run_test(size=(120, 40)):
        await started(app)
        inspector = app.query_one(StallInspector)
        before = inspector.row_count
        inspector.add_stalls(
            [
                stall(1001, "textual/_compositor.py:1 in render"),
                stall(1002, "rich/text.py:2 in plain"),
                stall(1003, "server/routes/basics.py:77 in async_sleep", "GET /basics/async"),
                stall(1004, "server/work.py:12 in crunch"),  # server code, no request
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
    app = ExplorerApp(Settings(port=0))
    async with app.run_test(size=(120, 40)) as pilot:
        await started(app)
        await pilot.press("ctrl+p")
        await pilot.pause(0.1)
        await pilot.press(*"toggle blocking")
        await pilot.pause(0.4)
        await pilot.press("enter")
        await eventually(lambda: app.blocking_switch.enabled)
        assert app.query_one(BasicsPane).styles.inline.has_rule("border_top")  # red border


# -- snapshot (every live number frozen) ------------------------------------------------


async def show_frozen_blocking_run(pilot: Pilot[Any], monitor: FrozenMonitor) -> None:
    app = pilot.app
    assert isinstance(app, ExplorerApp)
    while app.context is None or not app.query(BasicsPane):
        await pilot.pause(0.02)
    await pilot.pause(0.1)
    app.query_one(TopBar).url = "http://127.0.0.1:8000"
    app.blocking_switch.set(True)
    monitor.freeze()
    app.refresh_gauges()
    await pilot.pause(0.05)
    app.clear_notifications()  # toasts come and go; the inspector rows stay
    pane = app.query_one(BasicsPane)
    starts = (0.0, 0.004, 0.006)
    ends = (0.211, 0.415, 0.619)
    app.query_one(Timeline).bars = tuple(
        Bar(f"#{i + 1}", start, end, "ok", "loop")
        for i, (start, end) in enumerate(zip(starts, ends, strict=True))
    )
    plan = BatchPlan(STYLE_BY_KEY["async"], 3, {"delay": 0.2})
    pane.show_summary(BatchSummary(plan, 0.619, 205.2, FROZEN_STALLS, 0, True))
    await pilot.pause(0.1)


def test_basics_pane_after_a_blocking_run(snap_compare: Any, utc_clock: None) -> None:
    monitor = FrozenMonitor()
    app = ExplorerApp(Settings(port=0), monitor_source=monitor)

    async def run_before(pilot: Pilot[Any]) -> None:
        await show_frozen_blocking_run(pilot, monitor)

    assert snap_compare(app, terminal_size=(120, 40), run_before=run_before)
