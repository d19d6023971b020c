"""A log that follows its newest line without a scrollbar while it has nothing to scroll.

Textual's ``Log`` is ``overflow: scroll`` (an empty scrollbar track even when empty). With
``overflow-y: auto`` its own follow is lost: the scroll to the end that should happen when
the first line too many arrives is refused (the scrollbar does not exist yet), and a log
no longer at its end stops following for good. This one scrolls after the next refresh,
when the scrollbar is there, and only if it was at its end (a reader who scrolled up
stays where they are).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Self

from textual.widgets import Log


class FollowLog(Log):
    """A ``Log`` cut at its right edge, with a scrollbar only once it is needed."""

    DEFAULT_CSS = """
    FollowLog { overflow-x: hidden; overflow-y: auto; }
    """

    def write_lines(self, lines: Iterable[str], scroll_end: bool | None = None) -> Self:
        follow = self.auto_scroll if scroll_end is None else scroll_end
        at_end = self.is_vertical_scroll_end
        super().write_lines(lines, scroll_end=False)
        if follow and at_end and not self.is_vertical_scrollbar_grabbed:
            self.call_after_refresh(self.scroll_end, animate=False, x_axis=False)
        return self
