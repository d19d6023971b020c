"""The panes the explorer offers, in menu order: one per slug of ``server.patterns``."""

from __future__ import annotations

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
