"""How the shell frames the visible pane: its border in blocking mode, where focus lands."""

from __future__ import annotations

from collections.abc import Iterable

from textual.widget import Widget

from explorer.pane import PatternPane


def mark_blocking(panes: Iterable[PatternPane], shown: PatternPane | None, color: str) -> None:
    """A ``color`` border on ``shown`` (None: on no pane), and none on the others.

    An inline style on the pane alone: a CSS class restyles the whole subtree, which cost
    the loop ~20 ms per toggle.
    """
    for pane in panes:
        if pane is shown:
            pane.styles.border = ("round", color)
        elif pane.styles.inline.has_rule("border_top"):
            pane.styles.clear_rule("border")


def first_control(pane: PatternPane | None) -> Widget | None:
    """Where focus goes in ``pane``: not a text field first, or it would take the digits,
    ``b``, ``r`` and ``q`` as text; a field only when the pane has nothing else."""
    if pane is None:
        return None
    for kinds in ("RadioSet, Select, Button", "Input"):
        # skip what a hidden part of the pane holds (a tab not shown): focused, it would
        # be shown instead (a TabPane with a focused descendant is activated)
        shown = [widget for widget in pane.query(kinds) if _shown_within(widget, pane)]
        if shown:
            return shown[0]
    return None


def _shown_within(widget: Widget, pane: PatternPane) -> bool:
    """Whether ``widget`` and its ancestors below ``pane`` are displayed."""
    node: Widget | None = widget
    while node is not None and node is not pane:
        if not node.display:
            return False
        parent = node.parent
        node = parent if isinstance(parent, Widget) else None
    return True
