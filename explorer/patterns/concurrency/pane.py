"""Concurrency pane: run a strategy against simulated upstreams and read it off a timeline.

Picking a strategy fills the fields with values that make its difference show (a jitter
for the race, a limit under n for the semaphore...); the user can change them. The current
run and the kept ones share one time scale.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.timer import Timer
from textual.widgets import Button, Input, Label, Select, Static

from explorer.code_source import SourceBlock, source_of
from explorer.pane import Lesson, LessonLine, PatternPane
from explorer.patterns.concurrency.runs import KeptRun, bars_of, headline, span_of
from explorer.patterns.concurrency.strategies import FIELDS, STRATEGIES, STRATEGY_BY_KEY, Strategy
from explorer.widgets.number_field import number_input
from explorer.widgets.timeline import MIN_SCALE_S, Timeline
from explorer.wording import counted
from fastasync_probe.monitor import Stall
from server.patterns.concurrency import router as routes

__all__ = ["STRATEGIES", "STRATEGY_BY_KEY", "ConcurrencyPane", "KeptRun", "Strategy", "bars_of"]

#: the figures column of every timeline of the pane (the same for all: one scale)
FIGURE_WIDTH = 32

#: each field of FIELDS, in screen order: (name, label, low, high, meaning)
FIELD_SPECS: tuple[tuple[str, str, float, float, str], ...] = (
    ("n", "tasks n", 1, 200, "Upstream calls"),
    ("latency", "latency", 0, 10, "Upstream latency (s)"),
    ("jitter", "jitter", 0, 10, "Latency jitter (s)"),
    ("failure_rate", "fail rate", 0, 1, "Failure probability"),
    ("timeout_s", "timeout", 0.01, 30, "Timeout (s)"),
    ("limit", "limit", 1, 50, "Concurrency limit"),
)
#: the fields stand three to a row, under the strategy
FIELDS_PER_ROW = 3


class ConcurrencyPane(
    PatternPane,
    slug="concurrency",
    title="Concurrency",
    summary="gather, TaskGroup, races, timeouts and bounded fan-out",
):
    """Nine ways to run n calls at once (or not), drawn as bars on one time axis."""

    MAX_KEPT = 4

    DEFAULT_CSS = """
    ConcurrencyPane .row { height: 1; }
    ConcurrencyPane #strategy-select { width: 36; }
    ConcurrencyPane .row Button { margin-left: 1; min-width: 7; }
    ConcurrencyPane .row Label { width: 11; padding-left: 1; }
    ConcurrencyPane .row Input { width: 8; margin-right: 2; }
    ConcurrencyPane #runs {
        height: 1fr;
        min-height: 4;
        border: round $primary 40%;
        border-title-color: $text;  /* the run's headline: read, not decoration */
    }
    ConcurrencyPane #summary { height: auto; }
    """

    @dataclass
    class RunDone(Message):
        """The server answered with a run report (or the run could not be made)."""

        report: dict[str, Any] | None
        error: str | None

    strategy_key: reactive[str] = reactive("gather", init=False)
    report: reactive[dict[str, Any] | None] = reactive(None, init=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ticker: Timer | None = None
        self._began = 0.0
        self._began_wall = 0.0

    def compose(self) -> ComposeResult:
        # Compose order is reading order (and Tab order): the strategy and the buttons on
        # the first row, then the fields left to right, row by row.
        values = STRATEGY_BY_KEY[self.strategy_key].values()
        with Horizontal(classes="row"):
            yield Select(
                [(s.label, s.key) for s in STRATEGIES],
                value=self.strategy_key,
                allow_blank=False,
                # the app's keys (digits, b, r, c, q) must reach it, not search the menu
                type_to_search=False,
                compact=True,
                id="strategy-select",
            )
            yield Button("Run", id="run", variant="primary", compact=True)
            yield Button("Keep", id="keep", tooltip="Keep this run, to compare", compact=True)
            yield Button("Clear", id="clear", tooltip="Forget the kept runs", compact=True)
        for first in range(0, len(FIELD_SPECS), FIELDS_PER_ROW):
            with Horizontal(classes="row"):
                for name, label, low, high, meaning in FIELD_SPECS[first : first + FIELDS_PER_ROW]:
                    yield Label(label)
                    yield number_input(name, values[name], low, high, meaning)
        yield Lesson(id="lesson")
        with VerticalScroll(id="runs") as runs:
            # the title becomes the run's headline
            runs.border_title = "tasks on a time axis"
            runs.border_subtitle = "✓ ok ✗ failed ⊘ cancelled ┄ would have run · kept: same scale"
            yield Timeline(id="timeline", figure_width=FIGURE_WIDTH)
        yield Static(id="summary")

    # -- controls ------------------------------------------------------------------------

    @on(Select.Changed, "#strategy-select")
    def _strategy_changed(self, event: Select.Changed) -> None:
        if isinstance(event.value, str) and event.value != self.strategy_key:
            self.strategy_key = event.value
            self.apply_defaults()

    def apply_defaults(self) -> None:
        """Fill the fields with the values that show the chosen strategy's difference."""
        for name, value in STRATEGY_BY_KEY[self.strategy_key].values().items():
            self.query_one(f"#{name}", Input).value = value

    def watch_strategy_key(self) -> None:
        self.show_lesson()

    def lesson_of(self, blocking: bool) -> LessonLine:
        return STRATEGY_BY_KEY[self.strategy_key].line(blocking)

    @on(Button.Pressed, "#clear")
    def clear_kept(self) -> None:
        """Forget the kept runs."""
        self.query(KeptRun).remove()
        self.call_after_refresh(self.rescale)

    @on(Button.Pressed, "#run")
    def action_run(self) -> None:
        """Validate the parameters and ask the server to run the strategy."""
        if self.still_running("A run is still in progress."):
            return
        if not self.fields_valid(*(self.query_one(f"#{name}", Input) for name in FIELDS)):
            return
        body: dict[str, Any] = {"strategy": self.strategy_key}
        for name, cast in FIELDS.items():
            body[name] = cast(self.query_one(f"#{name}", Input).value)
        self.running = True
        self._began = time.perf_counter()
        self._began_wall = time.time()
        # the ticker holds its label: a timer may fire while the pane is torn down
        summary = self.query_one("#summary", Static)
        self._ticker = self.set_interval(0.1, lambda: self._tick(summary))
        summary.update(Text("running…", style="dim italic"))
        self.run_strategy(body)

    def _tick(self, summary: Static) -> None:
        elapsed = time.perf_counter() - self._began
        summary.update(Text(f"running… {elapsed:.1f} s", style="dim italic"), layout=False)

    @on(Button.Pressed, "#keep")
    def keep_current(self) -> None:
        """Keep the current run under the live one, to compare strategies."""
        if self.report is None:
            self.notify("Run a strategy first.")
            return
        kept = list(self.query(KeptRun))
        if len(kept) >= self.MAX_KEPT:
            kept[0].remove()
        self.query_one("#runs", VerticalScroll).mount(KeptRun(self.report, FIGURE_WIDTH))
        self.call_after_refresh(self.rescale)

    def rescale(self) -> None:
        """One time scale for every run on screen: the span of the longest one."""
        reports = [kept.report for kept in self.query(KeptRun) if kept.is_attached]
        if self.report is not None:
            reports.append(self.report)
        span = max([MIN_SCALE_S, *(span_of(r) for r in reports)])
        self.query_one("#timeline", Timeline).span = span
        for kept in self.query(KeptRun):
            kept.timeline.span = span

    # -- the run -------------------------------------------------------------------------

    @work(exclusive=True, group="concurrency-run")
    async def run_strategy(self, body: dict[str, Any]) -> None:
        """POST the run to the server; it makes the upstream calls and times every task."""
        try:
            response = await self.context.http.post("/concurrency/run", json=body)
            if response.status_code == 422:
                detail = response.json()["detail"]
                raise ValueError("; ".join(str(item.get("msg", item)) for item in detail))
            response.raise_for_status()
            self.post_message(self.RunDone(response.json(), None))
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            self.post_message(self.RunDone(None, f"{type(exc).__name__}: {exc}"))

    def on_concurrency_pane_run_done(self, message: RunDone) -> None:
        if self._ticker is not None:
            self._ticker.stop()
            self._ticker = None
        self.running = False
        if message.report is None:
            self.query_one("#summary", Static).update(
                Text(f"The run failed: {message.error}", style="bold red")
            )
            return
        self.report = message.report

    def watch_report(self, report: dict[str, Any] | None) -> None:
        if report is None:
            return
        timeline = self.query_one("#timeline", Timeline)
        timeline.bars = bars_of(report)
        timeline.now = report["wall_ms"] / 1000.0
        self.rescale()
        self.query_one("#runs", VerticalScroll).border_title = headline(report)
        monitor = self.context.monitor
        lag_max = monitor.lag(window_s=report["wall_ms"] / 1000.0 + 0.1).max
        stalls = [s for s in monitor.stalls_after(0) if s.started_at >= self._began_wall]
        self.query_one("#summary", Static).update(describe(report, lag_max, stalls))

    # -- code view -----------------------------------------------------------------------

    def code_blocks(self, stall: Stall | None = None) -> list[SourceBlock]:
        effective = self.report["effective"] if self.report else self.strategy_key
        implementation = routes.STRATEGY_FUNCTIONS[effective]
        return [
            source_of(implementation, f"server: {effective}"),
            source_of(ConcurrencyPane.run_strategy, "client: this pane's worker"),
        ]


def describe(report: dict[str, Any], lag_max_ms: float, stalls: list[Stall]) -> Text:
    """What happened, why, and what the loop went through meanwhile."""
    text = Text()
    note = str(report.get("note", ""))
    if report.get("blocking_mode") and not note.startswith("Blocking mode"):
        text.append("blocking mode · ", style="bold red")
    if report.get("error"):
        text.append(str(report["error"]), style="bold yellow")
        text.append("\n")
    text.append(note)
    text.append("\nloop lag max ")
    text.append(f"{lag_max_ms:.1f} ms", style="bold red" if lag_max_ms > 50 else "")
    in_requests = [s for s in stalls if s.route]
    if in_requests:
        text.append(f" · {counted(len(in_requests), 'stall')} in handlers", style="bold red")
    else:
        text.append(" · no stall in the handlers", style="green")
    return text
