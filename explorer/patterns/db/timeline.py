"""The dashboard's queries on one time axis: when each waited, and when the database ran it.

Each row is one query of ``GET /db/dashboard``: ``░`` while it was in the driver's hands but
not running (waiting for the one connection), ``█`` while the database ran it (by the
database's own clock), ``✗`` where it failed. Every row shares one scale, with millisecond
ticks, wide enough for the queries run one after another: gathered on the pool they are a
short column of bars at the left; on one connection they are a staircase across the axis.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from rich.console import Console, ConsoleOptions
from rich.text import Text

#: the query-name column and the value column, in cells
NAME_WIDTH = 13
VALUE_WIDTH = 14
#: the narrowest axis drawn (below it the figure would say nothing)
MIN_AXIS = 12
#: tick steps tried, in ms, smallest first: the first that leaves room for its labels wins
STEPS_MS = (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000)
LEGEND = "█ ran ░ waited"


@dataclass(frozen=True)
class QuerySpan:
    """One query as the figure draws it, in ms since the dashboard began."""

    name: str
    start_ms: float
    end_ms: float
    ran_ms: float | None
    done_ms: float | None
    value: int | None
    error: str | None

    @classmethod
    def of(cls, record: dict[str, Any]) -> QuerySpan:
        """From one ``queries`` item of the dashboard's JSON."""
        return cls(
            str(record["name"]),
            float(record["start_ms"]),
            float(record["end_ms"]),
            None if record.get("ran_ms") is None else float(record["ran_ms"]),
            None if record.get("done_ms") is None else float(record["done_ms"]),
            record.get("value"),
            record.get("error"),
        )


def axis_span_ms(spans: list[QuerySpan], latency_ms: float) -> float:
    """The axis: the wall time, and never less than the queries' sum (one after another),
    so that both forms are drawn on the same scale and the right one looks as short as it is."""
    ends = [s.end_ms for s in spans]
    return max(1.0, max(ends, default=0.0), latency_ms * len(spans))


def tick_step(span_ms: float, width: int) -> int:
    """The smallest step whose labels (``250`` and a space either side) all fit."""
    for step in STEPS_MS:
        label = len(f"{int(span_ms // step) * step}") + 2
        if width * step / span_ms >= label:
            return step
    return STEPS_MS[-1]


def column(ms: float, span_ms: float, width: int) -> int:
    """The cell ``ms`` falls in (rounded, so one query's end and the next one's start
    share a boundary, never a cell)."""
    return min(width, max(0, round(width * ms / span_ms)))


def bar_cells(span: QuerySpan, span_ms: float, width: int) -> str:
    """One query's row of the axis: ``░`` waiting, ``█`` running, ``✗`` failed."""
    cells = [" "] * width
    start = column(span.start_ms, span_ms, width)
    end = max(start + 1, column(span.end_ms, span_ms, width))
    for i in range(start, min(width, end)):
        cells[i] = "░"
    if span.ran_ms is not None and span.done_ms is not None:
        ran = column(span.ran_ms, span_ms, width)
        done = max(ran + 1, column(span.done_ms, span_ms, width))
        for i in range(ran, min(width, done)):
            cells[i] = "█"
    else:
        cells[min(width - 1, max(0, end - 1))] = "✗"
    return "".join(cells)


def tick_row(span_ms: float, width: int) -> str:
    """Labels at every step, ``0    50   100``, within the axis's ``width`` cells."""
    step = tick_step(span_ms, width)
    cells = [" "] * width
    t = 0
    while t <= span_ms:
        label = f"{t}"
        at = min(column(t, span_ms, width), width - len(label))
        if at >= 0 and all(c == " " for c in cells[max(0, at - 1) : at + len(label) + 1]):
            cells[at : at + len(label)] = label
        t += step
    return "".join(cells)


class QueryTimeline:
    """A Rich renderable: the rows fill the width it is given (more room, a finer axis)."""

    def __init__(self, spans: list[QuerySpan], latency_ms: float) -> None:
        self.spans = spans
        self.latency_ms = latency_ms
        # a little past the last query, so the last tick's label fits after its mark
        self.span_ms = axis_span_ms(spans, latency_ms) * 1.08

    def axis_width(self, width: int) -> int:
        return max(MIN_AXIS, width - NAME_WIDTH - VALUE_WIDTH - 2)

    def rows(self, width: int) -> list[Text]:
        """The figure's lines for a given width (the tests read these)."""
        axis = self.axis_width(width)
        lines = []
        head = Text(f"{'time (ms)':<{NAME_WIDTH}} ", style="dim")
        ticks = tick_row(self.span_ms, axis)
        head.append(f"{ticks} ", style="dim")
        head.append(LEGEND[:VALUE_WIDTH], style="dim")
        lines.append(head)
        for span in self.spans:
            line = Text(f"{span.name:<{NAME_WIDTH}} ", style="bold")
            cells = bar_cells(span, self.span_ms, axis)
            for cell in cells:
                style = {"█": "green", "░": "yellow", "✗": "bold red"}.get(cell, "")
                line.append(cell, style=style)
            line.append(" ")
            if span.error:
                kind = span.error.split(":", 1)[0]
                line.append(kind[:VALUE_WIDTH], style="bold red")
            else:
                line.append(f"{span.value}"[:VALUE_WIDTH], style="dim")
            lines.append(line)
        return lines

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Text]:
        for line in self.rows(options.max_width):
            line.no_wrap = True
            line.overflow = "crop"
            yield line


def displayed_bars(lines: list[str]) -> list[tuple[int, int]]:
    """The ``█`` cells of each query row of a rendered figure: ``(first, last)`` columns.

    What a reader sees, read back from the text (the tests use it); a failed query that
    never ran has none and is left out.
    """
    bars = []
    for line in lines[1:]:
        if "█" in line:
            bars.append((line.index("█"), line.rindex("█")))
    return bars
