"""The Your app view: a user's app in another process, seen through the probe in it.

Everything comes over HTTP from the probe (``probe_client``), read by workers; widgets
only show records. The load driver runs here, against the app's real routes. There are no
blocking-mode controls: the code under the microscope is the user's own.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import parse_qsl

import httpx
from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.timer import Timer
from textual.widgets import Footer, Input, RichLog, TabbedContent, TabPane

from explorer.quitting import QuitSignals
from explorer.widgets.latency_bar import LatencyBar
from explorer.widgets.task_inspector import TaskInspector, TaskSummary
from explorer.widgets.too_small import TooSmall
from explorer.yourapp.load_driver import LoadSpec, RouteFigures, drive
from explorer.yourapp.log_tail import LogTail
from explorer.yourapp.loops import poll_monitor, tail_log
from explorer.yourapp.probe_client import ProbeClient, ProbeSource
from explorer.yourapp.probe_records import MonitorReading, ProbeError, culprit_of
from explorer.yourapp.routes import routes_of
from explorer.yourapp.target import ProbeTarget
from explorer.yourapp.views import RoutesView, StallsView
from explorer.yourapp.widgets.header import AppHeader
from explorer.yourapp.widgets.load_form import LoadForm, LoadRequest
from explorer.yourapp.widgets.stall_detail import OPENAPI_ROUTE, OwnRequest
from explorer.yourapp.widgets.stall_table import StallTable
from fastasync_probe import PREFIX, PROTOCOL
from fastasync_probe.monitor import Stall

#: the Tasks tab refreshes this often, and only while it is shown
TASKS_HZ = 1.0
#: the log pane keeps this many lines
LOG_LINES = 1000
#: the log file is looked at this often
LOG_EVERY_S = 0.25


class YourAppExplorer(App[int]):
    """Routes and a load driver, the latency bar, stalls and tasks of the app at ``target``."""

    TITLE = "fastasync-explorer: your app"
    #: Screen.-tall / Screen.-wide below: more stall rows and a wider stack when there is room
    VERTICAL_BREAKPOINTS = [(0, "-short"), (40, "-tall")]  # noqa: RUF012 (Textual's form)
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (130, "-wide")]  # noqa: RUF012
    CSS = """
    Screen { layers: base notice; }
    #tabs { height: 1fr; }
    #tabs ContentTabs { height: 1; }
    #tabs Underline { display: none; }
    #tabs Tab.-active { color: $text; text-style: bold reverse; }
    #tabs TabPane { padding: 0; }
    #log-view { height: 1fr; }
    Screen.-tall StallsView StallTable { height: 40%; }
    Screen.-wide StallDetail > VerticalScroll { width: 64; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("1", "show_tab('routes')", "Routes"),
        Binding("2", "show_tab('stalls')", "Stalls"),
        Binding("3", "show_tab('tasks')", "Tasks"),
        Binding("4", "show_tab('log')", "Log"),
        Binding("r", "run", "Run load"),
        Binding("escape", "leave", "Back", show=False),
        Binding("q", "quit", "Quit"),
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True),
    ]

    def __init__(self, target: ProbeTarget, *, source: ProbeSource | None = None) -> None:
        super().__init__()
        self.target = target
        self.source: ProbeSource = source or ProbeClient(target)
        # made in compose: widgets with inputs need the running app
        self.routes_view: RoutesView
        self.stalls_view: StallsView
        self.latency_bar: LatencyBar
        self.header: AppHeader
        self._log_view: RichLog
        self._tasks_timer: Timer | None = None
        self._quit_signals = QuitSignals(self._quit_on_signal)
        self._closed = False
        #: figures of the last load run, by route (the table shows them)
        self.figures: dict[str, RouteFigures] = {}
        #: snapshots the Tasks tab has taken (none while it is hidden)
        self.tasks_taken = 0

    # -- layout --------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        self.routes_view = RoutesView(id="routes-view")
        self.stalls_view = StallsView(id="stalls-view")
        self.latency_bar = LatencyBar()
        self.header = AppHeader()
        self._log_view = RichLog(max_lines=LOG_LINES, wrap=True, markup=False, id="log-view")
        yield TooSmall()
        yield self.header
        yield self.latency_bar
        with TabbedContent(id="tabs"):
            with TabPane("Routes", id="routes"):
                yield self.routes_view
            with TabPane("Stalls", id="stalls"):
                yield self.stalls_view
            with TabPane("Tasks", id="tasks"):
                yield TaskSummary("no snapshot yet", id="task-summary")
                yield TaskInspector(id="task-inspector")
            if self.target.log_path is not None:
                with TabPane("Log", id="log"):
                    yield self._log_view
        yield Footer()

    def on_resize(self) -> None:
        self.query_one(TooSmall).show_for(self.size)

    def on_mount(self) -> None:
        self.query_one(TooSmall).show_for(self.size)
        self._quit_signals.install()
        self.header.label = self.target.label
        self.header.url = self.target.url
        self._tasks_timer = self.set_interval(1.0 / TASKS_HZ, self._refresh_tasks, pause=True)
        self.run_worker(self._start(), name="probe-start", group="probe")
        if self.target.log_path is not None:
            tail = LogTail(self.target.log_path)
            self.run_worker(tail_log(tail, self._log_lines, LOG_EVERY_S), name="log-tail")
        self.call_after_refresh(self.routes_view.route_list.focus)

    async def _start(self) -> None:
        """Who the probe is, the app's routes, then the monitor at 4 Hz for good."""
        while not self._closed:
            try:
                info = await self.source.info()
            except ProbeError as exc:
                self._probe_problem(str(exc))
                await asyncio.sleep(1.0)
                continue
            self.header.info = info
            if info.protocol != PROTOCOL:
                # the CLI refuses such a probe before the view opens; said here for any other
                self.header.problem = (
                    f"the probe speaks protocol {info.protocol}, this explorer {PROTOCOL}: "
                    "install the same fastasync-explorer version in both"
                )
                return
            break
        asked_at = time.time()
        try:
            document = await self.source.openapi()
        except ProbeError:
            document = None
        # FastAPI builds the schema on the first GET /openapi.json: a stall of the app's,
        # set off by this view. The stall detail says so, as it is no request of the user's.
        self.stalls_view.detail.explorer_asked = OwnRequest(OPENAPI_ROUTE, asked_at, time.time())
        self.routes_view.show_routes(routes_of(document))
        await poll_monitor(self.source, self._reading, self._probe_problem)

    # -- live figures ----------------------------------------------------------------------

    def _reading(self, reading: MonitorReading) -> None:
        self.latency_bar.snapshot = reading.snapshot()
        self.header.in_flight = reading.in_flight
        if reading.stalls:
            self.stalls_view.table.add_stalls(reading.stalls)

    def _probe_problem(self, problem: str | None) -> None:
        """One line in the header while the probe does not answer; the UI goes on."""
        if problem is None:
            self.header.problem = ""
            return
        hint = " (see the log: 4)" if self.target.log_path is not None else ""
        self.header.problem = f"the app is not answering: {problem}{hint}"

    def _log_lines(self, lines: list[str]) -> None:
        # held, not queried: lines can still arrive while the app tears its widgets down
        log_view = self._log_view
        if not log_view.is_attached:
            return
        for line in lines:
            # the access log's lines for this view's own reads of the probe (4 a second)
            # would bury the app's output
            if PREFIX not in line:
                log_view.write(Text(line))

    # -- tabs ------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """No Log key (in the footer either) for an app the explorer did not start."""
        if action == "show_tab" and parameters == ("log",):
            return self.target.log_path is not None
        return True

    def action_show_tab(self, tab: str) -> None:
        tabs = self.query_one("#tabs", TabbedContent)
        tabs.active = tab
        focus = {
            "routes": self.routes_view.route_list,
            "stalls": self.stalls_view.table,
            "tasks": self.query_one(TaskInspector),
        }.get(tab)
        if focus is not None:
            self.call_after_refresh(focus.focus)

    @on(TabbedContent.TabActivated, "#tabs")
    def _tab_shown(self, event: TabbedContent.TabActivated) -> None:
        """The Tasks tab reads snapshots only while it is the one shown."""
        if self._tasks_timer is None:
            return
        if event.pane.id == "tasks":
            self._refresh_tasks()
            self._tasks_timer.resume()
        else:
            self._tasks_timer.pause()

    def _refresh_tasks(self) -> None:
        self._read_tasks()

    @work(exclusive=True, group="tasks")
    async def _read_tasks(self) -> None:
        try:
            snapshot = await self.source.tasks()
        except ProbeError as exc:
            self.query_one(TaskSummary).update(f"no snapshot: {exc}", layout=False)
            return
        inspector = self.query_one(TaskInspector)
        if inspector.is_attached:
            self.tasks_taken += 1
            inspector.show(snapshot)
            self.query_one(TaskSummary).update(tasks_summary(snapshot), layout=False)

    # -- load ------------------------------------------------------------------------------

    def action_run(self) -> None:
        """``r``: run load with the form as it is."""
        self.query_one("#tabs", TabbedContent).active = "routes"
        self.routes_view.form.ask()

    @on(LoadForm.RunRequested)
    def _run_requested(self, event: LoadForm.RunRequested) -> None:
        # out of the field: the keys (2 for the stalls, q) are the app's again during the run
        self.routes_view.figures.focus()
        self._drive(event.request)

    @work(exclusive=True, group="load")
    async def _drive(self, request: LoadRequest) -> None:
        form = self.routes_view.form
        spec = LoadSpec(
            method=request.method,
            path=request.path,
            query=dict(parse_qsl(request.query)),
            json_body=request.json_body,
            concurrency=request.concurrency,
            duration_s=request.duration_s,
        )
        started = asyncio.get_running_loop().time()

        def progress(figures: Mapping[str, RouteFigures]) -> None:
            self.figures.update(figures)
            self.routes_view.figures.show(figures)
            elapsed = asyncio.get_running_loop().time() - started
            form.show_progress(spec.route, elapsed, request.duration_s, figures.get(spec.route))

        form.running = True
        try:
            async with httpx.AsyncClient(
                base_url=self.target.url, timeout=10.0, trust_env=False
            ) as client:
                await drive(client, [spec], on_progress=progress)
        finally:
            form.running = False
        form.show_done(spec.route, self.figures.get(spec.route))

    # -- stalls ----------------------------------------------------------------------------

    @on(StallTable.Picked)
    def _stall_picked(self, event: StallTable.Picked) -> None:
        self.stalls_view.detail.stall = event.stall
        self._read_source(event.stall)

    @work(exclusive=True, group="source")
    async def _read_source(self, stall: Stall) -> None:
        detail = self.stalls_view.detail
        culprit = culprit_of(stall)
        if culprit is None:
            detail.show_no_source(stall, "no frame of your code was sampled in this stall")
            return
        try:
            # as many lines around it as the code panel shows (the probe sends up to 40)
            context = max(8, min(40, detail.code.size.height // 2))
            source = await self.source.source(culprit.file, culprit.line, context)
        except ProbeError as exc:
            detail.show_no_source(stall, str(exc))
            return
        detail.show_source(stall, source)

    # -- keys ------------------------------------------------------------------------------

    def action_leave(self) -> None:
        """Escape: out of a field back to the route list, out of a stall's code back to
        the table."""
        focused = self.screen.focused
        if isinstance(focused, Input):
            self.routes_view.route_list.focus()
        elif focused is not None and self.stalls_view.detail in focused.ancestors:
            self.stalls_view.table.focus()

    def _quit_on_signal(self, sig: signal.Signals) -> None:
        self.call_next(self.action_quit)

    async def action_quit(self) -> None:
        """Stop reading the probe (the app itself goes on, or its host stops it), leave."""
        await self._close()
        self.exit(return_code=0)

    async def _close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._tasks_timer is not None:
            self._tasks_timer.stop()
        self.workers.cancel_all()
        await self.source.aclose()
        self._quit_signals.remove()

    async def on_unmount(self) -> None:
        await self._close()


def tasks_summary(snapshot: dict[str, Any]) -> Text:
    """``12 tasks on the app's loop``, each deadlock, failures never retrieved, the cost."""
    text = Text(f"{snapshot['counts']['total']} tasks on the app's loop")
    for cycle in snapshot["cycles"]:
        locks = ", ".join(cycle["locks"]) or "tasks"
        text.append(f"  DEADLOCK: {' ⇄ '.join(cycle['tasks'])} over {locks}", style="bold red")
    if snapshot["never_retrieved"]:
        failures = len(snapshot["never_retrieved"])
        text.append(f"  {failures} exception(s) never retrieved", style="yellow")
    text.append(f"  snapshot {snapshot['cost_ms']:.1f} ms", style="dim")
    return text


def run_your_app(target: ProbeTarget) -> int:
    """Open the Your app view on ``target`` until the user quits: its exit code.

    The app's process is not this function's: ``run`` stops the child it started after
    this returns, ``attach`` leaves the app running.
    """
    return YourAppExplorer(target).run() or 0
