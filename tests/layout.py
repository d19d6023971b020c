"""Checks that a pane is whole on screen: every control visible, nothing cut, results shown.

Used by every pane's tests at the supported minimum (100×30) and at larger sizes.
"""

from __future__ import annotations

from rich.cells import cell_len
from textual.geometry import Region
from textual.widget import Widget
from textual.widgets import Button, Input, RadioButton, Select

from explorer.pane import PatternPane

#: the kinds of widget a user must be able to reach and read
CONTROLS = (Button, Input, Select, RadioButton)


def visible_region(widget: Widget) -> Region:
    """The part of ``widget`` on screen now (empty when hidden or scrolled away)."""
    if not widget.display or not widget.is_attached:
        return Region()
    return widget.screen.find_widget(widget).region if _on_screen(widget) else Region()


def _on_screen(widget: Widget) -> bool:
    try:
        widget.screen.find_widget(widget)
    except Exception:  # NoWidget: not in the compositor's map (hidden, zero size)
        return False
    return True


def _displayed(widget: Widget) -> bool:
    node: Widget | None = widget
    while isinstance(node, Widget):
        if not node.display or not node.visible:
            return False
        parent = node.parent
        node = parent if isinstance(parent, Widget) else None
    return True


def problems_of(pane: PatternPane, results: tuple[str, ...] = ()) -> list[str]:
    """What is not whole: controls off screen or cut, labels cut, result areas missing.

    ``results`` are selectors (inside the pane) of the areas that show a run's result;
    each must be on screen with at least one row.
    """
    problems = []
    pane_region = visible_region(pane)
    if not pane_region:
        return [f"{pane.id} is not on screen"]
    for widget in pane.query(",".join(kind.__name__ for kind in CONTROLS)).results(Widget):
        if not _displayed(widget):
            continue  # hidden on purpose (a tab of the pane not chosen)
        name = f"{type(widget).__name__}#{widget.id}"
        region = visible_region(widget)
        if not region:
            problems.append(f"{name} is not on screen")
            continue
        if region.size != widget.outer_size:
            problems.append(f"{name} is cut: {region.size} of {widget.outer_size}")
        if not pane_region.contains_region(region):
            problems.append(f"{name} is outside the pane: {region} not in {pane_region}")
        label, room = _label_of(widget)
        if label and room < cell_len(label):
            problems.append(f"{name} label {label!r} has {room} cells")
    for selector in results:
        widget = pane.query_one(selector)
        region = visible_region(widget)
        if not _displayed(widget) or region.height < 1:
            problems.append(f"result area {selector} is not on screen")
        elif not pane_region.contains_region(region):
            problems.append(f"result area {selector} is outside the pane")
    return problems


def _label_of(widget: Widget) -> tuple[str, int]:
    """A button's label and the cells it has to show it in."""
    width = widget.content_size.width
    if isinstance(widget, Button):
        # line-pad: a button keeps a blank cell on each side of its label
        return str(widget.label), width - 2 * widget.styles.line_pad
    if isinstance(widget, RadioButton):
        # the ▐●▌ glyph and a space come before the label
        return str(widget.label), width - 4
    return "", width
