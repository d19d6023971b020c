"""A Gantt-style timeline: one bar per task on a shared time axis."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

BarState = Literal["running", "ok", "failed", "cancelled"]

_EIGHTHS = " ▏▎▍▌▋▊▉█"
_STYLE: dict[BarState, str] = {
    "running": "bold $accent",
    "ok": "$success",
    "failed": "$error",
    "cancelled": "$warning",
}
_GLYPH: dict[BarState, str] = {"running": "…", "ok": "✓", "failed": "✗", "cancelled": "⊘"}


@dataclass(frozen=True)
class Bar:
    """One task: seconds from the start of the run; ``end`` None while it runs."""

    label: str
    start: float
    end: float | None = None
    state: BarState = "running"
    note: str = ""

    def duration(self, now: float) -> float:
        return (self.end if self.end is not None else now) - self.start


def _bar_cells(start: float, end: float, scale: float, width: int) -> tuple[int, str]:
    """Left offset in cells and the bar drawn with eighth-cell precision at the end."""
    left = int(start / scale * width)
    length = max(0.0, (end - start) / scale * width)
    full, eighths = int(length), round((length - int(length)) * 8)
    if eighths == 8:
        full, eighths = full + 1, 0
    body = "█" * full + (_EIGHTHS[eighths] if eighths else "")
    return left, body or "▏"


class Timeline(Widget):
    """Bars for concurrent tasks; a running bar grows as ``now`` advances."""

    DEFAULT_CSS = """
    Timeline {
        height: auto;
        min-height: 3;
        padding: 0 1;
    }
    """

    bars: reactive[tuple[Bar, ...]] = reactive(())
    now: reactive[float] = reactive(0.0)
    #: seconds the axis spans at least (grows to fit the longest bar)
    span: reactive[float] = reactive(0.05)

    def watch_bars(self, old: tuple[Bar, ...], new: tuple[Bar, ...]) -> None:
        # Height follows the number of bars; relayout only when that changes.
        if len(old) != len(new):
            self.refresh(layout=True)

    LABEL_WIDTH = 5
    FIGURE_WIDTH = 30

    def render(self) -> Text:
        width = max(10, self.size.width - self.LABEL_WIDTH - self.FIGURE_WIDTH - 2)
        ends = [b.end if b.end is not None else self.now for b in self.bars]
        scale = max([self.span, *ends]) or 1.0
        text = Text(no_wrap=True, overflow="crop")
        if not self.bars:
            text.append("No run yet: choose a style and press Run.", style="dim italic")
            return text
        for bar, end in zip(self.bars, ends, strict=True):
            left, body = _bar_cells(bar.start, end, scale, width)
            style = self.app.theme_variables.get(_STYLE[bar.state].split("$")[-1], "")
            bold = "bold " if bar.state == "running" else ""
            text.append(f"{bar.label:>{self.LABEL_WIDTH - 1}} ", style="dim")
            text.append(" " * left)
            text.append(body, style=f"{bold}{style}")
            text.append(" " * max(1, width - left - len(body) + 1))
            figure = f"{_GLYPH[bar.state]} {bar.duration(self.now) * 1000:7.1f} ms {bar.note}"
            text.append(figure[: self.FIGURE_WIDTH].ljust(self.FIGURE_WIDTH), style=style)
            text.append("\n")
        text.append(" " * self.LABEL_WIDTH)
        text.append(self._axis(scale, width), style="dim")
        return text

    @staticmethod
    def _axis(scale: float, width: int) -> str:
        ticks = 4
        cells = [" "] * (width + 12)
        for i in range(ticks + 1):
            pos = round(i * width / ticks)
            label = f"{scale * i / ticks * 1000:.0f} ms" if i else "0"
            pos = min(pos, width + 12 - len(label))
            cells[pos : pos + len(label)] = label
        return "".join(cells).rstrip()
