"""The Stalls tab's table: one row per stall of the user's app, newest last."""

from __future__ import annotations

from datetime import datetime

from textual.message import Message
from textual.widgets import DataTable

from explorer.yourapp.probe_records import culprit_of, worst_wait_ms
from fastasync_probe.monitor import Stall

#: (column key, title, width): fixed, a new stall never relayouts the table
COLUMNS = (
    ("when", "when", 12),
    ("duration", "stall", 9),
    ("kind", "kind", 8),
    ("culprit", "culprit line", 28),
    ("route", "route", 17),
    ("victims", "victims", 12),
)
_WIDTHS = {key: width for key, _, width in COLUMNS}


def _fit(text: str, width: int) -> str:
    """``text`` cut at its start when too wide: a path keeps its file and line."""
    return text if len(text) <= width else "…" + text[-(width - 1) :]


def fit_route(route: str, width: int) -> str:
    """``GET …/{product_id}``: the method kept, the path cut at its start when too wide."""
    method, _, path = route.partition(" ")
    if len(route) <= width or not path or len(method) + 3 > width:
        return _fit(route, width)
    return f"{method} {_fit(path, width - len(method) - 1)}"


def _ms(value: float) -> str:
    return f"{value:.0f} ms" if value >= 100 else f"{value:.1f} ms"


def culprit_line(stall: Stall) -> str:
    """``shop/orders.py:42``: the culprit's file and line (the function is in the detail)."""
    frame = culprit_of(stall)
    if frame is not None:
        return f"{frame.path}:{frame.line}"
    location = stall.location
    return location.split(" in ")[0] if location else "(not sampled)"


def victims_of(stall: Stall) -> str:
    """``3 (240 ms)``: how many requests waited, and the longest wait (or ``none``)."""
    if not stall.victims:
        return "none"
    return f"{len(stall.victims)} ({worst_wait_ms(stall):.0f} ms)"


def cells_of(stall: Stall) -> tuple[str, ...]:
    when = datetime.fromtimestamp(stall.started_at).strftime("%H:%M:%S.%f")[:-3]
    return (
        when,
        f"{_ms(stall.duration_ms):>8}",
        stall.kind,
        _fit(culprit_line(stall), _WIDTHS["culprit"]),
        fit_route(stall.route or "-", _WIDTHS["route"]),
        victims_of(stall),
    )


class StallTable(DataTable[str]):
    """The stalls so far (the newest ``max_rows``); Enter or a click picks one."""

    DEFAULT_CSS = """
    StallTable { width: 1fr; height: 1fr; }
    """

    class Picked(Message):
        """The user picked a stall: its detail is wanted."""

        def __init__(self, stall: Stall) -> None:
            super().__init__()
            self.stall = stall

    def __init__(self, *, max_rows: int = 200, id: str | None = None) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, id=id)
        self.max_rows = max_rows
        self._stalls: dict[str, Stall] = {}

    def on_mount(self) -> None:
        for key, title, width in COLUMNS:
            self.add_column(title, width=width, key=key)

    @property
    def stalls(self) -> list[Stall]:
        """The stalls listed, oldest first."""
        return list(self._stalls.values())

    def add_stalls(self, stalls: tuple[Stall, ...] | list[Stall]) -> None:
        """Append new stalls (a stall already listed is skipped); the oldest go beyond
        ``max_rows``. The cursor follows the newest unless the user moved it up."""
        at_end = self.row_count == 0 or self.cursor_row >= self.row_count - 1
        added = False
        for stall in stalls:
            key = str(stall.seq)
            if key in self._stalls:
                continue
            self._stalls[key] = stall
            self.add_row(*cells_of(stall), key=key)
            added = True
        while len(self._stalls) > self.max_rows:
            oldest = next(iter(self._stalls))
            self.remove_row(oldest)
            del self._stalls[oldest]
        if added and at_end:
            self.move_cursor(row=self.row_count - 1)

    def stall_at_cursor(self) -> Stall | None:
        if not 0 <= self.cursor_row < self.row_count:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        return self._stalls.get(str(key))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        stall = self._stalls.get(str(event.row_key.value))
        if stall is not None:
            self.post_message(self.Picked(stall))
