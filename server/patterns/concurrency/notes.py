"""What a finished run says about itself: the sentence or two the pane shows under it."""

from __future__ import annotations

from server.patterns.concurrency.deps import POOL_SIZE, POOL_TIMEOUT_S
from server.patterns.concurrency.models import RunReport, RunRequest, TaskRecord


def peak_overlap(tasks: list[TaskRecord]) -> int:
    """Most calls in flight at the same moment."""
    edges = sorted([(t.start_ms, 1) for t in tasks] + [(t.end_ms, -1) for t in tasks])
    peak = current = 0
    for _, step in edges:  # at a tie the end (-1) sorts first: back-to-back is no overlap
        current += step
        peak = max(peak, current)
    return peak


def explain(report: RunReport, body: RunRequest) -> str:
    """One or two sentences for the pane: what happened and why."""
    wall, n = report.wall_ms, len(report.tasks)
    pitfall = report.blocking_mode and report.effective != report.strategy
    if report.error and report.error.startswith("the client disconnected"):
        return (
            "The client went away mid-run, so the server cancelled the run and awaited "
            "every call it had started: nothing is left running."
        )
    match report.effective:
        case "sequential" if pitfall:
            return (
                f"Blocking mode: {report.strategy} became one await after another: the {n} "
                f"calls took {wall:.0f} ms, the sum of the calls, not the slowest."
            )
        case "sequential":
            return (
                f"Each call waited for the previous one: {n} calls took {wall:.0f} ms, the sum "
                "of their latencies. None needed another's result, so they could have overlapped."
            )
        case "gather" if report.error:
            return (
                "gather raised the first failure as soon as it happened, but did not cancel "
                "the other calls: they ran on to the end (awaited here, so none leaked). Use "
                "return_exceptions=True or a TaskGroup."
            )
        case "gather":
            return (
                f"asyncio.gather had all {n} calls in flight at once: {wall:.0f} ms, about the "
                "slowest call rather than the sum."
            )
        case "gather_exceptions":
            return (
                f"gather(return_exceptions=True) waited for every call and returned failures "
                f"as values: {report.ok} ok, {report.failed} failed, none cancelled."
            )
        case "taskgroup" if report.error:
            return (
                f"A call failed, so the TaskGroup cancelled its {report.cancelled} running "
                "sibling(s) and raised an ExceptionGroup with every failure: no call outlives "
                "the async with block."
            )
        case "taskgroup":
            return (
                f"The TaskGroup ran all {n} calls concurrently and left its async with block "
                f"only when every one had finished ({wall:.0f} ms)."
            )
        case "as_completed":
            order = ", ".join(str(i) for i in report.completion_order[:12])
            more = ", ..." if len(report.completion_order) > 12 else ""
            return (
                f"as_completed handed the results over in the order the calls finished "
                f"({order}{more}), not the order they were started."
            )
        case "race":
            return _explain_race(report)
        case "race_coroutines":
            return (
                "asyncio.wait() refuses bare coroutines since Python 3.11 (it takes tasks), "
                "so nothing ran: wrap each coroutine in asyncio.create_task() first."
            )
        case "timeout" if report.error:
            return (
                f"The {body.timeout_s:g} s deadline cancelled the {report.cancelled} call(s) "
                f"still running (at about {body.timeout_s * 1000:.0f} ms); {report.ok} "
                "finished in time."
            )
        case "timeout":
            return f"Every call finished within the {body.timeout_s:g} s deadline."
        case "no_timeout":
            return (
                f"Blocking mode dropped the timeout: the run lasted {wall:.0f} ms, as long as "
                f"its slowest call, where the {body.timeout_s:g} s deadline would have cut it."
            )
        case "bounded":
            return (
                f"A Semaphore({body.limit}) kept at most {body.limit} calls in flight (peak "
                f"{peak_overlap(report.tasks)}); the rest waited for a slot instead of queueing "
                f"in the {POOL_SIZE}-connection pool."
            )
        case _:
            return _explain_unbounded(report, pitfall)


def _explain_race(report: RunReport) -> str:
    if report.winner is None:
        return "Every call failed, so the race had no winner."
    winner = report.tasks[report.winner]
    losers = [t for t in report.tasks if t.state == "cancelled"]
    if not losers:
        return f"{winner.label} won at {winner.end_ms:.0f} ms; no call was left to cancel."
    last_finally = max(t.finally_ms or 0.0 for t in losers)
    return (
        f"{winner.label} answered first ({winner.end_ms:.0f} ms); the {len(losers)} losers "
        f"were cancelled and awaited, so their finally blocks ran at once (by "
        f"{last_finally:.0f} ms)."
    )


def _explain_unbounded(report: RunReport, pitfall: bool) -> str:
    start = "Blocking mode dropped the semaphore: all" if pitfall else "All"
    timed_out = sum(1 for t in report.tasks if (t.error or "").startswith("PoolTimeout"))
    if timed_out:
        return (
            f"{start} {len(report.tasks)} calls started at once against a pool of "
            f"{POOL_SIZE} connections; {timed_out} waited over {POOL_TIMEOUT_S:g} s for one "
            "and failed with PoolTimeout. Bound the fan-out to the pool size."
        )
    return (
        f"{start} {len(report.tasks)} calls started at once; the {POOL_SIZE}-connection "
        f"pool queued the excess, none for over {POOL_TIMEOUT_S:g} s this time. More or "
        "slower calls fail with PoolTimeout."
    )
