"""One row of a pane's compact controls: labels, fields and buttons side by side."""

from __future__ import annotations

from textual.containers import Horizontal


class ControlRow(Horizontal):
    """A one-line row of controls, each as wide as its text, a space between them."""

    DEFAULT_CSS = """
    ControlRow { height: 1; }
    ControlRow Button { min-width: 0; margin-right: 1; }
    ControlRow Label { padding: 0 1 0 0; }
    """
