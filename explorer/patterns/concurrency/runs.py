"""The Concurrency pane's runs: a run report as timeline bars, and a run kept to compare.

Every timeline shown together (the current run and the kept ones) is given the same span,
so one time scale serves them all: a run twice as long is drawn twice as long.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label

from explorer.widgets.timeline import Bar, BarState, Timeline

#: task states as the timeline draws them
_BAR_STATES: dict[str, BarState] = {"ok": "ok", "failed": "failed", "cancelled": "cancelled"}


def bars_of(report: dict[str, Any]) -> tuple[Bar, ...]:
    """The run's tasks as timeline bars (seconds from the run's start).

    A cancelled call that had started gets a ghost up to where its upstream would have
    answered (``planned_ms`` after it began), when that is later than its cancellation:
    what the cancellation saved.
    """
    bars = []
    for task in report["tasks"]:
        note = ""
        if task.get("error"):
            note = str(task["error"]).split(":", 1)[0]
            if task["error"] == "never started":
                note = "never started"
        if report.get("winner") == task["index"]:
            note = "winner"
        start, end = task["start_ms"] / 1000.0, task["end_ms"] / 1000.0
        ghost = None
        planned = task.get("planned_ms")
        if task["state"] == "cancelled" and planned is not None and note != "never started":
            would_end = start + planned / 1000.0
            # Only a call cut before its upstream's answer was due: on a busy loop a call
            # can still be waiting for an answer whose latency has passed.
            if would_end > end:
                ghost = would_end
                note = f"would take {planned:.0f} ms"
        bars.append(
            Bar(
                task["label"],
                start,
                end,
                _BAR_STATES.get(task["state"], "failed"),
                note,
                ghost_end=ghost,
            )
        )
    return tuple(bars)


def headline(report: dict[str, Any]) -> str:
    """``gather · 5 tasks · wall 203 ms · 5 ok``."""
    effective = report["effective"]
    name = (
        report["strategy"]
        if effective == report["strategy"]
        else (f"{report['strategy']} → {effective}")
    )
    counts = [f"{report[k]} {k}" for k in ("ok", "failed", "cancelled") if report.get(k)]
    return f"{name} · {len(report['tasks'])} tasks · wall {report['wall_ms']:.0f} ms · " + (
        ", ".join(counts) or "no tasks"
    )


def span_of(report: dict[str, Any]) -> float:
    """Seconds a run's timeline must span: its wall time, or a cancelled call's ghost."""
    ends = [float(report["wall_ms"]) / 1000.0]
    ends += [bar.ghost_end for bar in bars_of(report) if bar.ghost_end is not None]
    return max(ends)


class KeptRun(Vertical):
    """A finished run kept for comparison: its headline and its timeline."""

    DEFAULT_CSS = """
    KeptRun { height: auto; border-top: dashed $primary 40%; }
    KeptRun > Label { color: $text-muted; padding: 0 1; }
    """

    def __init__(self, report: dict[str, Any], figure_width: int) -> None:
        super().__init__()
        self.report = report
        self.timeline = Timeline(figure_width=figure_width)
        self.timeline.bars = bars_of(report)
        self.timeline.now = report["wall_ms"] / 1000.0

    def compose(self) -> ComposeResult:
        yield Label(f"kept: {headline(self.report)}")
        yield self.timeline
