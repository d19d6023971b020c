"""The Background jobs pane's table: its columns and how a job record reads in a row."""

from __future__ import annotations

from typing import Any

from rich.text import Text

#: the table's columns; "after resp." is BackgroundTasks' gap from the response to the job
COLUMNS = ("job", "origin", "kind", "state", "took", "after resp.", "error")
#: shorter names for the origin column (the table must fit 73 columns)
ORIGIN_LABEL = {"fire_and_forget": "fire&forget"}
STATES = ("pending", "running", "done", "failed", "cancelled", "lost")
STATE_STYLE = {
    "pending": "dim",
    "running": "bold cyan",
    "done": "green",
    "failed": "bold red",
    "cancelled": "yellow",
    "lost": "bold magenta",
}


def job_cells(job: dict[str, Any]) -> tuple[str | Text, ...]:
    """A job record (as ``GET /tasks/jobs`` gives it) as the table's row, in ``COLUMNS``."""
    took = "" if job.get("duration_ms") is None else f"{job['duration_ms']:.0f} ms"
    after = job.get("response_sent_ms")
    return (
        str(job["id"]),
        ORIGIN_LABEL.get(job["origin"], job["origin"]),
        job["kind"],
        Text(job["state"], style=STATE_STYLE.get(job["state"], "")),
        took,
        "" if after is None else f"+{after:.0f} ms",
        job.get("error") or "",
    )
