"""A notice that covers the screen while the terminal is too small to lay the explorer out."""

from __future__ import annotations

from textual.geometry import Size
from textual.widgets import Static

#: Below this the panes' controls, timeline and code view no longer fit beside the menu.
MIN_SIZE = Size(100, 30)


class TooSmall(Static):
    """Shown over everything (its own layer) until the terminal is large enough again.

    The server keeps running meanwhile; only the drawing is replaced.
    """

    DEFAULT_CSS = """
    TooSmall {
        layer: notice;
        dock: top;
        width: 100%;
        height: 100%;
        content-align: center middle;
        text-align: center;
        background: $background;
        color: $warning;
        display: none;
    }
    """

    def show_for(self, size: Size) -> None:
        """Cover the screen if ``size`` is under :data:`MIN_SIZE`, uncover it otherwise."""
        too_small = size.width < MIN_SIZE.width or size.height < MIN_SIZE.height
        if too_small:
            self.update(
                f"The terminal is {size.width}×{size.height}; fastasync-explorer needs at "
                f"least {MIN_SIZE.width}×{MIN_SIZE.height}.\n"
                "Enlarge the window (the server keeps running), or press q to quit."
            )
        self.display = too_small
