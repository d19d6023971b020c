"""Correctness pane: code that runs without error and is still wrong, next to its fix.

A ``TabbedContent`` of demo tabs, one line each in :data:`TABS`; the pane hands ``r``, the
lesson and the code view to the tab shown.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from textual import on
from textual.app import ComposeResult
from textual.widget import Widget
from textual.widgets import TabbedContent, TabPane

from explorer.code_source import SourceBlock
from explorer.context import ExplorerContext
from explorer.pane import LessonLine, PatternPane
from explorer.patterns.correctness.deadlock_tab import DeadlockTab
from explorer.patterns.correctness.guide_tab import GuideFixesTab
from explorer.patterns.correctness.tabs import MissingAwaitTab, RaceTab, SwallowTab
from fastasync_probe.monitor import Stall


class Tab(Protocol):
    """What the pane asks of a tab."""

    def action_run(self) -> None: ...
    def lesson_of(self, blocking: bool) -> LessonLine: ...
    def code_blocks(self) -> list[SourceBlock]: ...


#: the tabs, in order: title, id, and how to build it (a tab is one line here)
TABS: tuple[tuple[str, str, Callable[[ExplorerContext], Widget]], ...] = (
    ("Missing await", "tab-await", MissingAwaitTab),
    ("Race", "tab-race", RaceTab),
    ("Deadlock", "tab-deadlock", DeadlockTab),
    ("Swallowed", "tab-swallow", SwallowTab),
    ("Guide fixes", "tab-guide", GuideFixesTab),
)


class CorrectnessPane(
    PatternPane,
    slug="correctness",
    title="Correctness",
    summary="missing await, races, deadlocks, swallowed errors: wrong without an error",
):
    """Its tabs; each runs and shows itself."""

    DEFAULT_CSS = """
    CorrectnessPane TabbedContent { height: 1fr; }
    CorrectnessPane TabPane { padding: 0; }
    """

    def compose(self) -> ComposeResult:
        with TabbedContent(id="correctness-tabs"):
            for title, tab_id, build in TABS:
                with TabPane(title, id=tab_id):
                    yield build(self.context)

    @property
    def tab(self) -> Tab:
        """The tab shown."""
        tabs = self.query_one(TabbedContent)
        pane = tabs.get_pane(tabs.active) if tabs.active else tabs.query(TabPane).first()
        shown: Tab = pane.children[0]  # type: ignore[assignment]
        return shown

    @on(TabbedContent.TabActivated)
    def _tab_shown(self, event: TabbedContent.TabActivated) -> None:
        # Focus left in the tab just hidden would pull it back (a TabPane with a focused
        # descendant is activated): it moves to the first control of the tab shown.
        if event.tabbed_content.id != "correctness-tabs":
            return
        focused = self.screen.focused
        stray = focused is not None and any(
            isinstance(up, TabPane) and up is not event.pane for up in focused.ancestors
        )
        controls = event.pane.query("Select, Button")
        if stray and controls:
            controls.first().focus()

    def on_hide(self) -> None:
        """Another pane was opened: every tab ends what it left running (a tab without the
        hook has nothing that outlives a run)."""
        if getattr(self.app, "current_slug", None) == self.SLUG:
            return  # the code view covers the pane: it is still the pane in use
        for _, tab_id, _ in TABS:
            hook = getattr(self.query_one(f"#{tab_id}", TabPane).children[0], "pane_hidden", None)
            if hook is not None:
                hook()

    def action_run(self) -> None:
        self.tab.action_run()

    def lesson_of(self, blocking: bool) -> LessonLine:
        return self.tab.lesson_of(blocking)

    def code_blocks(self, stall: Stall | None = None) -> list[SourceBlock]:
        return self.tab.code_blocks()
