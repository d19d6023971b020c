"""The report page's charts: a scenario's loop lag over its run, both forms, as inline SVG.

Drawn with matplotlib's object API (a ``Figure`` of its own, never pyplot's global state)
to SVG text that the page embeds as it is: no image file, no script, nothing fetched. Each
stall is a shaded span on the time axis and a mark at its length, and the mark carries an
SVG ``<title>``, so a browser shows its blamed line on hover; the page's caption lists the
same stalls for a reader who cannot hover (a printout, a pull request's preview).
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from explorer.tools.report.measure import FormResult, StallMark
from explorer.tools.report.runner import ScenarioResult

#: the two forms' colours: the colour-blind-safe pair of matplotlib's "tableau" set
RIGHT_COLOUR, PITFALL_COLOUR = "#1f77b4", "#d62728"
#: the lowest lag drawn: the axis is logarithmic (0.1 ms and 1,000 ms on one chart), and a
#: sample of 0 ms would have no place on it
LAG_FLOOR_MS = 0.01
#: stalls with a mark (and a hover text) per form; the caption counts the rest
MARKED_STALLS = 60


@dataclass(frozen=True, slots=True)
class Hover:
    """A mark's SVG group id and the text a browser shows over it."""

    gid: str
    text: str


def stall_text(form: str, mark: StallMark) -> str:
    """What a stall's mark says on hover: form, length, blamed line, route."""
    where = mark.location or "no line of the project's code on the stack"
    route = f" ({mark.route})" if mark.route else ""
    return f"{form}: {mark.duration_ms:.0f} ms stall at {where}{route}"


def _marked(form: FormResult) -> Iterator[tuple[int, StallMark]]:
    longest = sorted(form.stall_marks, key=lambda mark: -mark.duration_ms)[:MARKED_STALLS]
    yield from enumerate(sorted(longest, key=lambda mark: mark.at_s))


def lag_chart(result: ScenarioResult) -> str:
    """The lag of both forms on one time axis, stalls marked: an ``<svg>`` element."""
    # Imported here: matplotlib costs a few hundred ms to import, and only a page needs it.
    import matplotlib
    from matplotlib.figure import Figure

    key = result.scenario.key
    style: dict[Any, Any] = {
        "svg.fonttype": "none",  # text stays text: small, selectable, searchable
        "svg.hashsalt": key,  # ids fixed per chart, and unique among the page's charts
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
    }
    hovers: list[Hover] = []
    with matplotlib.rc_context(style):
        figure = Figure(figsize=(8.0, 2.7), dpi=100, layout="constrained")
        axes = figure.add_subplot()
        drawn = False
        for form, colour, label in (
            (result.right, RIGHT_COLOUR, f"right: {result.scenario.right}"),
            (result.pitfall, PITFALL_COLOUR, f"pitfall: {result.scenario.pitfall}"),
        ):
            if form.lag_series:
                times = [t for t, _ in form.lag_series]
                lags = [max(LAG_FLOOR_MS, lag) for _, lag in form.lag_series]
                # a sample's lag is the wait that ended at it: a step over the time
                # before the sample, never a ramp across a stall
                axes.plot(
                    times, lags, color=colour, linewidth=1.1, label=label, drawstyle="steps-pre"
                )
                drawn = True
            for index, mark in _marked(form):
                end = mark.at_s + mark.duration_ms / 1000.0
                axes.axvspan(mark.at_s, end, color=colour, alpha=0.15, linewidth=0)
                gid = f"stall-{_slug(key)}-{form.form}-{index}"
                (point,) = axes.plot(
                    [mark.at_s], [max(LAG_FLOOR_MS, mark.duration_ms)], marker="v",
                    markersize=6, color=colour, linestyle="none",
                )  # fmt: skip
                point.set_gid(gid)
                hovers.append(Hover(gid, stall_text(form.form, mark)))
        if not drawn:
            axes.text(0.5, 0.5, "no lag samples", transform=axes.transAxes, ha="center")
        axes.set_yscale("log")
        axes.set_ylabel("loop lag (ms, log)")
        axes.set_xlabel("seconds from the start of the form (▼ a stall, at its length)")
        axes.grid(axis="y", alpha=0.25)
        if drawn:
            # above the plot, not on it: the lines and marks are what the chart is for
            axes.legend(
                loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=2, fontsize=8, frameon=False
            )
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    return with_hover_titles(_inline(buffer.getvalue()), hovers)


def _inline(svg: str) -> str:
    """The ``<svg>`` element alone: no XML declaration or DOCTYPE inside an HTML page, and
    no RDF metadata block (its namespaces are URLs a reader would take for requests)."""
    svg = svg[svg.index("<svg") :]
    return re.sub(r"\s*<metadata>.*?</metadata>", "", svg, count=1, flags=re.S)


def with_hover_titles(svg: str, hovers: Sequence[Hover]) -> str:
    """Each mark's group given an SVG ``<title>`` (escaped): the browser's hover text."""
    for hover in hovers:
        opening = f'<g id="{hover.gid}">'
        title = f"<title>{html.escape(hover.text)}</title>"
        svg = svg.replace(opening, opening + title, 1)
    return svg


def _slug(key: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in key)
