"""The panes the explorer offers, in menu order: one per slug of ``server.patterns``.

Also the command palette's entries that open them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial

from textual.app import SystemCommand
from textual.binding import Binding
from textual.widgets.option_list import Option

from explorer.pane import PatternPane
from explorer.patterns import part_of
from server.patterns import PATTERNS


def pane_of(slug: str) -> type[PatternPane]:
    """The pattern's pane: the one :class:`PatternPane` of its ``pane.py`` with its slug."""
    module = part_of(slug, "pane")
    panes = [
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, PatternPane)
        and getattr(value, "SLUG", None) == slug
    ]
    if len(panes) != 1:
        raise LookupError(f"{module.__name__} must define one PatternPane with SLUG {slug!r}")
    return panes[0]


PANES: tuple[type[PatternPane], ...] = tuple(pane_of(slug) for slug in PATTERNS)

#: the keys that open the panes, in menu order: the top row of digits, 0, then the minus
#: key beside it
PANE_KEYS = "1234567890-"
#: Textual's names of the keys that are not their own character
_KEY_NAMES = {"-": "minus"}


def key_of(index: int) -> str | None:
    """The key that opens the pane at ``index`` in the menu (a digit, then ``-``); None
    past the eleventh."""
    return PANE_KEYS[index] if index < len(PANE_KEYS) else None


def pane_bindings() -> list[Binding]:
    """The app's bindings that open the panes by their digit (the palette opens them all)."""
    return [
        Binding(_KEY_NAMES.get(key, key), f"open_pane({index})", pane.TITLE, show=False)
        for index, pane in enumerate(PANES)
        if (key := key_of(index)) is not None
    ]


def explorer_commands(
    toggle_blocking: Callable[[], object],
    show_code: Callable[[], object],
    open_pane: Callable[[int], object],
) -> Iterator[SystemCommand]:
    """The command palette's own entries: blocking mode, the code view, every pane."""
    yield SystemCommand(
        "Toggle blocking mode", "Switch every pattern to its pitfall", toggle_blocking
    )
    yield SystemCommand("Show code", "The handler that ran and the pane's client code", show_code)
    for index, pane in enumerate(PANES):
        yield SystemCommand(f"Open {pane.TITLE}", pane.SUMMARY, partial(open_pane, index))


def nav_options() -> list[Option]:
    """The menu's entries: each pane's key and title, in the registry's order."""
    return [
        Option(f"{key_of(i) or ' '} {pane.TITLE}", id=pane.SLUG) for i, pane in enumerate(PANES)
    ]
