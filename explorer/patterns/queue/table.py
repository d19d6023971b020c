"""The queue pane's two tables: the worker processes and the jobs, updated in place."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.text import Text
from textual.widgets import DataTable

WORKER_COLUMNS = ("pid", "state", "done", "job")
JOB_COLUMNS = ("job", "state", "runs", "result")
#: ids are shown this long (``fq-`` and 6 of their 12 hex digits: unique enough on screen)
SHORT_ID = 9
STATES = ("queued", "running", "retrying", "done", "failed", "lost")
STATE_STYLE = {
    "queued": "dim",
    "running": "bold cyan",
    "retrying": "bold yellow",
    "done": "green",
    "failed": "bold red",
    "lost": "bold red reverse",
    "unknown": "dim",
}

Cells = tuple[str | Text, ...]


def worker_cells(worker: Mapping[str, Any]) -> Cells:
    state = str(worker["state"])
    style = "bold cyan" if state == "busy" else "green" if state == "idle" else "bold red"
    if state in ("starting", "stopped"):
        style = "dim"
    return (
        str(worker["pid"]),
        Text(state, style=style),
        str(worker["done"]),
        short_id(str(worker.get("current") or "")),
    )


def short_id(job_id: str) -> str:
    return job_id[:SHORT_ID]


def job_cells(job: Mapping[str, Any]) -> Cells:
    state = str(job["state"])
    runs = int(job.get("runs") or 0)
    text = job.get("error") or job.get("result") or ""
    worker = f" on {job['worker']}" if job.get("worker") else ""
    return (
        short_id(str(job["id"])),
        Text(state, style=STATE_STYLE.get(state, "")),
        Text(str(runs), style="bold yellow") if runs > 1 else str(runs),
        Text(f"{text}{worker}", style="red" if job.get("error") else ""),
    )


def sync_rows(table: DataTable[str | Text], rows: Sequence[tuple[str, Cells]]) -> None:
    """Make ``table`` show ``rows`` (key, cells), in order, touching only what changed:
    a cell whose value is the same is not redrawn, and a table whose keys did not change
    keeps its rows (no clear and refill on every poll). A column widens for a longer
    value (a job's result arrives after its row)."""
    wanted = [key for key, _ in rows]
    present = [row.value for row in table.rows]
    if present != wanted:
        table.clear()
        for key, cells in rows:
            table.add_row(*cells, key=key)
        return
    columns = list(table.columns)
    for key, cells in rows:
        for column, value in zip(columns, cells, strict=True):
            if table.get_cell(key, column) != value:
                table.update_cell(key, column, value, update_width=True)


def lost_rows(ids: Sequence[str], pid: int, seconds: float) -> list[dict[str, Any]]:
    """The in-process jobs a killed server child took with it, as rows of the job table."""
    return [
        {
            "id": job_id,
            "backend": "inprocess",
            "kind": "sleep",
            "seconds": seconds,
            "state": "lost",
            "runs": 0,
            "error": f"died with server {pid}",
        }
        for job_id in ids
    ]
