"""The explorer shell: panes, latency bar, stall inspector, code view and log, on one loop."""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import httpx
from rich.text import Text
from textual import events
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import (
    ContentSwitcher,
    Footer,
    Input,
    OptionList,
    RichLog,
    TabbedContent,
)

from explorer.code_source import source_around
from explorer.context import ExplorerContext, MonitorSource, counting_explorer_code, ui_client
from explorer.log_sink import QueueingLogHandler, RootLogCapture
from explorer.pane import PatternPane
from explorer.pane_frame import first_control, mark_blocking
from explorer.quitting import QuitSignals, let_log_threads_finish
from explorer.registry import PANES, explorer_commands, nav_options, pane_bindings
from explorer.stall_feed import StallFeed, StallToasts
from explorer.task_feed import TaskFeed, TaskSource, bottom_tabs, mend_focus
from explorer.widgets.code_view import CodeView
from explorer.widgets.latency_bar import LatencyBar
from explorer.widgets.stall_inspector import StallInspector
from explorer.widgets.task_inspector import TaskInspector
from explorer.widgets.too_small import TooSmall
from explorer.widgets.top_bar import TopBar
from explorer.wording import blocking_notice
from fastasync_probe.monitor import Stall
from server.blocking import BlockingSwitch
from server.heap import keep_out_of_collections, settle_heap
from server.runner import ServerError, ServerHandle
from server.settings import Settings
from server.state import state_of

#: how often gauges, the stall list and the log pane refresh (every redraw is loop time)
GAUGE_HZ = 4.0
#: at most one stall toast this often; the stall inspector has every one
TOAST_EVERY_S = 3.0


class ExplorerApp(App[int]):
    """Runs the FastAPI app on this very loop and shows what it does to the loop."""

    TITLE = "fastasync-explorer"
    CSS_PATH = "app.tcss"
    #: Screen.-short / Screen.-tall in app.tcss: the stall table takes fewer rows on a
    #: short terminal, so the pane keeps room for its controls and its result
    VERTICAL_BREAKPOINTS = [(0, "-short"), (40, "-tall")]  # noqa: RUF012 (Textual's form)

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "run", "Run"),
        Binding("b", "toggle_blocking", "Blocking mode"),
        Binding("c", "toggle_code", "Code"),
        Binding("s", "show_stalls", "Stalls"),
        Binding("l", "show_tab('log')", "Log"),
        Binding("t", "show_tab('tasks')", "Tasks"),
        Binding("escape", "leave", "Back", show=False),
        Binding("q", "quit", "Quit"),
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True),
        *pane_bindings(),
    ]

    blocking: reactive[bool] = reactive(False)
    current_slug: reactive[str] = reactive(PANES[0].SLUG)
    showing_code: reactive[bool] = reactive(False)

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        monitor_source: MonitorSource | None = None,
        gauge_hz: float = GAUGE_HZ,
        task_source: TaskSource | None = None,
    ) -> None:
        super().__init__()
        self.settings = counting_explorer_code(settings or Settings())
        self.server = ServerHandle(self.settings)
        self.blocking_switch: BlockingSwitch = state_of(self.server.app).blocking
        self._monitor_override = monitor_source
        self._tasks = TaskFeed(task_source)
        self._gauge_hz = gauge_hz
        self._log_handler = QueueingLogHandler()
        self._log_capture = RootLogCapture(self._log_handler)
        self._http: httpx.AsyncClient | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._stalls = StallFeed()
        self._toasts = StallToasts(TOAST_EVERY_S)
        self._stopped = False
        self._quit_signals = QuitSignals(self._quit_on_signal)
        self._server_lost = False
        self._panes_ready = False
        self._gauge_timer: Timer | None = None
        self._gauges: tuple[LatencyBar, StallInspector, RichLog, TopBar] | None = None
        self.context: ExplorerContext | None = None
        self._settled: set[str] = {PANES[0].SLUG}  # the first pane settles with start-up

    # -- layout --------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield TooSmall()
        yield TopBar()
        with Horizontal(id="body"):
            yield OptionList(*nav_options(), id="nav")
            yield ContentSwitcher(id="main")
        yield from bottom_tabs()
        yield LatencyBar()
        yield Footer()

    def on_resize(self, event: events.Resize) -> None:
        self.query_one(TooSmall).show_for(event.size)

    async def on_mount(self) -> None:
        self.query_one("#nav", OptionList).border_title = "patterns"
        self.query_one(TooSmall).show_for(self.size)
        self._quit_signals.install()
        self._log_capture.install()
        try:
            await self.server.start()
        except ServerError as exc:
            self._log_capture.uninstall()
            self._quit_signals.remove()
            self._stopped = True
            self.exit(return_code=2, message=f"fastasync-explorer: {exc}")
            return
        monitor: MonitorSource = self._monitor_override or state_of(self.server.app).monitor
        self._http = ui_client(self.server.url)
        self.context = ExplorerContext(
            http=self._http,
            monitor=monitor,
            blocking=self.blocking_switch,
            stall_settle_s=max(0.01, self._watchdog_poll_s() * 5),
            redis_url=self.settings.redis_url,
        )
        self._tasks.attach(self, state_of(self.server.app).monitor.tasks)
        top = self.query_one(TopBar)
        top.url = self.server.url
        if not self.settings.is_loopback:
            top.warning = f"⚠ listening on {self.settings.host}: reachable from other machines"
            self.notify(top.warning, severity="warning", timeout=10)
        self.blocking = self.blocking_switch.enabled
        self._unsubscribe = self.blocking_switch.subscribe(self._on_blocking_changed)
        switcher = self.query_one("#main", ContentSwitcher)
        panes = [pane(self.context) for pane in PANES]
        for pane in panes:
            # ContentSwitcher hides only what it switches away from: start them hidden.
            pane.display = self.current_slug == pane.SLUG
        await switcher.mount_all(panes)
        code_view = CodeView(id="code")
        code_view.display = False
        await switcher.mount(code_view)
        switcher.current = f"pane-{self.current_slug}"
        self._panes_ready = True
        self.call_after_refresh(self._startup_done, monitor)

    def _startup_done(self, monitor: MonitorSource) -> None:
        settle_heap()
        # start-up (imports, first layout) is no lesson: the figures count from here
        self._stalls.count_from_here(monitor.snapshot())
        # Found once: the gauge timer runs 4 times a second, and every query walks the DOM.
        self._gauges = (
            self.query_one(LatencyBar),
            self.query_one(StallInspector),
            self.query_one("#log-view", RichLog),
            self.query_one(TopBar),
        )
        self._gauge_timer = self.set_interval(1.0 / self._gauge_hz, self.refresh_gauges)
        self.refresh_gauges()

    def _watchdog_poll_s(self) -> float:
        return self.settings.monitor.watchdog_poll_s

    # -- live figures ----------------------------------------------------------------------

    def refresh_gauges(self) -> None:
        """Read the monitor in-process (no I/O) and hand the figures to the widgets."""
        gauges = self._gauges
        if self.context is None or self._stopped or gauges is None:
            return
        # The widgets are held, not queried: this timer can still fire while the app tears
        # them down (before on_unmount stops it), and updating a removed widget is harmless.
        latency_bar, inspector, log_view, top_bar = gauges
        self._mend_focus()
        latency_bar.snapshot, new = self._stalls.take(self.context.monitor.snapshot())
        if new:
            inspector.add_stalls(new)
            # One toast per refresh, for stalls a request caused; the rest are in the table.
            toast = self._toasts.toast_for(new)
            if toast is not None:
                self.notify(toast.message, title=toast.title, severity="warning", timeout=4)
        # Except the Log: each write starts a thread that reports back to the app, and one
        # started during teardown outlives it (NoActiveAppError). Lines wait in the queue.
        if log_view.is_attached:
            for line in self._log_handler.drain():
                log_view.write(Text(line))
        if not self.server.running and not self._server_lost:
            self._server_lost = True
            top_bar.warning = "⚠ the server stopped: see the log (l)"
            self.notify(top_bar.warning, severity="error", timeout=10)

    def _mend_focus(self) -> None:
        """Never leave focus on a widget that is gone (``q`` must always quit)."""
        mend_focus(self, lambda: self._focus_main(self.showing_code))

    # -- blocking mode ---------------------------------------------------------------------

    def _on_blocking_changed(self, enabled: bool) -> None:
        self.blocking = enabled

    def watch_blocking(self, blocking: bool) -> None:
        self.query_one(TopBar).blocking = blocking
        self._mark_blocking(self.current_pane())

    def _mark_blocking(self, pane: PatternPane | None) -> None:
        """The error colour around the visible pane while blocking mode is on."""
        error = self.current_theme.error or "red"
        mark_blocking(self.query(PatternPane), pane if self.blocking else None, error)

    def action_toggle_blocking(self) -> None:
        """Same switch as ``PUT /monitor/blocking``."""
        message, title, severity = blocking_notice(self.blocking_switch.toggle())
        self.notify(message, title=title, severity=severity)

    # -- navigation ------------------------------------------------------------------------

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            self.current_slug = event.option.id
            self.showing_code = False

    def action_open_pane(self, index: int) -> None:
        if 0 <= index < len(PANES):
            self.current_slug = PANES[index].SLUG
            self.showing_code = False

    def watch_current_slug(self, slug: str) -> None:
        if self._panes_ready:
            self.query_one("#main", ContentSwitcher).current = f"pane-{slug}"
            self._mark_blocking(self.current_pane())
            # keys and clicks both land here: keep the list's highlight in step
            nav = self.query_one("#nav", OptionList)
            nav.highlighted = nav.get_option_index(slug)
            # Focus moves with the pane: left in the hidden one (or passed by Textual to the
            # next widget of it), it would take the app's keys as text (q typed into a field).
            if not self.showing_code and not nav.has_focus:
                self.call_after_refresh(self._focus_main, False)
            if slug not in self._settled:
                # A pane's first showing builds what lives as long as the app (its widgets,
                # styles, caches): out of the collector's way once it is drawn.
                self._settled.add(slug)
                self.set_timer(1.0, keep_out_of_collections)

    def current_pane(self) -> PatternPane | None:
        panes = self.query(PatternPane).filter(f"#pane-{self.current_slug}")
        return panes.first() if panes else None

    def action_run(self) -> None:
        """The current pane's main action."""
        pane = self.current_pane()
        if pane is not None:
            self.showing_code = False
            pane.action_run()

    def action_show_tab(self, tab: str) -> None:
        self.showing_code = False
        self.query_one("#bottom", TabbedContent).active = tab
        if tab == "tasks":
            self.call_after_refresh(self.query_one(TaskInspector).focus)

    def on_tabbed_content_tab_activated(self, _: object = None) -> None:
        """The Tasks tab takes snapshots only while it is the one shown."""
        active = self.query_one("#bottom", TabbedContent).active
        self._tasks.follow(active == "tasks" and not self.showing_code)

    def action_show_stalls(self) -> None:
        """The stall inspector, focused on its newest row: Enter opens that stall's code."""
        self.action_show_tab("stalls")
        self.call_after_refresh(self.query_one(StallInspector).focus_newest)

    def action_leave(self) -> None:
        """Escape: out of the code view, or out of a field back to the pane's controls."""
        if self.showing_code:
            self.showing_code = False
        elif isinstance(self.screen.focused, Input):
            self._focus_main(False)

    # -- code view -------------------------------------------------------------------------

    def action_toggle_code(self) -> None:
        """Show the handler that ran beside the pane's own code (or go back)."""
        if self.showing_code:
            self.showing_code = False
            return
        pane = self.current_pane()
        if pane is not None:
            self.query_one(CodeView).blocks = tuple(pane.code_blocks())
            self.showing_code = True

    def on_stall_inspector_selected(self, message: StallInspector.Selected) -> None:
        self.show_stall_code(message.stall)

    def show_stall_code(self, stall: Stall) -> None:
        """The code around the line a stall blamed."""
        if stall.filename is None or stall.lineno is None:
            self.notify("That stall ended before the watchdog could sample it.")
            return
        title = f"stall #{stall.seq}: {stall.duration_ms:.1f} ms ({stall.kind})"
        self.show_code_at(stall.filename, stall.lineno, title)

    def on_task_inspector_selected(self, message: TaskInspector.Selected) -> None:
        """The code where the task picked is suspended."""
        row, where = message.row, message.row["where"]
        if where is None:
            self.notify(f"{row['name']} is not suspended in any code ({row['state']}).")
            return
        title = f"task {row['name']}: {row['waits_on']['kind']} {row['waits_on']['detail']}"
        self.show_code_at(where["file"], where["line"], title)

    def show_code_at(self, filename: str, lineno: int, title: str) -> None:
        """The code view on the function around ``filename:lineno``."""
        self.query_one(CodeView).blocks = (source_around(filename, lineno, title),)
        self.showing_code = True

    def watch_showing_code(self, showing: bool) -> None:
        if not self._panes_ready:
            return
        switcher = self.query_one("#main", ContentSwitcher)
        switcher.current = "code" if showing else f"pane-{self.current_slug}"
        # The code gets the whole width and height: lines are read whole, not cut.
        self.query_one("#nav").display = not showing
        self.query_one("#bottom").display = not showing
        self.on_tabbed_content_tab_activated()
        # Focus follows the view: left on a hidden input, it would swallow the keys.
        self.call_after_refresh(self._focus_main, showing)

    def _focus_main(self, showing_code: bool) -> None:
        if showing_code:
            self.query_one(CodeView).focus_first()
        else:
            self.set_focus(first_control(self.current_pane()))

    # -- command palette -------------------------------------------------------------------

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield from explorer_commands(
            self.action_toggle_blocking, self.action_toggle_code, self.action_open_pane
        )

    # -- shutdown --------------------------------------------------------------------------

    def _quit_on_signal(self, sig: signal.Signals) -> None:
        logging.getLogger("fastasync.explorer").info("%s received: quitting", sig.name)
        self.call_next(self.action_quit)

    async def action_quit(self) -> None:
        """Stop the server gracefully (bounded), then leave."""
        self.notify("Stopping the server…", timeout=3)
        await self.stop_server()
        self.exit(return_code=0)

    async def stop_server(self) -> None:
        """Cancel pane workers, close the client and the server; idempotent."""
        if self._stopped:
            return
        self._stopped = True
        if self._gauge_timer is not None:
            self._gauge_timer.stop()
        self._tasks.stop()
        await let_log_threads_finish(self)
        self.workers.cancel_all()
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._http is not None:
            await self._http.aclose()
        try:
            await self.server.stop()
        finally:
            self._log_capture.uninstall()
            self._quit_signals.remove()

    async def on_unmount(self) -> None:
        # Any other way out (an exception, the driver closing) still stops the server.
        await self.stop_server()
