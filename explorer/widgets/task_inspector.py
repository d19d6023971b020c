"""The task inspector: every task on the loop, what it waits on, and which are stuck.

A table fed snapshots (``GET /monitor/tasks``'s shape) by :class:`explorer.task_feed.
TaskFeed`; it does no I/O. Rows are updated in place and the columns have fixed widths, so
a refresh never relayouts. The UI's own tasks (Textual's message pumps, one per widget)
fold into one row unless flagged: the server's tasks are the lesson.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.message import Message
from textual.widgets import DataTable, Static

#: key of the row that sums up the terminal UI's own tasks
UI_ROW = "explorer-ui"
_UI_PREFIXES = ("textual/", "rich/", "explorer/")
#: (column key, title, width): fixed, the figures never move the table
COLUMNS = (
    ("flag", "flag", 4),
    ("task", "task", 16),
    ("waits", "waits on", 30),
    ("for", "for", 6),
    ("where", "suspended at", 28),
    ("age", "age", 6),
    ("route", "request", 24),
    ("created", "created at", 28),
)
_WIDTHS = {key: width for key, _, width in COLUMNS}
_MARKS = {
    "in_cycle": "DEAD",
    "never_retrieved": "EXC",
    "long_wait": "LONG",
    "pending_at_shutdown": "LEFT",
}


def is_ui_task(row: dict[str, Any]) -> bool:
    """A task of the terminal UI (Textual, Rich, the explorer), not of the server."""
    where = row.get("where_short") or ""
    created = row.get("created_at") or ""
    coro = row.get("coro") or ""
    return (
        where.startswith(_UI_PREFIXES)
        or created.startswith(_UI_PREFIXES)
        or coro.startswith("MessagePump.")
    )


def fit_left(text: str, width: int) -> str:
    """``text``, its start cut if too wide: a path keeps its file and line."""
    return text if len(text) <= width else "…" + text[-(width - 1) :]


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f} s" if value < 100 else f"{value / 60:.0f} min"


def cells_of(row: dict[str, Any]) -> tuple[str | Text, ...]:
    """One task's cells; a task in a deadlock is drawn in the error colour."""
    flags = row.get("flags") or []
    waits = row["waits_on"]
    mark = " ".join(_MARKS[f] for f in flags[:1] if f in _MARKS)
    style = "bold red" if "in_cycle" in flags else ("yellow" if flags else "")
    name = row["name"]
    return (
        Text(mark, style=style),
        Text(name, style=style),
        Text(f"{waits['kind']}: {waits['detail']}" if waits["kind"] != "none" else waits["detail"]),
        _seconds(row.get("waiting_s")),
        fit_left(row.get("where_short") or "-", _WIDTHS["where"]),
        _seconds(row.get("age_s")),
        row.get("route") or "-",
        fit_left(row.get("created_at") or "-", _WIDTHS["created"]),
    )


def summary_of(snapshot: dict[str, Any], ui_tasks: int) -> Text:
    """One line: how many tasks, whose, and each deadlock with its tasks and locks."""
    counts = snapshot["counts"]
    text = Text(f"{counts['total']} tasks ({ui_tasks} of the UI)")
    for cycle in snapshot["cycles"]:
        tasks = " ⇄ ".join(cycle["tasks"])
        locks = ", ".join(cycle["locks"]) or "tasks"
        text.append(f"  DEADLOCK: {tasks} over {locks}", style="bold red")
    failures = len(snapshot["never_retrieved"])
    if failures:
        text.append(f"  {failures} exception(s) never retrieved", style="yellow")
    text.append(f"  snapshot {snapshot['cost_ms']:.1f} ms", style="dim")
    return text


class TaskInspector(DataTable[str | Text]):
    """One row per server task (flagged first, then oldest), the UI's tasks in one row.
    Selecting a row asks for the code where that task is suspended."""

    DEFAULT_CSS = """
    TaskInspector { height: 1fr; }
    """

    class Selected(Message):
        """The user picked a task (Enter or click): its snapshot row."""

        def __init__(self, row: dict[str, Any]) -> None:
            super().__init__()
            self.row = row

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, id=id)
        self._rows: dict[str, dict[str, Any]] = {}
        self._order: list[str] = []
        self.summary = Text("no snapshot yet")

    def on_mount(self) -> None:
        for key, title, width in COLUMNS:
            self.add_column(title, width=width, key=key)

    def show(self, snapshot: dict[str, Any]) -> Text:
        """Show ``snapshot``; the summary line for it is returned (and kept)."""
        rows: dict[str, dict[str, Any]] = {}
        ui: list[dict[str, Any]] = []
        for row in snapshot["tasks"]:
            if is_ui_task(row) and not {"in_cycle", "never_retrieved"} & set(row["flags"]):
                ui.append(row)
            else:
                rows[str(row["id"])] = row
        cells = {key: cells_of(row) for key, row in rows.items()}
        folded = int(snapshot["counts"].get("folded", 0))
        if ui or folded:
            cells[UI_ROW] = self._ui_cells(ui, folded)
        order = list(cells)
        if order == self._order:
            for key, values in cells.items():
                old = self._cells_of_key(key)
                for (column, _, _), value, before in zip(COLUMNS, values, old, strict=True):
                    if value != before:
                        self.update_cell(key, column, value)
        else:
            self._rebuild(order, cells)
        self._rows = rows
        self._order = order
        self.summary = summary_of(snapshot, len(ui) + folded)
        return self.summary

    def _cells_of_key(self, key: str) -> list[Any]:
        return list(self.get_row(key))

    def _rebuild(self, order: list[str], cells: dict[str, tuple[str | Text, ...]]) -> None:
        """New rows or a new order: the rows again, the cursor kept on its task."""
        current = self._order[self.cursor_row] if 0 <= self.cursor_row < len(self._order) else None
        self.clear()
        for key in order:
            self.add_row(*cells[key], key=key)
        if current in order:
            self.move_cursor(row=order.index(current))

    @staticmethod
    def _ui_cells(rows: list[dict[str, Any]], folded: int) -> tuple[str | Text, ...]:
        oldest = max((row["age_s"] for row in rows), default=None)
        return (
            "",
            Text(f"explorer UI ×{len(rows) + folded}", style="dim"),
            Text("message pumps, timers, workers", style="dim"),
            "-",
            "textual/…",
            _seconds(oldest),
            "-",
            "-",
        )

    def row_of(self, key: str) -> dict[str, Any] | None:
        """The snapshot row shown under ``key`` (None for the UI's folded row)."""
        return self._rows.get(key)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        row = self._rows.get(str(event.row_key.value))
        if row is not None:
            self.post_message(self.Selected(row))


class TaskSummary(Static):
    """The line above the table: counts and every deadlock, in words."""

    DEFAULT_CSS = """
    TaskSummary { height: 1; }
    """
