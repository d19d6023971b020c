"""A Gantt-style timeline: one bar per task on a shared time axis.

A bar can carry two more spans than its own: ``inner``, the part where the work ran (the
server's handler inside a client's request), drawn solid inside a light bar; and
``ghost_end``, where a cancelled task would have ended, drawn dotted after it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

BarState = Literal["running", "ok", "failed", "cancelled"]

_EIGHTHS = " ▏▎▍▌▋▊▉█"
_STYLE: dict[BarState, str] = {
    "running": "accent",
    "ok": "success",
    "failed": "error",
    "cancelled": "warning",
}
_GLYPH: dict[BarState, str] = {"running": "…", "ok": "✓", "failed": "✗", "cancelled": "⊘"}
#: the light part of a bar that has an inner span (waiting, not working)
WAIT = "░"
#: what a cancelled task would still have taken
GHOST = "┄"
#: an axis never spans less than this: a run that took ~0 ms still gets a readable axis
MIN_SCALE_S = 0.01


@dataclass(frozen=True)
class Bar:
    """One task: seconds from the start of the run; ``end`` None while it runs."""

    label: str
    start: float
    end: float | None = None
    state: BarState = "running"
    note: str = ""
    #: (start, end) of the work inside the bar, e.g. the server's handler in a request
    inner: tuple[float, float] | None = None
    #: where the task would have ended had it not been cancelled
    ghost_end: float | None = None

    def duration(self, now: float) -> float:
        return (self.end if self.end is not None else now) - self.start


def _cells(start: float, end: float, scale: float, width: int) -> tuple[int, int, int]:
    """Left cell, whole cells and the eighths of the last cell of ``start..end``."""
    left = min(width - 1, max(0, int(start / scale * width)))
    length = max(0.0, (end - start) / scale * width)
    full, eighths = int(length), round((length - int(length)) * 8)
    if eighths == 8:
        full, eighths = full + 1, 0
    return left, min(full, width - left), eighths


def _bar_cells(start: float, end: float, scale: float, width: int) -> tuple[int, str]:
    """Left offset in cells and the bar drawn with eighth-cell precision at the end."""
    left, full, eighths = _cells(start, end, scale, width)
    body = "█" * full + (_EIGHTHS[eighths] if eighths and left + full < width else "")
    return left, body or "▏"


def nice_step(scale: float, most_ticks: int) -> float:
    """A round tick step (1, 2, 2.5 or 5 × 10^k seconds) giving at most ``most_ticks``."""
    rough = scale / max(1, most_ticks)
    power = 10 ** math.floor(math.log10(rough)) if rough > 0 else 1.0
    for factor in (1, 2, 2.5, 5, 10):
        if factor * power >= rough:
            return factor * power
    return 10 * power  # pragma: no cover - the loop always returns


def tick_label(seconds: float, scale: float) -> str:
    """``0``, ``250 ms``, ``1.5 s``, ``0.5 ms``: seconds on an axis of a second or more."""
    if seconds == 0:
        return "0"
    if scale >= 1:
        return f"{round(seconds, 6):g} s"
    return f"{round(seconds * 1000, 6):g} ms"


def axis_line(scale: float, width: int) -> str:
    """Ticks at round values under a bar area of ``width`` cells spanning ``scale`` s."""
    cells = [" "] * (width + 10)
    step = nice_step(scale, max(2, min(6, width // 9)))
    free_from = 0
    for i in range(int(scale / step + 1e-9) + 1):
        value = i * step
        label = tick_label(value, scale)
        pos = min(round(value / scale * width), len(cells) - len(label))
        if pos < free_from:
            continue  # would overlap the previous label
        cells[pos : pos + len(label)] = label
        free_from = pos + len(label) + 2
    return "".join(cells).rstrip()


class Timeline(Widget):
    """Bars for concurrent tasks; a running bar grows as ``now`` advances."""

    DEFAULT_CSS = """
    Timeline {
        height: auto;
        min-height: 2;
        padding: 0 1;
    }
    """

    bars: reactive[tuple[Bar, ...]] = reactive(())
    now: reactive[float] = reactive(0.0)
    #: seconds the axis spans at least (grows to fit the longest bar); panes that show
    #: several timelines together give them all the same span, so they share one scale
    span: reactive[float] = reactive(0.05)
    #: shown when there are no bars
    placeholder: reactive[str] = reactive("No run yet: choose a style and press Run.")

    def __init__(
        self, *, figure_width: int = 30, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.figure_width = figure_width

    def watch_bars(self, old: tuple[Bar, ...], new: tuple[Bar, ...]) -> None:
        # Height follows the number of bars; relayout only when that changes.
        if len(old) != len(new):
            self.refresh(layout=True)

    LABEL_WIDTH = 5

    def scale(self) -> float:
        """Seconds the axis spans: the span, or more if a bar reaches further."""
        ends: list[float] = [self.span, MIN_SCALE_S]
        for bar in self.bars:
            ends.append(bar.end if bar.end is not None else self.now)
            if bar.ghost_end is not None:
                ends.append(bar.ghost_end)
            if bar.inner is not None:
                ends.append(bar.inner[1])
        return max(ends)

    def bar_width(self) -> int:
        """Cells of the bar area (between the labels and the figures)."""
        return max(10, self.size.width - self.LABEL_WIDTH - self.figure_width - 2)

    def render(self) -> Text:
        width = self.bar_width()
        scale = self.scale()
        text = Text(no_wrap=True, overflow="crop")
        if not self.bars:
            text.append(self.placeholder, style="dim italic")
            return text
        colours = self.app.theme_variables  # a dict, read once per render
        for bar in self.bars:
            end = bar.end if bar.end is not None else self.now
            style = colours.get(_STYLE[bar.state], "")
            text.append(f"{bar.label:>{self.LABEL_WIDTH - 1}} ", style="dim")
            drawn = self._draw(text, bar, end, scale, width, style)
            text.append(" " * max(1, width - drawn + 1))
            figure = f"{_GLYPH[bar.state]} {bar.duration(self.now) * 1000:7.1f} ms {bar.note}"
            text.append(figure[: self.figure_width].ljust(self.figure_width), style=style)
            text.append("\n")
        text.append(" " * self.LABEL_WIDTH)
        text.append(axis_line(scale, width), style="dim")
        return text

    def _draw(self, text: Text, bar: Bar, end: float, scale: float, width: int, style: str) -> int:
        """Append the bar's cells; return how many cells it took."""
        bold = "bold " if bar.state == "running" else ""
        if bar.inner is None:
            left, body = _bar_cells(bar.start, end, scale, width)
            text.append(" " * left)
            text.append(body, style=f"{bold}{style}")
            used = left + len(body)
        else:
            # The whole bar light, the inner span solid: the wait and the work, one row.
            cells = [" "] * width
            left, full, eighths = _cells(bar.start, end, scale, width)
            for i in range(left, left + max(1, full + (1 if eighths else 0))):
                if i < width:
                    cells[i] = WAIT
            in_left, in_full, in_eighths = _cells(bar.inner[0], bar.inner[1], scale, width)
            for i in range(in_left, in_left + in_full):
                cells[i] = "█"
            if in_full == 0 or (in_eighths and in_left + in_full < width):
                # a sliver at the end, never nothing: a 1 ms handler is still seen
                cells[in_left + in_full] = _EIGHTHS[max(1, in_eighths)]
            used = len("".join(cells).rstrip())
            text.append("".join(cells[:used]), style=f"{bold}{style}")
        if bar.ghost_end is not None and bar.ghost_end > end:
            g_left, g_full, _ = _cells(end, bar.ghost_end, scale, width)
            g_left = max(g_left, used)
            # at least one cell: a ghost the figure mentions is never invisible
            ghost = GHOST * max(0, min(max(1, g_full), width - g_left))
            if ghost:
                text.append(" " * (g_left - used))
                text.append(ghost, style=f"dim {style}")
                used = g_left + len(ghost)
        return used
