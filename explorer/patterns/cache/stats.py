"""The cache's live counters: size, hits, misses, coalesced, expiries, evictions."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Static

#: (field of GET /cache/stats, label, style when non-zero)
_COUNTERS: tuple[tuple[str, str, str], ...] = (
    ("in_flight", "in flight", "bold cyan"),
    ("hits", "hits", "bold green"),
    ("misses", "misses", "bold yellow"),
    ("coalesced", "coalesced", "bold cyan"),
    ("expired", "expired", "magenta"),
    ("evictions", "evicted", "magenta"),
    ("errors", "errors", "bold red"),
)


def stats_text(stats: dict[str, Any] | None) -> Text:
    """``size 3/8 · hits 5 · misses 3 ...`` (dim placeholders before the first reading)."""
    text = Text()
    if stats is None:
        text.append("cache stats: waiting for the server…", style="dim italic")
        return text
    text.append("cache ", style="dim")
    text.append(f"{stats['size']}/{stats['maxsize']}", style="bold")
    for key, label, style in _COUNTERS:
        value = int(stats.get(key, 0))
        text.append(f" · {label} ", style="dim")
        text.append(str(value), style=style if value else "")
    text.append(" · upstream calls ", style="dim")
    text.append(str(stats.get("upstream_calls", 0)), style="bold")
    if not stats.get("single_flight", True):
        text.append(" · single flight OFF", style="bold red")
    return text


class CacheStats(Static):
    """Two fixed-height lines (it wraps in narrow panes), redrawn without a relayout: it
    changes up to 4 times a second."""

    DEFAULT_CSS = """
    CacheStats { height: 2; }
    """

    def show(self, stats: dict[str, Any] | None) -> None:
        """Draw ``stats`` (a ``GET /cache/stats`` body)."""
        self.update(stats_text(stats), layout=False)
