"""The Background jobs pane's result line: what the last action's jobs did, in words.

Worked out from the same job records the table shows (the server's ``/tasks/stream``), so
the lesson reads whole even when the table's error column is cut on a narrow screen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rich.text import Text

Job = dict[str, Any]

UNFINISHED = ("pending", "running")


@dataclass(frozen=True)
class Run:
    """One press of a button: which jobs it made, and what the server answered."""

    action: str
    #: which press this is (a slow answer must not overwrite a newer press's line)
    seq: int = 0
    job_ids: tuple[int, ...] = ()
    #: fire-and-forget: False when blocking mode dropped the reference and the callback
    supervised: bool = True
    #: debounce: how many triggers were sent
    triggers: int = 0
    #: the refusal (a 503 and its reason) or the transport error, if any
    refused: str | None = None


def _elapsed_s(since: str | None, now: datetime) -> float | None:
    if since is None:
        return None
    return (now - datetime.fromisoformat(since)).total_seconds()


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} ms"


def outcome_of(run: Run, jobs: dict[int, Job], now: datetime | None = None) -> Text:
    """The result line for ``run``, from the jobs as they are now."""
    now = now or datetime.now(UTC)
    if run.refused is not None:
        return Text(f"refused: {run.refused}", style="bold yellow")
    mine = [jobs[i] for i in run.job_ids if i in jobs]
    if not mine:
        return Text("sent; waiting for the live feed…", style="dim")
    if run.action == "fire_and_forget":
        return _fire_and_forget(mine[0], run.supervised, now)
    if run.action == "background":
        return _background(mine)
    if run.action == "queue":
        return _queued(mine[0])
    return _debounced(run, mine)


def _fire_and_forget(job: Job, supervised: bool, now: datetime) -> Text:
    text = Text(f"job {job['id']} ", style="bold")
    state = job["state"]
    if supervised:
        if state in UNFINISHED:
            text.append(f"{state}: the store holds its task, a done callback will record it")
        elif state == "failed":
            text.append("failed", style="bold red")
            text.append(f", and we know why: {job['error']}")
        else:
            text.append(state, style="green" if state == "done" else "yellow")
            text.append(f" in {_ms(job['duration_ms'])}, recorded by the done callback")
        return text
    # The pitfall: the store heard the job start and will never hear it end.
    late = _elapsed_s(job.get("started_at"), now)
    overdue = None if late is None else late - job["duration_s"]
    if state in UNFINISHED and job["kind"] == "hang":
        text.append("hangs with no timeout and no reference: only shutdown ends it")
    elif state in UNFINISHED and overdue is not None and overdue > 0.2:
        late_by = f"{overdue:.1f} s after its {job['duration_s']:g} s"
        text.append(f"still '{state}' {late_by}", style="bold red")
        lost = "its ValueError" if job["kind"] == "fail" else "how it ended"
        text.append(f": no reference, no callback, nobody hears {lost}")
    elif state in UNFINISHED:
        text.append(f"{state}, with no reference and no callback kept")
    else:  # recorded at shutdown ("lost") or cancelled
        text.append(f"{state}: {job['error'] or ''}")
    return text


def _background(batch: list[Job]) -> Text:
    text = Text()
    gaps = [j.get("response_sent_ms") for j in batch]
    if all(gap is None for gap in gaps):
        text.append("answered; the jobs start once the response is sent")
        return text
    started = ", ".join("-" if g is None else f"+{g:,.0f}" for g in gaps)
    text.append("after the response", style="bold")
    text.append(f", in turn: started {started} ms")
    failed = [j for j in batch if j["state"] == "failed"]
    later = [j for j in batch if failed and j["id"] > failed[0]["id"]]
    if failed:
        text.append(f"; job {failed[0]['id']} ", style="bold")
        text.append("failed", style="bold red")
        text.append(f" ({failed[0]['error']})")
        if later and all(j["state"] not in UNFINISHED for j in later):
            text.append(", the next still ran")
    return text


def _queued(job: Job) -> Text:
    text = Text(f"job {job['id']} ", style="bold")
    started, created = job.get("started_at"), job.get("created_at")
    if started is None or created is None:
        text.append(f"{job['state']}: waiting for one of the workers")
        return text
    waited = (datetime.fromisoformat(started) - datetime.fromisoformat(created)).total_seconds()
    text.append(f"waited {waited * 1000:,.0f} ms for a worker, then {job['state']}")
    if job["state"] not in UNFINISHED:
        text.append(f" after {_ms(job['duration_ms'])}")
    if job.get("error"):
        text.append(f": {job['error']}")
    return text


def _debounced(run: Run, jobs: list[Job]) -> Text:
    text = Text(f"{run.triggers} triggers → ", style="bold")
    runs = len(jobs)
    style = "bold red" if runs > 1 else "green"
    text.append(f"{runs} run{'s' if runs != 1 else ''}", style=style)
    done = sum(j["state"] not in UNFINISHED for j in jobs)
    text.append(f" ({done} finished)")
    if runs > 1:
        text.append(": no debounce, every trigger did the work")
    return text
