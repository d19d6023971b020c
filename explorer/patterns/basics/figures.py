"""The Basics pane's CPU comparison: the loop's lag while the work ran on it, and offloaded.

The lesson of offloading is the loop's responsiveness, not the wall time: on a small
machine the worker processes share the cores (and pay for pickling), so a batch can take
as long as on the loop. What differs is the lag: a stall per handler on the loop, next to
nothing offloaded. The pool's start-up is timed apart, so it is not mistaken for either.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget


@dataclass(frozen=True)
class RunLag:
    """What the event loop went through during one batch of CPU work."""

    count: int
    n: int
    wall_s: float
    lag_max_ms: float
    stalls: int
    stall_ms: float
    #: the style that ran, when it is not the row's own ("offload in blocking mode")
    via: str = ""


@dataclass(frozen=True)
class LoopComparisonView:
    """The last batch of each kind, and the pool's start-up."""

    on_loop: RunLag | None = None
    offloaded: RunLag | None = None
    #: which row the latest batch filled: "loop" or "offloaded"
    latest: str = ""
    pool_workers: int = 0
    pool_startup_s: float | None = None
    #: whether the latest batch's own request started the pool (then it was timed apart)
    pool_started_now: bool = False


#: a bigger lag than this is a stall a user feels (the monitor's threshold is 15 ms)
FELT_MS = 50.0
#: columns: name, requests, wall, lag max, stalls (the rest of the line)
_COLUMNS = (23, 12, 8, 11)


def _row(text: Text, name: str, run: RunLag | None, latest: bool, hint: str) -> None:
    width, requests, wall, lag = _COLUMNS
    marker = "▶ " if latest else "  "
    text.append(f"{marker}{name:<{width - 2}}", style="bold" if latest else "")
    if run is None:
        text.append(f"not run yet: {hint}", style="dim italic")
        return
    lag_style = "bold red" if run.lag_max_ms > FELT_MS else "bold green"
    text.append(f"{f'{run.count}×{run.n:,}':<{requests}}")
    text.append(f"{f'{run.wall_s:.3f} s':>{wall}}")
    text.append(f"{f'{run.lag_max_ms:.1f} ms':>{lag}}", style=lag_style)
    if run.stalls:
        text.append(f"  {run.stalls} ({run.stall_ms:.0f} ms)", style="bold red")
    else:
        text.append("  none", style="green")
    if run.via:
        text.append(f"  {run.via}", style="dim")


def comparison_text(view: LoopComparisonView) -> Text:
    """Four lines: a header, the run on the loop, the offloaded run, the pool's start-up."""
    width, requests, wall, lag = _COLUMNS
    text = Text(no_wrap=True, overflow="ellipsis")
    header = f"{'last run of each':<{width}}{'requests':<{requests}}{'wall':>{wall}}"
    text.append(f"{header}{'lag max':>{lag}}  stalls (handlers)\n", style="dim")
    _row(text, "CPU work on the loop", view.on_loop, view.latest == "loop", "CPU loop style")
    text.append("\n")
    _row(text, "CPU work offloaded", view.offloaded, view.latest == "offloaded", "offload style")
    text.append("\n")
    if view.pool_startup_s is None:
        text.append("pool start-up: not yet (the first offloaded run starts it)", style="dim")
    else:
        when = "just now" if view.pool_started_now else "earlier"
        text.append(
            f"pool start-up {view.pool_startup_s:.2f} s ({view.pool_workers} workers) {when}, "
            "timed apart from the runs",
            style="dim",
        )
    return text


class LoopComparison(Widget):
    """Side by side: the loop's lag with the CPU work on it, and with it offloaded."""

    DEFAULT_CSS = """
    LoopComparison { height: 4; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    view: reactive[LoopComparisonView] = reactive(LoopComparisonView)

    def render(self) -> Text:
        return comparison_text(self.view)
