"""The Your app view on a real app in a child process with the probe in it.

A tiny FastAPI app (written here, ``install(app)`` at its end) runs under uvicorn in a
child. The view lists its routes from its OpenAPI, drives its blocking route with real
HTTP, and the stall that follows names the ``time.sleep`` line, the route and the
victims; its detail shows the source line, ``l`` toggles the library frames; the Tasks
tab lists the app's tasks; Escape and ``q`` behave. Snapshots replay answers recorded
from such a run (``RECORDED``), so the picture is the same on any machine.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Input, Static, TabbedContent

from explorer.yourapp.app import YourAppExplorer
from explorer.yourapp.load_driver import LoadSpec, RouteFigures, drive
from explorer.yourapp.log_tail import LogTail
from explorer.yourapp.probe_records import (
    MonitorReading,
    ProbeInfo,
    SourceLines,
    culprit_of,
    info_of,
    reading_of,
    source_of,
)
from explorer.yourapp.routes import routes_of
from explorer.yourapp.target import ProbeTarget
from explorer.yourapp.widgets.stall_detail import OPENAPI_ROUTE, OwnRequest, summary_text
from fastasync_probe.monitor import Stall
from tests.conftest import eventually
from tests.layout import visible_region

SIZES = [(100, 30), (140, 45)]
SIZE_IDS = ["100x30", "140x45"]

TINY_APP = textwrap.dedent(
    """
    import asyncio
    import time

    from fastapi import FastAPI
    from pydantic import BaseModel

    from fastasync_probe import install

    app = FastAPI()


    class Order(BaseModel):
        item: str
        qty: int


    @app.get("/block")
    async def block() -> dict[str, bool]:
        time.sleep(0.08)  # the culprit
        return {"ok": True}


    @app.get("/awaits")
    async def awaits() -> dict[str, bool]:
        await asyncio.sleep(0.01)
        return {"ok": True}


    @app.get("/items/{item_id}")
    async def item(item_id: int, q: str) -> dict[str, object]:
        return {"id": item_id, "q": q}


    @app.post("/orders")
    async def order(order: Order) -> Order:
        return order


    app = install(app)
    """
)
SLEEP_LINE = next(i for i, line in enumerate(TINY_APP.splitlines(), 1) if "time.sleep(" in line)


@dataclass(frozen=True)
class TinyApp:
    """The child: where it answers, and the file its output goes to."""

    url: str
    log_path: Path

    def target(self) -> ProbeTarget:
        return ProbeTarget(url=self.url, label="tinyapp", log_path=self.log_path)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def tiny_app_in(folder: Path) -> Iterator[TinyApp]:
    """The tiny app under uvicorn (its default loop: uvloop here) in a child process."""
    (folder / "tinyapp.py").write_text(TINY_APP)
    log_path = folder / "app.log"
    port = free_port()
    with log_path.open("wb") as log:
        child = subprocess.Popen(
            [
                *(sys.executable, "-m", "uvicorn", "tinyapp:app"),
                *("--app-dir", str(folder), "--port", str(port)),
            ],
            cwd=folder,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/_fastasync", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert child.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "the tiny app did not start"
            time.sleep(0.1)
        yield TinyApp(url, log_path)
    finally:
        child.terminate()
        child.wait(timeout=10)


@pytest.fixture(scope="module")
def tiny_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TinyApp]:
    with tiny_app_in(tmp_path_factory.mktemp("tinyapp")) as app:
        yield app


async def routes_listed(app: YourAppExplorer) -> None:
    await eventually(lambda: len(app.routes_view.routes) >= 4, within=10)


def problems_on_screen(app: YourAppExplorer) -> list[str]:
    """Every button and field shown is whole on screen (nothing cut at this size)."""
    screen = app.screen.region
    problems = []
    for widget in app.screen.query("Button, Input").results(Widget):
        if not widget.display or not _shown(widget):
            continue
        region = visible_region(widget)
        if not region or region.size != widget.outer_size or not screen.contains_region(region):
            problems.append(f"{type(widget).__name__}#{widget.id} is cut or off screen")
    return problems


def shown(app: YourAppExplorer, selector: str) -> str:
    """What a Static says now (plain text)."""
    return str(app.query_one(selector, Static).content)


def _shown(widget: Widget) -> bool:
    node: Any = widget
    while isinstance(node, Widget):
        if not node.display:
            return False
        node = node.parent
    return True


# -- live ----------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
async def test_a_blocking_route_under_load_names_its_line_route_and_victims(
    tiny_app: TinyApp, size: tuple[int, int]
) -> None:
    app = YourAppExplorer(tiny_app.target())
    async with app.run_test(size=size) as pilot:
        await routes_listed(app)
        labels = [route.label for route in app.routes_view.routes]
        assert labels == ["GET /block", "GET /awaits", "GET /items/{item_id}", "POST /orders"]
        assert app.header.info is not None
        assert app.header.info.method in {"selector", "heartbeat"}
        assert problems_on_screen(app) == []
        # the first route is picked already; a short, concurrent run on it
        form = app.routes_view.form
        assert (form.method.value, form.path.value) == ("GET", "/block")
        form.concurrency.value = "4"
        form.duration.value = "1"
        await pilot.click("#run-load")
        await eventually(lambda: form.running, within=3)
        await eventually(lambda: not form.running, within=10)
        figures = app.figures["GET /block"]
        assert figures.requests >= 4
        assert figures.errors == 0
        assert problems_on_screen(app) == []
        assert "GET /block" in app.routes_view.figures.figures_of("GET /block")

        # the stalls: the sleep's line and the route, and requests that waited for it
        table = app.stalls_view.table

        def named() -> list[Any]:
            return [
                s
                for s in table.stalls
                if s.route == "GET /block"
                and (frame := culprit_of(s)) is not None
                and (frame.path, frame.line) == ("tinyapp.py", SLEEP_LINE)
                and s.victims
            ]

        await eventually(lambda: bool(named()), within=5)
        await pilot.press("2")
        assert app.query_one("#tabs", TabbedContent).active == "stalls"
        stall = named()[-1]
        row = table.get_row_index(str(stall.seq))
        cells = [str(cell) for cell in table.get_row_at(row)]
        assert f"tinyapp.py:{SLEEP_LINE}" in cells
        assert "GET /block" in cells
        assert cells[-1].startswith(f"{len(stall.victims)} (")
        table.move_cursor(row=row)
        table.focus()
        await pilot.press("enter")
        detail = app.stalls_view.detail
        await eventually(lambda: detail.code.block is not None and bool(detail.code.block.text))
        block = detail.code.block
        assert block is not None
        assert "time.sleep(0.08)" in block.text
        assert block.highlight == frozenset({SLEEP_LINE})
        assert block.path == "tinyapp.py"
        stack = shown(app, "#stall-stack")
        assert f"tinyapp.py:{SLEEP_LINE} in block" in stack
        assert "starlette/" not in stack  # own frames only
        await pilot.press("l")
        await pilot.pause()
        assert "starlette/" in shown(app, "#stall-stack")
        await pilot.press("l")
        await pilot.pause()
        assert "starlette/" not in shown(app, "#stall-stack")
        victims = shown(app, "#stall-victims")
        assert "GET /block" in victims
        assert " ms" in victims
        # Escape in the stall's code goes back to the table
        detail.code.focus()
        await pilot.pause()
        await pilot.press("escape")
        assert app.focused is table

        # the Tasks tab: the app's own tasks (uvicorn's server task at least)
        await pilot.press("3")
        await eventually(lambda: app.tasks_taken >= 1, within=5)
        assert app.query_one("#task-inspector").row_count >= 1  # type: ignore[attr-defined]
        await pilot.press("q")
        await eventually(lambda: app.return_code is not None, within=5)
        assert app.return_code == 0


async def test_escape_backs_out_of_a_field_and_enter_runs(tiny_app: TinyApp) -> None:
    app = YourAppExplorer(tiny_app.target())
    async with app.run_test(size=(100, 30)) as pilot:
        await routes_listed(app)
        # Enter on a route fills the form and moves to it; its path params have examples
        routes = app.routes_view.route_list
        routes.focus()
        routes.highlighted = 2
        await pilot.press("enter")
        form = app.routes_view.form
        assert app.focused is form.path
        assert form.path.value == "/items/1"
        assert form.query_field.value == "q=abc"
        await pilot.press("escape")
        assert not isinstance(app.focused, Input)
        assert app.focused is routes
        # a route with a body gets an example of it; Enter in a field runs the load
        routes.highlighted = 3
        await pilot.pause()
        assert json.loads(form.body.value) == {"item": "abc", "qty": 1}
        form.duration.value = "1"
        form.concurrency.value = "2"
        form.body.focus()
        await pilot.press("enter")
        await eventually(lambda: "POST /orders" in app.figures, within=5)
        await eventually(lambda: not form.running, within=10)
        assert app.figures["POST /orders"].errors == 0
        assert set(app.figures["POST /orders"].statuses) == {200}
        # a path with its parameter left unfilled is refused in words, and runs nothing
        form.path.value = "/items/{item_id}"
        form.ask()
        assert "fill in the path's {item_id}" in form.hint.shown
        form.path.value = "/items/1"
        form.body.value = "{not json"
        form.ask()
        assert "the body is not JSON" in form.hint.shown
        await pilot.press("escape")
        await pilot.press("q")
        await eventually(lambda: app.return_code is not None, within=5)


async def test_tasks_are_read_only_while_their_tab_is_shown(tiny_app: TinyApp) -> None:
    app = YourAppExplorer(tiny_app.target())
    async with app.run_test(size=(100, 30)) as pilot:
        await routes_listed(app)
        await pilot.pause(1.2)
        assert app.tasks_taken == 0
        await pilot.press("3")
        await eventually(lambda: app.tasks_taken >= 2, within=4)
        await pilot.press("1")
        await pilot.pause(0.1)
        hidden_at = app.tasks_taken
        await pilot.pause(1.5)
        assert app.tasks_taken == hidden_at


async def test_the_log_tab_follows_the_app_without_the_probes_own_requests(
    tiny_app: TinyApp,
) -> None:
    app = YourAppExplorer(tiny_app.target())
    async with app.run_test(size=(100, 30)) as pilot:
        await routes_listed(app)
        async with httpx.AsyncClient(base_url=tiny_app.url) as http:
            await http.get("/awaits")
        await pilot.press("4")
        log_view = app.query_one("#log-view")

        def lines() -> list[str]:
            return [strip.text for strip in log_view.lines]  # type: ignore[attr-defined]

        await eventually(lambda: any("GET /awaits" in line for line in lines()), within=5)
        assert not any("/_fastasync" in line for line in lines())


async def test_an_app_that_does_not_answer_is_said_in_one_line() -> None:
    """Nothing listens there: the header says so, the UI stays alive, q quits."""
    target = ProbeTarget(url=f"http://127.0.0.1:{free_port()}", label="gone")
    app = YourAppExplorer(target)
    async with app.run_test(size=(100, 30)) as pilot:
        await eventually(lambda: bool(app.header.problem), within=8)
        assert app.header.problem.startswith("the app is not answering: ")
        assert "\n" not in app.header.problem
        await pilot.press("2")
        assert app.query_one("#tabs", TabbedContent).active == "stalls"
        await pilot.press("q")
        await eventually(lambda: app.return_code is not None, within=5)
        assert app.return_code == 0


async def test_an_app_that_dies_is_said_in_one_line_and_the_view_goes_on(
    tmp_path: Path,
) -> None:
    with tiny_app_in(tmp_path) as tiny:
        app = YourAppExplorer(tiny.target())
        async with app.run_test(size=(100, 30)) as pilot:
            await routes_listed(app)
            assert app.header.problem == ""
            # the app's process ends under the view
            child_pid = app.header.info.pid if app.header.info else None
            assert child_pid is not None
            os.kill(child_pid, signal.SIGTERM)
            await eventually(lambda: bool(app.header.problem), within=10)
            assert app.header.problem.startswith("the app is not answering: ")
            assert "see the log: 4" in app.header.problem
            await pilot.press("4")
            assert app.query_one("#tabs", TabbedContent).active == "log"
            await pilot.press("q")
            await eventually(lambda: app.return_code is not None, within=5)
            assert app.return_code == 0


async def test_without_openapi_a_method_and_path_are_typed() -> None:
    """An app with no OpenAPI document: the list says so, "POST /orders" can be typed."""
    answers = {**recorded(), "openapi": None}
    target = ProbeTarget(url="http://127.0.0.1:8000", label="no openapi")
    app = YourAppExplorer(target, source=RecordedProbe(answers))
    async with app.run_test(size=(100, 30)) as pilot:
        await eventually(lambda: app.routes_view.route_list.option_count == 1)
        await pilot.pause()
        option = app.routes_view.route_list.get_option_at_index(0)
        assert "no /openapi.json" in str(option.prompt)
        form = app.routes_view.form
        form.path.value = "POST /orders"
        form.body.value = '{"item": "tea", "qty": 2}'
        request = form.request()
        assert not isinstance(request, str)
        assert (request.method, request.path) == ("POST", "/orders")
        assert request.json_body == {"item": "tea", "qty": 2}


def test_the_log_tail_hands_out_whole_lines_and_bounds_a_big_file(tmp_path: Path) -> None:
    path = tmp_path / "out.log"
    path.write_text("x" * 5000 + "\nold\n")
    tail = LogTail(path, max_read=1024)
    # a big file: only its end, and a line that says what was left out
    assert tail.read_new() == ["… 5,001 bytes of output left out", "old"]
    with path.open("a") as file:
        file.write("one\ntw")
    assert tail.read_new() == ["one"]
    with path.open("a") as file:
        file.write("o\n")
    assert tail.read_new() == ["two"]
    assert LogTail(tmp_path / "missing.log").read_new() == []


# -- snapshots, from answers recorded off a real probe --------------------------------------

#: what a real probe answered during a load run on the tiny app (``python -m
#: tests.test_yourapp_ui`` records it again): its info, one monitor reading with the stalls
#: and lag windows, a task snapshot, the culprit's source, the OpenAPI and the run's figures
#: (kept outside ``__snapshots__``: syrupy counts any file there as an unused snapshot and fails)
RECORDED = Path(__file__).parent / "recordings" / "yourapp_probe.json"


def record(folder: Path) -> dict[str, Any]:
    """Run the tiny app, drive its blocking route, and keep every answer the view reads."""

    async def answers(url: str) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            await asyncio.sleep(3)  # a few seconds of calm first: the sparkline's left part
            figures = await drive(http, [LoadSpec("GET", "/block", concurrency=4, duration_s=1)])
            await asyncio.sleep(0.5)  # the last stall is published once it has ended
            monitor = (await http.get("/_fastasync/monitor?window=10&after=0")).json()
            culprit = next(f for f in monitor["stalls"][-1]["frames"] if f["own"])
            source = await http.get(
                "/_fastasync/source", params={"file": culprit["file"], "line": culprit["line"]}
            )
            return {
                "info": (await http.get("/_fastasync")).json(),
                "monitor": monitor,
                "tasks": (await http.get("/_fastasync/tasks?limit=200")).json(),
                "source": source.json(),
                "openapi": (await http.get("/openapi.json")).json(),
                "figures": {
                    route: {**vars_of(f), "statuses": {str(k): v for k, v in f.statuses.items()}}
                    for route, f in figures.items()
                },
            }

    with tiny_app_in(folder) as app:
        return asyncio.run(answers(app.url))


def vars_of(figures: RouteFigures) -> dict[str, Any]:
    return {name: getattr(figures, name) for name in RouteFigures.__slots__}


class RecordedProbe:
    """The probe's recorded answers, read back with the view's own parsers (no network)."""

    def __init__(self, recorded: dict[str, Any]) -> None:
        self.recorded = recorded

    async def info(self) -> ProbeInfo:
        return info_of(self.recorded["info"])

    async def monitor(self, after: int) -> MonitorReading:
        data = dict(self.recorded["monitor"])
        data["stalls"] = [s for s in data["stalls"] if s["seq"] > after]
        return reading_of(data)

    async def tasks(self) -> dict[str, Any]:
        tasks: dict[str, Any] = self.recorded["tasks"]
        return tasks

    async def source(self, file: str, line: int, context: int = 8) -> SourceLines:
        return source_of(self.recorded["source"])

    async def openapi(self) -> dict[str, Any] | None:
        document: dict[str, Any] = self.recorded["openapi"]
        return document

    async def aclose(self) -> None:
        return None


def recorded() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(RECORDED.read_text())
    return data


def recorded_figures() -> dict[str, RouteFigures]:
    return {
        route: RouteFigures(**{**f, "statuses": {int(k): v for k, v in f["statuses"].items()}})
        for route, f in recorded()["figures"].items()
    }


def recorded_app() -> YourAppExplorer:
    target = ProbeTarget(url="http://127.0.0.1:8000", label="tinyapp")
    return YourAppExplorer(target, source=RecordedProbe(recorded()))


async def still(pilot: Pilot[Any]) -> None:
    """No focus (no blinking cursor), no toast, a moment to draw."""
    await pilot.pause(0.1)
    pilot.app.clear_notifications()
    pilot.app.set_focus(None)
    await pilot.pause(0.2)


async def after_a_run(pilot: Pilot[Any]) -> None:
    app = pilot.app
    assert isinstance(app, YourAppExplorer)
    await routes_listed(app)
    figures = recorded_figures()
    app.routes_view.figures.show(figures)
    app.routes_view.form.show_done("GET /block", figures["GET /block"])
    await still(pilot)


async def a_stall_picked(pilot: Pilot[Any]) -> None:
    app = pilot.app
    assert isinstance(app, YourAppExplorer)
    await routes_listed(app)
    table = app.stalls_view.table
    await eventually(lambda: table.row_count > 0)
    await pilot.press("2")
    # the worst stall with victims: the one a reader picks first
    worst = max((s for s in table.stalls if s.victims), key=lambda s: s.duration_ms)
    table.move_cursor(row=table.get_row_index(str(worst.seq)))
    table.focus()
    await pilot.press("enter")
    code = app.stalls_view.detail.code
    await eventually(lambda: code.virtual_size.height > 1)
    await still(pilot)


def test_the_recording_is_of_a_stall_with_victims() -> None:
    """The snapshots show what a real probe said: the sleep's line, the route, victims."""
    reading = reading_of(recorded()["monitor"])
    named = [s for s in reading.stalls if s.route == "GET /block" and s.victims]
    assert named
    culprit = culprit_of(named[-1])
    assert culprit is not None
    assert (culprit.path, culprit.line) == ("tinyapp.py", SLEEP_LINE)
    assert [r.label for r in routes_of(recorded()["openapi"])][:2] == ["GET /block", "GET /awaits"]


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_routes_after_a_run(snap_compare: Any, utc_clock: None, size: tuple[int, int]) -> None:
    assert snap_compare(recorded_app(), terminal_size=size, run_before=after_a_run)


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_a_stall_picked(snap_compare: Any, utc_clock: None, size: tuple[int, int]) -> None:
    assert snap_compare(recorded_app(), terminal_size=size, run_before=a_stall_picked)


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory(prefix="yourapp-") as folder:
        RECORDED.parent.mkdir(parents=True, exist_ok=True)
        RECORDED.write_text(json.dumps(record(Path(folder)), indent=1) + "\n")
    print(f"recorded {RECORDED}")


def test_the_views_own_openapi_request_is_told_apart_in_the_stall_detail() -> None:
    """FastAPI builds its schema on the first GET /openapi.json: a stall of the app's that
    the view itself set off (asking for the route list) says so; the same route asked by
    anyone else later, or another route meanwhile, does not."""
    asked = OwnRequest(OPENAPI_ROUTE, began=1000.0, ended=1000.2)

    def stall(route: str, at: float) -> Stall:
        return Stall(1, at, 27.0, "cpu", "server/main.py:3 in f", route)

    told = "the explorer's own request"
    assert told in summary_text(stall(OPENAPI_ROUTE, 1000.1), asked).plain
    assert told not in summary_text(stall(OPENAPI_ROUTE, 1005.0), asked).plain
    assert told not in summary_text(stall("GET /products", 1000.1), asked).plain
    assert told not in summary_text(stall(OPENAPI_ROUTE, 1000.1)).plain
