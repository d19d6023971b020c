"""The stall inspector: every stall the watchdog caught, with the line that blocked."""

from __future__ import annotations

from datetime import datetime

from textual.message import Message
from textual.widgets import DataTable

from server.monitor import Stall


class StallInspector(DataTable[str]):
    """One row per stall, newest first. Selecting a row asks for its code."""

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

    def on_mount(self) -> None:
        self.add_columns("#", "when", "stall", "blocked", "cpu", "kind", "line", "route")

    def add_stalls(self, stalls: list[Stall]) -> None:
        """Append new stalls (batch); the oldest rows go past ``max_rows``."""
        for stall in stalls:
            key = str(stall.seq)
            self._stalls[key] = stall
            when = datetime.fromtimestamp(stall.started_at).strftime("%H:%M:%S.%f")[:-3]
            self.add_row(
                str(stall.seq),
                when,
                f"{stall.duration_ms:.1f} ms",
                f"{stall.blocked_ms:.1f} ms",
                f"{stall.cpu_ms:.1f} ms",
                stall.kind,
                stall.location or "(not sampled)",
                stall.route or "-",
                key=key,
            )
        while self.row_count > self.max_rows:
            oldest = next(iter(self._stalls))
            self.remove_row(oldest)
            del self._stalls[oldest]
        if stalls:
            self.move_cursor(row=self.row_count - 1)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        stall = self._stalls.get(str(event.row_key.value))
        if stall is not None:
            self.post_message(self.Selected(stall))
