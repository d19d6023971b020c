"""Feeds the Tasks tab: a task-book snapshot once a second, only while the tab is visible.

A snapshot walks every task's await chain on the shared loop (about a millisecond for a
few hundred tasks, measured in ``cost_ms``). Hidden, the tab costs nothing: the timer is
paused and no snapshot is taken (``tests/test_task_inspector.py`` counts them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.app import App, ComposeResult, ScreenStackError
from textual.timer import Timer
from textual.widgets import RichLog, TabbedContent, TabPane

from explorer.widgets.stall_inspector import StallInspector
from explorer.widgets.task_inspector import TaskInspector, TaskSummary
from fastasync_probe.monitor import TaskBook

#: how often the visible tab refreshes
TASKS_HZ = 1.0
#: the rows the tab lists, gravest first (its table is a few rows tall; the summary line counts
#: them all): a table of hundreds of rows rebuilt each second under load cost 15 % of throughput
UI_LIMIT = 100
#: Textual's own tasks, one or two per widget: counted, their await chains not read
UI_COROUTINES = frozenset({"MessagePump._process_messages", "Timer._run_timer"})

TaskSource = Callable[[], dict[str, Any]]


class TaskFeed:
    """Takes snapshots from ``source`` at ``hz`` while shown, and hands them to the widgets."""

    def __init__(self, source: TaskSource | None = None, hz: float = TASKS_HZ) -> None:
        #: where snapshots come from (None until :meth:`attach` names the live book)
        self.source = source
        self.hz = hz
        #: snapshots taken so far (a test checks none is taken while hidden)
        self.taken = 0
        self._timer: Timer | None = None
        self._widgets: tuple[TaskInspector, TaskSummary] | None = None
        self.visible = False

    def attach(self, app: App[Any], book: TaskBook) -> None:
        """Bind the app's widgets and the live ``book`` (unless a source was given); the
        timer starts paused."""
        book.host_coroutines = UI_COROUTINES  # GET /monitor/tasks folds them too
        self.source = self.source or (lambda: book.snapshot(limit=UI_LIMIT, fold=UI_COROUTINES))
        self._widgets = (app.query_one(TaskInspector), app.query_one(TaskSummary))
        self._timer = app.set_interval(1.0 / self.hz, self.refresh, pause=True)

    def follow(self, shown: bool) -> None:
        """Show or hide, as the tab is."""
        if shown:
            self.show()
        else:
            self.hide()

    def show(self) -> None:
        """The tab is visible: refresh now, then at ``hz``."""
        if self.visible or self._timer is None:
            return
        self.visible = True
        self.refresh()
        self._timer.resume()

    def hide(self) -> None:
        """The tab is hidden: no more snapshots until it is shown again."""
        self.visible = False
        if self._timer is not None:
            self._timer.pause()

    def stop(self) -> None:
        """For good (the app is quitting)."""
        self.hide()
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

    def refresh(self) -> None:
        """One snapshot, shown."""
        if not self.visible or self._widgets is None or self.source is None:
            return
        inspector, summary = self._widgets
        if not inspector.is_attached:
            return
        self.taken += 1
        summary.update(inspector.show(self.source()), layout=False)


def bottom_tabs() -> ComposeResult:
    """The shell's bottom tabs: the stall inspector, the log and the task inspector."""
    with TabbedContent(id="bottom"):
        with TabPane("Stalls", id="stalls"):
            yield StallInspector(id="stall-inspector")
        with TabPane("Log", id="log"):
            # wrapped, not cut at the edge; bounded
            yield RichLog(max_lines=1000, wrap=True, markup=False, id="log-view")
        with TabPane("Tasks", id="tasks"):
            yield TaskSummary("no snapshot yet", id="task-summary")
            yield TaskInspector(id="task-inspector")


def mend_focus(app: App[Any], refocus: Callable[[], None]) -> None:
    """Never leave focus on a widget that is gone.

    Keys go to the focused widget and its ancestors' bindings; a removed widget has no
    ancestors, so every key, ``q`` included, would reach nothing and the UI would look
    frozen. Whatever put it there, focus moves back to the visible view (``refocus``).
    Nothing to mend once the app's screens are gone (a timer can tick during teardown).
    """
    try:
        screen = app.screen
    except ScreenStackError:
        return
    focused = screen.focused
    if focused is not None and not focused.is_attached:
        screen.set_focus(None)
        refocus()
