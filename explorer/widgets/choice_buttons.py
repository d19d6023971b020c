"""A row of buttons, one per choice, the default one highlighted (the one ``r`` presses)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from textual.widgets import Button


def choice_buttons(
    choices: Iterable[tuple[str, str]], prefix: str, primary: str
) -> Iterator[Button]:
    """A compact button per ``(key, label)``, its id ``<prefix>-<key>``; ``primary`` stands out."""
    for key, label in choices:
        yield Button(
            label,
            id=f"{prefix}-{key}",
            variant="primary" if key == primary else "default",
            compact=True,
        )
