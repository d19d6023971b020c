"""The stall inspector: every stall the watchdog caught, with the line that blocked."""

from __future__ import annotations

from datetime import datetime

from textual.message import Message
from textual.widgets import DataTable

from server.monitor import Stall

#: key of the one row that sums up stalls outside the server's code and outside requests
ELSEWHERE = "elsewhere"


def is_server_stall(stall: Stall) -> bool:
    """A stall in a request, or in the server's own code (a background task, say)."""
    return bool(stall.route) or (stall.location or "").startswith("server/")


class StallInspector(DataTable[str]):
    """One row per server stall (oldest first); the rest summed up in a single row.

    Stalls outside requests and outside server code are this UI painting or framework
    work. They get one row updated in place: a row per UI stall would make the next
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
        super().__init__(cursor_type="row", zebra_stripes=True, id=id)
        self.max_rows = max_rows
        self._stalls: dict[str, Stall] = {}
        self._elsewhere_count = 0
        self._elsewhere_ms = 0.0
        self._elsewhere_worst: Stall | None = None

    def on_mount(self) -> None:
        self.add_columns("#", "when", "stall", "blocked", "cpu", "kind", "line", "route")

    def add_stalls(self, stalls: list[Stall]) -> None:
        """Append new server stalls (batch); fold the others into one row."""
        added = False
        for stall in stalls:
            if not is_server_stall(stall):
                self._fold_elsewhere(stall)
                continue
            key = str(stall.seq)
            self._stalls[key] = stall
            self.add_row(*self._cells(stall), key=key)
            added = True
        self._show_elsewhere()
        while len(self._stalls) > self.max_rows:
            oldest = next(key for key in self._stalls if key != ELSEWHERE)
            self.remove_row(oldest)
            del self._stalls[oldest]
        if added:
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

    def _fold_elsewhere(self, stall: Stall) -> None:
        self._elsewhere_count += 1
        self._elsewhere_ms += stall.duration_ms
        worst = self._elsewhere_worst
        if worst is None or stall.duration_ms > worst.duration_ms:
            self._elsewhere_worst = stall

    def _show_elsewhere(self) -> None:
        worst = self._elsewhere_worst
        if worst is None:
            return
        cells = (
            f"×{self._elsewhere_count}",
            "outside requests",
            f"{self._elsewhere_ms:.0f} ms",
            "",
            "",
            "ui/other",
            f"worst {worst.duration_ms:.1f} ms at {worst.location or '(not sampled)'}",
            "-",
        )
        if ELSEWHERE in self.rows:
            for column, value in zip(self.columns, cells, strict=True):
                self.update_cell(ELSEWHERE, column, value)
        else:
            self.add_row(*cells, key=ELSEWHERE)
            self._stalls[ELSEWHERE] = worst

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        key = str(event.row_key.value)
        stall = self._elsewhere_worst if key == ELSEWHERE else self._stalls.get(key)
        if stall is not None:
            self.post_message(self.Selected(stall))
