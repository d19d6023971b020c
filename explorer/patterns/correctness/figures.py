"""What the correctness tabs draw from a run's figures: a verdict and a log each."""

from __future__ import annotations

from typing import Any

from rich.text import Text

from explorer.patterns.correctness.client import Race

Reply = dict[str, Any]
#: timeline rows shown (the rest are counted)
TIMELINE_ROWS = 60


def await_verdict(reply: Reply) -> Text:
    """Missing await: what the handler got and whether the row was written."""
    rows = f"rows {reply['rows_before']} → {reply['rows_after']}"
    if reply["written"]:
        return Text.assemble(
            ("awaited: the helper ran, the row was written", "bold green"), f" ({rows})"
        )
    return Text.assemble(
        ("not awaited: the helper never ran, no row written", "bold red"),
        f" ({rows}); the handler answered 200 anyway",
    )


def await_log(reply: Reply) -> Text:
    """What the handler got, and the warning with the line that created the coroutine."""
    text = Text()
    text.append("handler got: ", style="bold")
    text.append(f"{reply['got']}\n")
    warned = reply.get("warning")
    if warned is None:
        text.append("no warning: nothing was left un-awaited\n", style="green")
        return text
    text.append(f"{warned['category']}: {warned['message']}\n", style="bold yellow")
    text.append(f"  created at {warned['origin']}\n", style="yellow")
    text.append(f"    {warned['origin_line']}\n", style="dim")
    return text


def race_verdict(run: Race) -> Text:
    """Race: expected vs actual level, lost updates."""
    s = run.summary
    head = f"{s['sold']} sold of {s['stock']}: expected {s['expected']} left, actual {s['actual']}"
    if s["lost"] > 0:
        return Text.assemble(
            (f"{s['lost']} lost updates", "bold red"),
            f" ({head}): buyers read the same level and overwrote each other",
        )
    return Text.assemble(("0 lost updates", "bold green"), f" ({head}): every sale counted")


def race_log(run: Race) -> Text:
    """The timeline: each buy's read and write; a read already read by another is marked."""
    text = Text()
    text.append(" seq  read → wrote  began ms   done ms\n", style="bold")
    seen: set[int] = set()
    steps = run.summary["timeline"]
    for step in steps[:TIMELINE_ROWS]:
        stale = step["read"] in seen
        seen.add(step["read"])
        wrote = "-" if step["wrote"] is None else str(step["wrote"])
        line = f"{step['seq']:>4}  {step['read']:>4} → {wrote:>4}  {step['began_ms']:>8.1f}"
        text.append(f"{line}  {step['done_ms']:>8.1f}")
        text.append("  same read: lost\n" if stale else "\n", style="red" if stale else "")
    if len(steps) > TIMELINE_ROWS:
        text.append(f"… {len(steps) - TIMELINE_ROWS} more\n", style="dim")
    return text


def swallow_verdict(reply: Reply) -> Text:
    """Swallow: what the answer said vs what really failed."""
    said, really = reply["said"], reply["really_failed"]
    if really and not reply["failed"]:
        return Text.assemble(
            (f"answered {said!r} while {really} failed", "bold red"),
            ": the failure was swallowed",
        )
    return Text.assemble((f"answered {said!r}", "bold green"), f": {really} failure(s) surfaced")


def swallow_log(reply: Reply) -> Text:
    """The failures reported, and what the loop logged for a dropped task."""
    text = Text()
    for failure in reply["failed"]:
        text.append(f"reported: {failure}\n", style="green")
    if reply.get("loop_logged"):
        text.append("only trace, the loop's log when the task was collected:\n", style="bold")
        text.append(f"  {reply['loop_logged']}\n", style="yellow")
    if not reply["failed"] and not reply.get("loop_logged"):
        text.append("nothing reported: results of gather() never checked\n", style="yellow")
    return text
