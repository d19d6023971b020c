"""The panes the explorer offers, in menu order. Only patterns that really work are here."""

from __future__ import annotations

from .panes.base import PatternPane
from .panes.basics import BasicsPane
from .panes.cache import CachePane
from .panes.concurrency import ConcurrencyPane
from .panes.db import DbPane
from .panes.sse import SsePane
from .panes.stream import StreamPane
from .panes.tasks import TasksPane
from .panes.ws import WsPane

PANES: tuple[type[PatternPane], ...] = (
    BasicsPane,
    ConcurrencyPane,
    TasksPane,
    WsPane,
    SsePane,
    StreamPane,
    DbPane,
    CachePane,
)


def pane_for(slug: str) -> type[PatternPane]:
    """The pane class of a pattern slug."""
    for pane in PANES:
        if slug == pane.SLUG:
            return pane
    raise KeyError(slug)
