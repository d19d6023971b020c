"""The stall inspector: every stall the watchdog caught, with the line that blocked."""

from __future__ import annotations

from datetime import datetime

from textual.message import Message
from textual.widgets import DataTable

from fastasync_probe.monitor import Stall

#: key of the row that sums up the stalls this UI caused (painting, layout, highlighting)
UI_ROW = "explorer-ui"
#: key of the row that sums up the other stalls outside requests and outside server code
OTHER_ROW = "elsewhere"

#: stack frames of the terminal UI: Textual, Rich, Pygments and the explorer's own code
_UI_PREFIXES = ("textual/", "rich/", "pygments/", "explorer/")


def is_server_stall(stall: Stall) -> bool:
    """A stall in a request, or in the server's own code (a background task, say)."""
    return bool(stall.route) or (stall.location or "").startswith("server/")


def is_ui_stall(stall: Stall) -> bool:
    """A stall outside requests whose stack runs through the terminal UI's code."""
    if stall.route:
        return False
    frames = (stall.location or "", *stall.stack)
    return any(frame.startswith(_UI_PREFIXES) for frame in frames)


class _Fold:
    """Count, total and worst of the stalls folded into one row."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.count = 0
        self.total_ms = 0.0
        self.worst: Stall | None = None

    def add(self, stall: Stall) -> None:
        self.count += 1
        self.total_ms += stall.duration_ms
        if self.worst is None or stall.duration_ms > self.worst.duration_ms:
            self.worst = stall

    def cells(self, kind: str) -> tuple[str, ...]:
        worst = self.worst
        if worst is None:
            line = "none so far"
        else:
            line = f"worst {worst.duration_ms:.1f} ms at {worst.location or '(not sampled)'}"
        return (self.label, f"×{self.count}", f"{self.total_ms:.0f} ms", "", "", kind, line, "-")


class StallInspector(DataTable[str]):
    """One row per server stall (oldest first); the UI's own stalls, and the rest, in one
    row each.

    Stalls outside requests and outside server code are this UI painting, or framework
    work. They get a row each updated in place: a row per UI stall would make the next
    repaint slower, which is another UI stall, and so on.
    Selecting a row asks for its code.
    """

    DEFAULT_CSS = """
    StallInspector { height: 1fr; }
    """

    class Selected(Message):
        """The user picked a stall (Enter or click)."""

        def __init__(self, stall: Stall) -> None:
            super().__init__()
            self.stall = stall

    def __init__(self, *, max_rows: int = 200, id: str | None = None) -> None:
        # the two folded rows stay on top while the server stalls scroll under them
        super().__init__(cursor_type="row", zebra_stripes=True, fixed_rows=2, id=id)
        self.max_rows = max_rows
        self._stalls: dict[str, Stall] = {}
        self._folds = {UI_ROW: _Fold("explorer UI"), OTHER_ROW: _Fold("no request")}

    def on_mount(self) -> None:
        self.add_columns("#", "when", "stall", "blocked", "cpu", "kind", "line", "route")
        for row in self._folds:
            self.add_row(*self._fold_cells(row), key=row)

    def add_stalls(self, stalls: list[Stall]) -> None:
        """Append new server stalls (batch); fold the others into their rows."""
        added = False
        touched: set[str] = set()
        for stall in stalls:
            if not is_server_stall(stall):
                row = UI_ROW if is_ui_stall(stall) else OTHER_ROW
                self._folds[row].add(stall)
                touched.add(row)
                continue
            key = str(stall.seq)
            self._stalls[key] = stall
            self.add_row(*self._cells(stall), key=key)
            added = True
        for row in sorted(touched):
            self._show_fold(row)
        while len(self._stalls) > self.max_rows:
            oldest = next(iter(self._stalls))
            self.remove_row(oldest)
            del self._stalls[oldest]
        if added:
            self.move_cursor(row=self.row_count - 1)

    def focus_newest(self) -> None:
        """Focus the table on its newest server stall (or its last row)."""
        self.focus()
        if self._stalls:
            self.move_cursor(row=self.get_row_index(next(reversed(self._stalls))))
        elif self.row_count:
            self.move_cursor(row=self.row_count - 1)

    @staticmethod
    def _cells(stall: Stall) -> tuple[str, ...]:
        when = datetime.fromtimestamp(stall.started_at).strftime("%H:%M:%S.%f")[:-3]
        return (
            str(stall.seq),
            when,
            f"{stall.duration_ms:.1f} ms",
            f"{stall.blocked_ms:.1f} ms",
            f"{stall.cpu_ms:.1f} ms",
            stall.kind,
            stall.location or "(not sampled)",
            stall.route or "-",
        )

    def _fold_cells(self, row: str) -> tuple[str, ...]:
        return self._folds[row].cells("ui" if row == UI_ROW else "other")

    def _show_fold(self, row: str) -> None:
        for column, value in zip(self.columns, self._fold_cells(row), strict=True):
            # the widths grow with the figures: a count must never be cut
            self.update_cell(row, column, value, update_width=True)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        key = str(event.row_key.value)
        stall = self._folds[key].worst if key in self._folds else self._stalls.get(key)
        if stall is not None:
            self.post_message(self.Selected(stall))
