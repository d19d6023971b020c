"""The pool gauge: size, in use, idle and waiters of a connection pool, on one line."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Static

BAR_WIDTH = 12


def gauge_text(pool: dict[str, Any] | None, label: str = "pool") -> Text:
    """``pool ███████░░░░░ in use 6/10 · idle 4 · waiters 0 · opened 10`` (one line, under
    70 cells: it must fit the pane at 100×30)."""
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(f"{label:<9}", style="bold")
    if pool is None:
        text.append("no pool", style="dim")
        return text
    size = max(1, int(pool["size"]))
    in_use = min(size, int(pool["in_use"]))
    filled = round(BAR_WIDTH * in_use / size)
    full = in_use >= size
    text.append("█" * filled, style="bold red" if full else "cyan")
    text.append("░" * (BAR_WIDTH - filled), style="dim")
    text.append(f" in use {in_use}/{pool['size']}", style="bold red" if full else "")
    text.append(f" · idle {pool['idle']}")
    waiters = int(pool.get("waiters", 0))
    text.append(f" · waiters {waiters}", style="bold yellow" if waiters else "")
    if "opened" in pool:
        text.append(f" · opened {pool['opened']}", style="dim")
    return text


class PoolGauge(Static):
    """A one-line gauge; :meth:`show` redraws it without a relayout (it updates often)."""

    DEFAULT_CSS = """
    PoolGauge { height: 1; }
    """

    def __init__(self, label: str = "pool", **kwargs: Any) -> None:
        super().__init__(gauge_text(None, label), **kwargs)
        self.label = label
        self.pool: dict[str, Any] | None = None

    def show(self, pool: dict[str, Any] | None) -> None:
        if pool == self.pool:
            return
        self.pool = pool
        self.update(gauge_text(pool, self.label), layout=False)
