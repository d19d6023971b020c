"""The panes the explorer offers, in menu order. Only patterns that really work are here."""

from __future__ import annotations

from .panes.base import PatternPane
from .panes.basics import BasicsPane
from .panes.concurrency import ConcurrencyPane
from .panes.db import DbPane
from .panes.tasks import TasksPane

PANES: tuple[type[PatternPane], ...] = (BasicsPane, ConcurrencyPane, TasksPane, DbPane)


def pane_for(slug: str) -> type[PatternPane]:
    """The pane class of a pattern slug."""
    for pane in PANES:
        if slug == pane.SLUG:
            return pane
    raise KeyError(slug)
