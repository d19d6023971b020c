"""The caching pane's run table: one row per finished demonstration, newest last.

Two lines a row (what ran and in which form; what came of it and the detail), so that the
table fits the pane at 100×30 without a horizontal scrollbar.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.widgets import DataTable

COLUMNS = ("#", "run", "outcome", "took")


@dataclass(frozen=True)
class RunRow:
    """One finished demonstration, as the run table shows it."""

    demo: str
    form: str
    outcome: str
    took_ms: float
    detail: str
    ok: bool = True


def took_text(ms: float) -> str:
    """``0.006 ms``, ``4.2 ms``, ``312 ms``: a cache hit takes microseconds."""
    if ms < 1:
        return f"{ms:.3f} ms"
    return f"{ms:.1f} ms" if ms < 10 else f"{ms:.0f} ms"


class RunTable(DataTable[str | Text]):
    """The runs, at most ``max_rows`` (the oldest go first), the cursor on the newest."""

    def __init__(self, max_rows: int = 100, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", **kwargs)
        self.max_rows = max_rows
        self._numbers = itertools.count(1)
        self._keys: list[str] = []

    def on_mount(self) -> None:
        for column in COLUMNS:
            self.add_column(column, key=column)

    def add_run(self, row: RunRow) -> None:
        """Append ``row``: the outcome in red when it is the pitfall's."""
        number = str(next(self._numbers))
        outcome = Text(row.outcome, style="" if row.ok else "bold red")
        outcome.append(f"\n{row.detail}", style="dim")
        self.add_row(
            number,
            Text(f"{row.demo}\n{row.form}"),
            outcome,
            took_text(row.took_ms),
            key=number,
            height=2,
        )
        self._keys.append(number)
        if len(self._keys) > self.max_rows:
            self.remove_row(self._keys.pop(0))
        self.move_cursor(row=self.row_count - 1)
