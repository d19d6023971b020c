"""The latency bar docked on every screen: live loop lag, utilization and stalls."""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Label, Static

from fastasync_probe.monitor import MonitorSnapshot


def _ms(value: float) -> str:
    return f"{value:.0f} ms" if value >= 100 else f"{value:.1f} ms"


#: Sparkline scale (ms): a bar per step, so idle jitter below 1 ms stays flat and both a
#: 20 ms hiccup and a 1 s stall show.
LAG_STEPS_MS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


def lag_level(lag_ms: float) -> int:
    """The sparkline height of one window's max lag: the number of steps it reaches."""
    return sum(lag_ms >= step for step in LAG_STEPS_MS)


_BLOCKS = " ▁▂▃▄▅▆▇█"


def _level_colour(level: int) -> str:
    """The colour of a sparkline level: calm, a hiccup, a stall."""
    return "green" if level <= 1 else "yellow" if level <= 4 else "bold red"


class LagSparkline(Widget):
    """One cell per window, newest on the right, on an absolute log scale.

    (Textual's Sparkline scales between the series' own min and max, so an idle loop
    whose windows are all equal would draw as a full bar.)

    Drawn as one strip of segments, kept until the levels change: the gauge redraws it
    four times a second on the shared loop, and Textual's general path (a Rich ``Text``
    turned into styled lines) took ~1.4 ms a time, the idle UI's largest rendering cost,
    and a lag sample that lands in it is late by as much.
    """

    DEFAULT_CSS = """
    LagSparkline { height: 1; }
    """

    levels: reactive[tuple[int, ...]] = reactive(())

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._drawn: tuple[tuple[object, ...], Strip] | None = None

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.visual_style.rich_style
        key = (self.levels[-width:] if width else (), width, base)
        if self._drawn is not None and self._drawn[0] == key:
            return self._drawn[1]
        strip = Strip(_sparkline_segments(key[0], width, base), width)
        self._drawn = (key, strip)
        return strip


def _sparkline_segments(levels: tuple[int, ...], width: int, base: Style) -> list[Segment]:
    """``levels`` right-aligned in ``width`` cells, a segment per run of one style."""
    segments = [Segment(" " * (width - len(levels)), base)] if width > len(levels) else []
    top = len(LAG_STEPS_MS)
    run: list[str] = []
    run_colour = ""
    for level in levels:
        colour = _level_colour(level)
        if colour != run_colour and run:
            segments.append(Segment("".join(run), base + Style.parse(run_colour)))
            run = []
        run_colour = colour
        run.append(_BLOCKS[max(1, round(level / top * (len(_BLOCKS) - 1)))])
    if run:
        segments.append(Segment("".join(run), base + Style.parse(run_colour)))
    return segments


class LatencyBar(Horizontal):
    """Sparkline of per-window max lag (log steps) plus the rolling figures.

    Fed a :class:`MonitorSnapshot` by the app's gauge timer; redraws only in
    ``watch_snapshot``, and only the parts whose drawing changes: every repaint is time
    the shared loop does not serve requests.
    """

    DEFAULT_CSS = """
    LatencyBar {
        height: 1;
        background: $boost;
    }
    LatencyBar > Label { width: auto; padding: 0 1; color: $text-muted; }
    LatencyBar > LagSparkline { width: 1fr; min-width: 10; }
    /* fixed width: a gauge that changes size would relayout the whole screen */
    LatencyBar > #figures { width: 72; padding: 0 1; }
    """

    # repaint=False: the children repaint themselves, and only when their drawing changes
    snapshot: reactive[MonitorSnapshot | None] = reactive(None, always_update=True, repaint=False)

    def __init__(self) -> None:
        super().__init__()
        self._levels: tuple[int, ...] = ()
        self._figures: Text | None = None
        # Held, not queried: updates arrive from a timer, possibly while the app tears its
        # widgets down (children first), and a query would then find nothing and raise.
        self._sparkline = LagSparkline(id="lag-sparkline")
        self._figures_view = Static(id="figures")

    def compose(self) -> ComposeResult:
        yield Label("loop lag")
        yield self._sparkline
        yield self._figures_view

    def watch_snapshot(self, snapshot: MonitorSnapshot | None) -> None:
        if snapshot is None:
            return
        levels = tuple(lag_level(w.lag.max) for w in snapshot.windows)
        if levels != self._levels:
            self._levels = levels
            self._sparkline.levels = levels
        figures = self.describe(snapshot)
        if figures != self._figures:
            self._figures = figures
            # layout=False: only this line repaints (a layout pass costs ~20-50 ms).
            self._figures_view.update(figures, layout=False)

    @staticmethod
    def describe(snapshot: MonitorSnapshot) -> Text:
        """``p50 0.2 ms  p99 0.9 ms  max 3.1 ms  util 4%  stalls 0``."""
        lag = snapshot.lag
        text = Text.assemble(
            ("p50 ", "dim"),
            _ms(lag.p50),
            ("  p99 ", "dim"),
            _ms(lag.p99),
            ("  max ", "dim"),
            (_ms(lag.max), "bold red" if lag.max >= 50 else ""),
            ("  util ", "dim"),
            "n/a" if snapshot.utilization is None else f"{snapshot.utilization:.0%}",
            ("  stalls ", "dim"),
            (str(snapshot.stall_count), "bold red" if snapshot.stall_count else ""),
        )
        if snapshot.stall_count:
            text.append(f" ({_ms(snapshot.stall_total_ms)})", style="dim")
        return text
