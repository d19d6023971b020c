"""The WebSocket pane's frame log: wraps long frames and follows the tail while at the bottom.

A plain ``Log`` follows new lines only while its scroll position is at the end, and that is
checked at each write. Switching the pane's tab changes the log's height: when it gets
shorter the end moves down, the position stays, and from then on it no longer counts as
"at the end": new lines land below the visible area (the Auth buttons looked dead).
This log remembers instead whether the reader was following, changes that only when the
reader scrolls, and scrolls to the end after a write or a resize while following. A reader
who scrolled up keeps their place.
"""

from __future__ import annotations

from collections import deque

from rich.text import Text
from textual.events import Resize
from textual.widgets import RichLog

#: lines kept (the log is bounded: the bots can log for hours)
MAX_LINES = 500


class FramesLog(RichLog):
    """Frames sent and received, one line each (wrapped), newest at the bottom."""

    DEFAULT_CSS = """
    FramesLog { height: 1fr; border: round $primary 40%; overflow-x: hidden; overflow-y: auto; }
    """

    def __init__(self, *, id: str | None = None, max_lines: int = MAX_LINES) -> None:
        super().__init__(
            id=id, max_lines=max_lines, wrap=True, markup=False, highlight=False, min_width=20
        )
        #: the lines as written (tests and the pane read these; ``lines`` are wrapped strips)
        self.texts: deque[str] = deque(maxlen=max_lines)
        #: the reader is at the bottom: keep the newest line in view
        self.following = True

    def write_line(self, line: str) -> None:
        """Add ``line``; scroll to it if the reader is following."""
        self.texts.append(line)
        # RichLog scrolls after the next refresh, once a scrollbar that this line may
        # bring has taken its columns (an immediate scroll would stop a row short).
        self.write(Text(line), scroll_end=self.following)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        # Scrolled by the reader (or to the end by us): following while at the bottom.
        self.following = new_value >= self.max_scroll_y

    def on_resize(self, event: Resize) -> None:
        # (RichLog's own on_resize runs too: Textual calls each class's handler.)
        if self.following:
            # A new height (another tab of the pane): the end moved, follow it.
            self.call_after_refresh(self.scroll_end, animate=False, x_axis=False)
