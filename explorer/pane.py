"""What every pattern pane provides to the shell."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.containers import Vertical
from textual.widgets import Input

from explorer.code_source import SourceBlock
from explorer.context import ExplorerContext
from server.monitor import Stall


class PatternPane(Vertical):
    """A pattern's live view. Subclasses set the class variables and the code blocks."""

    SLUG: ClassVar[str]
    TITLE: ClassVar[str]
    SUMMARY: ClassVar[str]

    DEFAULT_CSS = """
    PatternPane { padding: 0 1; }
    """

    def __init__(self, context: ExplorerContext) -> None:
        super().__init__(id=f"pane-{self.SLUG}")
        self.context = context
        self.border_title = self.TITLE

    def action_run(self) -> None:
        """The pane's main action (the ``r`` key)."""
        raise NotImplementedError

    @on(Input.Submitted)
    def _field_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.submit(event.input)

    def submit(self, field: Input) -> None:
        """Enter in one of the pane's fields: runs the pane, unless a pane maps it elsewhere."""
        self.action_run()

    def code_blocks(self, stall: Stall | None = None) -> list[SourceBlock]:
        """The server code that ran last and the pane's own client code, read from disk."""
        raise NotImplementedError
