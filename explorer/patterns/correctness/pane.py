"""Correctness pane (scaffold, integrator: drop): a TabbedContent holding the guide fixes."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import TabbedContent, TabPane

from explorer.code_source import SourceBlock
from explorer.pane import LessonLine, PatternPane
from explorer.patterns.correctness.deadlock_tab import DeadlockTab
from explorer.patterns.correctness.guide_tab import GuideFixesTab
from server.monitor import Stall


class CorrectnessPane(
    PatternPane,
    slug="correctness",
    title="Correctness",
    summary="the guide's own snippets, corrected",
):
    """Its tabs; each runs and shows itself."""

    DEFAULT_CSS = """
    CorrectnessPane TabbedContent { height: 1fr; }
    CorrectnessPane TabPane { padding: 0; }
    """

    def compose(self) -> ComposeResult:
        with TabbedContent(id="correctness-tabs"):
            with TabPane("Deadlock", id="tab-deadlock"):
                yield DeadlockTab(self.context)
            with TabPane("Guide fixes", id="tab-guide"):
                yield GuideFixesTab(self.context)

    @property
    def tab(self) -> DeadlockTab | GuideFixesTab:
        active = self.query_one(TabbedContent).active_pane
        assert active is not None
        return active.query_one("DeadlockTab, GuideFixesTab")  # type: ignore[return-value]

    def action_run(self) -> None:
        self.tab.action_run()

    def lesson_of(self, blocking: bool) -> LessonLine:
        return self.tab.lesson_of(blocking)

    def code_blocks(self, stall: Stall | None = None) -> list[SourceBlock]:
        return self.tab.code_blocks()
