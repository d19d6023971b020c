"""The Basics pane's five handler styles, what a batch measured, and how the pane says it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.text import Text

from explorer.pane import Teaching
from explorer.wording import counted
from fastasync_probe.monitor import Stall
from server.patterns.basics import router as routes


@dataclass(frozen=True)
class HandlerStyle(Teaching):
    """One of the five ways to write the handler (its pitfall: what blocking mode runs)."""

    key: str
    label: str
    path: str
    parameter: str  # "delay" or "n"
    handler: Callable[..., Any]

    def on_loop(self, blocking: bool) -> bool:
        """Whether the handler's work runs on the event loop (a pitfall form)."""
        return self.key in {"blocking", "cpu"} or (blocking and bool(self.pitfall))


STYLES: tuple[HandlerStyle, ...] = (
    HandlerStyle(
        "async",
        "async def + await",
        "/basics/async",
        "delay",
        routes.async_sleep,
        lesson="While one request awaits, the loop serves the others: the handlers (█) overlap; "
        "N × d seconds take about d.",
        pitfall="Blocking mode: time.sleep, not await. The handlers (█) run in turn; the client "
        "waits on the same loop.",
    ),
    HandlerStyle(
        "sync",
        "def (threadpool)",
        "/basics/sync",
        "delay",
        routes.sync_sleep,
        lesson="A plain def runs on FastAPI's threadpool (40 threads): blocking is safe there; "
        "the handlers (█) overlap.",
    ),
    HandlerStyle(
        "blocking",
        "time.sleep in async def",
        "/basics/blocking",
        "delay",
        routes.blocking_sleep,
        lesson="The classic mistake: time.sleep holds the loop. The handlers (█) run one after "
        "another; this UI freezes too.",
    ),
    HandlerStyle(
        "cpu",
        "CPU loop in async def",
        "/basics/cpu",
        "n",
        routes.cpu_inline,
        lesson="No await, no chance to switch: each handler (█) holds the loop for its whole "
        "computation.",
    ),
    HandlerStyle(
        "offload",
        "CPU offloaded to a process",
        "/basics/offload",
        "n",
        routes.cpu_offloaded,
        lesson="Worker processes do the work; the handler only awaits it: the loop stays free. "
        "Compare the lag, not the wall.",
        pitfall="Blocking mode: the work stays on the loop, exactly like the CPU style: compare "
        "the lag.",
    ),
)
STYLE_BY_KEY = {style.key: style for style in STYLES}


@dataclass(frozen=True)
class BatchPlan:
    """What the user asked for."""

    style: HandlerStyle
    count: int
    params: dict[str, float | int]


@dataclass(frozen=True)
class BatchSummary:
    """What a finished batch measured."""

    plan: BatchPlan
    wall_s: float
    lag_max_ms: float
    stalls: tuple[Stall, ...]
    failures: int
    blocking_mode: bool
    #: (start, end) of each handler on the server, seconds from the batch's start
    handler_spans: tuple[tuple[float, float], ...] = ()
    #: when the client read each answer, seconds from the batch's start
    client_ends: tuple[float, ...] = ()

    @property
    def in_handlers(self) -> tuple[Stall, ...]:
        """The stalls a request caused (the rest: this UI, a GC pass...)."""
        return tuple(s for s in self.stalls if s.route)


def peak_overlap(spans: Sequence[tuple[float, float]], tolerance_s: float = 0.002) -> int:
    """Most handlers running at the same moment (back to back within ``tolerance_s``: 1)."""
    edges = sorted([(start + tolerance_s, 1) for start, _ in spans] + [(e, -1) for _, e in spans])
    peak = current = 0
    for _, step in edges:  # at a tie the end (-1) sorts first
        current += step
        peak = max(peak, current)
    return peak


def describe(summary: BatchSummary) -> Text:
    """What ran and how long; how the handlers ran on the server; what the loop went through.

    Short lines (under 72 characters): the pane's inner width at 100×30.
    """
    plan = summary.plan
    delay = float(plan.params["delay"])
    text = Text.assemble(
        (f"{plan.count} × {delay:g} s", "bold"),
        " → wall ",
        (f"{summary.wall_s:.3f} s", "bold"),
        (f": {delay:g} s if all at once, {delay * plan.count:g} s one by one", "dim"),
    )
    if summary.failures:
        text.append(f" · {summary.failures} failed", style="bold red")
    text.append("\n")
    if summary.blocking_mode:
        text.append("blocking mode · ", style="bold red")
    spans = summary.handler_spans
    if len(spans) > 1:
        peak = peak_overlap(spans)
        text.append("server: the handlers ran ")
        if peak == 1:
            text.append("one after another", style="bold red")
            if plan.style.on_loop(summary.blocking_mode):
                text.append("\n")
                text.append(client_note(summary))
        else:
            text.append(f"up to {peak} at once", style="bold green")
    text.append("\n")
    text.append(lag_line(summary))
    return text


def client_note(summary: BatchSummary) -> str:
    """Why the client's bars do not show the queue: the client runs on the frozen loop."""
    ends = summary.client_ends
    if len(ends) > 1 and max(ends) - min(ends) <= 0.15 * summary.wall_s:
        return "the client's bars (░) end together: it waits on the same frozen loop"
    return "the client (░) reads an answer only while no handler holds the loop"


def lag_line(summary: BatchSummary) -> Text:
    """``loop lag max 205 ms · 5 stalls (1000 ms) at <line>`` for the batch."""
    text = Text("loop lag max ")
    text.append(f"{summary.lag_max_ms:.1f} ms", style="bold red" if summary.lag_max_ms > 50 else "")
    in_requests = summary.in_handlers
    elsewhere = [s for s in summary.stalls if not s.route]
    if in_requests:
        total = sum(s.duration_ms for s in in_requests)
        where = next((s.location for s in in_requests if s.location), "an unsampled line")
        text.append(f" · {counted(len(in_requests), 'stall')} ({total:.0f} ms) at ")
        text.append(where, style="bold yellow")
    else:
        text.append(" · no stall in the handlers", style="green")
    if elsewhere:
        # Outside any request: this UI's own rendering, a GC pass... the loop is shared.
        total = sum(s.duration_ms for s in elsewhere)
        text.append(f" (+{len(elsewhere)} outside requests, {total:.0f} ms)", style="dim")
    return text


def describe_cpu(summary: BatchSummary) -> Text:
    """One line for a CPU batch: the loop's figures are in the comparison below it."""
    plan = summary.plan
    text = Text.assemble(
        (f"{plan.count} × n={int(plan.params['n']):,}", "bold"),
        " → wall ",
        (f"{summary.wall_s:.3f} s", "bold"),
    )
    if summary.failures:
        text.append(f" · {summary.failures} failed", style="bold red")
    where = next((s.location for s in summary.in_handlers if s.location), None)
    if where:
        text.append(" · stalled at ")
        text.append(where, style="bold yellow")
    elif not summary.in_handlers:
        text.append(" · no stall in the handlers", style="green")
    return text
