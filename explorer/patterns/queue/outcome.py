"""The queue pane's result line: each demo's finding in words, the lesson's figure first."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text

from explorer.patterns.queue.client import Listing
from explorer.patterns.queue.demos import ScaleRow, ServerKill, WorkerKill
from fastasync_probe.monitor import Stall


def worker_kill_text(found: WorkerKill) -> Text:
    text = Text()
    text.append(f"{found.done}/{found.jobs} done", style="bold green")
    text.append(f" after worker {found.killed_pid} was killed with -9 mid-job; ")
    twice = len(found.ran_twice)
    text.append(f"{twice} ran twice", style="bold yellow")
    text.append(
        f" ({', '.join(found.ran_twice[:2])}: arq redelivered it once its lock expired; "
        "at-least-once, so jobs must be idempotent)"
    )
    if found.failed:
        text.append(f"; {found.failed} failed", style="bold red")
    return text


def server_kill_text(found: ServerKill) -> Text:
    text = Text()
    text.append(f"{len(found.lost)}/{found.jobs} BackgroundTasks jobs lost", style="bold red")
    text.append(f" when server {found.child_pid} was killed -9 ({found.inprocess_done} done); ")
    text.append(f"{found.redis_done}/{found.jobs} Redis jobs done", style="bold green")
    text.append(": the queue outlived it.")
    return text


def scale_text(rows: Sequence[ScaleRow]) -> Text:
    text = Text()
    for row in rows:
        text.append(f"{row.workers} worker{'s' if row.workers > 1 else ''}: ", style="bold")
        text.append(f"{row.wall_s:.1f} s", style="bold green")
        text.append(f" (ideal {row.ideal_s:.1f} s, {row.jobs_per_s:.1f} jobs/s)  ")
    if rows:
        first = rows[0]
        text.append(f"· {first.jobs} × {first.seconds:g} s jobs, one at a time per worker")
    return text


def enqueue_text(listing: Listing, where: str, wall_s: float, stalls: Sequence[Stall]) -> Text:
    """An Enqueue run: where the jobs ran, how long, and what they did to this loop."""
    text = Text()
    done, failed = listing.count("done"), listing.count("failed")
    text.append(f"{done} done", style="bold green")
    if failed:
        text.append(f", {failed} failed", style="bold red")
    unfinished = len(listing.jobs) - done - failed
    if unfinished:
        text.append(f", {unfinished} unfinished", style="bold yellow")
    text.append(f" in {wall_s:.2f} s on {where}; ")
    # Only a stall in the jobs' own code is the lesson: the terminal UI shares this loop, and
    # on a busy machine one of its frames can take 20 ms while a poll is in flight.
    by_jobs = [stall for stall in stalls if _in_job_code(stall)]
    others = [stall for stall in stalls if not _in_job_code(stall)]
    if by_jobs:
        longest = max(by_jobs, key=lambda stall: stall.duration_ms)
        text.append(f"{len(by_jobs)} stall(s) of this server's loop", style="bold red")
        text.append(f", longest {longest.duration_ms:.0f} ms at {longest.location}")
    else:
        text.append("no stall of this server's loop by the jobs", style="bold green")
    if others:
        worst = max(others, key=lambda stall: stall.duration_ms)
        text.append(
            f" ({len(others)} other, {worst.duration_ms:.0f} ms at {worst.location or '?'}: "
            "not the jobs' code)"
        )
    errors = [job["error"] for job in listing.jobs if job.get("error")]
    if errors:
        text.append(f" · {errors[0]}", style="red")
    return text


def _in_job_code(stall: Stall) -> bool:
    """A stall blamed on a job's own body (its CPU loop, its sleep): the lesson's line. A
    short stall elsewhere in the server's code is the machine's noise around it."""
    return "patterns/queue/demo_job.py" in (stall.location or "")
