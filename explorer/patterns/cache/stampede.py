"""The stampede's figure: upstream calls for n concurrent misses, with and without single
flight, as the upstream counted them, drawn to the same scale.

Beside it, the longest a caller waited in the handler (server side), which is not the
lesson: with single flight every caller waits for the one upstream call, without it every
caller makes its own, all at once; either way a caller waits about one upstream delay. What
single flight saves is the upstream's load: one call instead of n. (The wall time of the
whole burst, in the run table, also holds this client's own connection set-up and the
shared loop's delays.)
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text

BAR = 16
FORMS = ("single flight", "no single flight")


@dataclass(frozen=True)
class StampedeRun:
    """One stampede: ``callers`` concurrent reads of a cold key."""

    single_flight: bool
    callers: int
    upstream_calls: int
    wall_ms: float
    #: the longest a caller waited in the handler (server side): about one upstream delay
    longest_wait_ms: float

    @property
    def form(self) -> str:
        return FORMS[0] if self.single_flight else FORMS[1]


def stampede_figure(runs: dict[str, StampedeRun], latest: StampedeRun) -> Text:
    """Upstream calls of the latest stampede and the other form's last one, to one scale;
    then why the wall time is not the lesson."""
    text = Text()
    scale = max(run.callers for run in runs.values())
    for form in FORMS:
        run = runs.get(form)
        text.append(f"{form:<17}", style="bold" if run is latest else "dim")
        if run is None:
            text.append("press b and run it again to compare\n", style="dim italic")
            continue
        cells = max(1, round(BAR * run.upstream_calls / max(1, scale)))
        text.append("█" * cells, style="green" if run.single_flight else "red")
        calls = f" {run.upstream_calls} for {run.callers} callers"
        text.append(calls, style="bold")
        pad = BAR - cells + 20 - len(calls)
        text.append(f"{'':<{pad}} waited ≤ {run.longest_wait_ms:.0f} ms\n", style="dim")
    text.append(
        "Either way each caller waits about one upstream delay (for the one call, or for "
        "its own): the time is not the lesson, the upstream's load is.",
        style="dim",
    )
    return text
