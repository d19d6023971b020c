"""A line of live figures that repaints only when what it says has changed.

A pane's refresh timer rebuilds its figures a few times a second; most of the time they are
the same as before, and every repaint is time the shared loop does not serve requests. So
the text is compared (characters and styles) and only a different one is drawn, without a
layout pass (the widget's height is fixed by its pane's CSS).
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


class LiveText(Static):
    """Figures redrawn by a timer: ``show`` repaints only a changed text."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._shown = Text()

    def show(self, text: Text) -> None:
        """Say ``text``, unless it is what is shown already."""
        if (text.plain, text.spans) != (self._shown.plain, self._shown.spans):
            self._shown = text
            self.update(text, layout=False)

    @property
    def shown(self) -> str:
        """What is displayed (plain text)."""
        return self._shown.plain
