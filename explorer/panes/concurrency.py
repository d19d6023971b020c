"""Concurrency pane: run a strategy against simulated upstreams and read it off a timeline."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.timer import Timer
from textual.widgets import Button, Input, Label, Select, Static

from server.monitor import Stall
from server.routes import concurrency as routes

from ..code_source import SourceBlock, source_of
from ..widgets.number_field import invalid_fields, number_input
from ..widgets.timeline import Bar, BarState, Timeline
from ..wording import counted
from .base import PatternPane


@dataclass(frozen=True)
class Strategy:
    """One way to run n upstream calls, and what it teaches."""

    key: str
    label: str
    lesson: str


STRATEGIES: tuple[Strategy, ...] = (
    Strategy(
        "sequential",
        "sequential awaits",
        "One await after another: the wall time is the sum of the calls. Blocking mode "
        "turns gather, TaskGroup and as_completed into this.",
    ),
    Strategy(
        "gather",
        "asyncio.gather",
        "All calls in flight at once: the wall time is the slowest call. One failure "
        "raises at once, and the other calls keep running.",
    ),
    Strategy(
        "gather_exceptions",
        "gather(return_exceptions=True)",
        "Failures come back as values next to the results: nothing is cancelled, every "
        "call gets its answer.",
    ),
    Strategy(
        "taskgroup",
        "asyncio.TaskGroup",
        "Structured concurrency: the first failure cancels the siblings, and the group "
        "raises an ExceptionGroup carrying every error.",
    ),
    Strategy(
        "as_completed",
        "asyncio.as_completed",
        "Results in the order they finish, not the order they started.",
    ),
    Strategy(
        "race",
        "race: FIRST_COMPLETED + cancel",
        "asyncio.wait(tasks, return_when=FIRST_COMPLETED), then cancel and await the "
        "losers so their finally blocks run. The guide passes bare coroutines to "
        "asyncio.wait, a TypeError since Python 3.11: wrap them in create_task. Blocking "
        "mode runs the guide's form.",
    ),
    Strategy(
        "timeout",
        "asyncio.timeout",
        "Everything still running at the deadline is cancelled. Blocking mode drops "
        "the timeout: one slow upstream holds the whole request.",
    ),
    Strategy(
        "bounded",
        "bounded: Semaphore(limit)",
        "At most `limit` calls at once: the 10-connection client pool is never "
        "oversubscribed. Blocking mode drops the semaphore.",
    ),
    Strategy(
        "unbounded",
        "unbounded: n tasks at once",
        "The pitfall: n calls race for 10 pooled connections. Calls that wait more than "
        "1 s for a connection fail with PoolTimeout.",
    ),
)
STRATEGY_BY_KEY = {strategy.key: strategy for strategy in STRATEGIES}

#: task states as the timeline draws them
_BAR_STATES: dict[str, BarState] = {"ok": "ok", "failed": "failed", "cancelled": "cancelled"}


def bars_of(report: dict[str, Any]) -> tuple[Bar, ...]:
    """The run's tasks as timeline bars (seconds from the run's start)."""
    bars = []
    for task in report["tasks"]:
        note = ""
        if task.get("error"):
            note = str(task["error"]).split(":", 1)[0]
        if report.get("winner") == task["index"]:
            note = "winner"
        bars.append(
            Bar(
                task["label"],
                task["start_ms"] / 1000.0,
                task["end_ms"] / 1000.0,
                _BAR_STATES.get(task["state"], "failed"),
                note,
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


class KeptRun(Vertical):
    """A finished run kept for comparison: its headline and its timeline."""

    DEFAULT_CSS = """
    KeptRun { height: auto; border-top: dashed $primary 40%; }
    KeptRun > Label { color: $text-muted; }
    """

    def __init__(self, report: dict[str, Any]) -> None:
        super().__init__()
        self.report = report

    def compose(self) -> ComposeResult:
        yield Label(headline(self.report))
        timeline = Timeline()
        timeline.bars = bars_of(self.report)
        timeline.span = self.report["wall_ms"] / 1000.0
        yield timeline


class ConcurrencyPane(PatternPane):
    """Nine ways to run n calls at once (or not), drawn as bars on one time axis."""

    SLUG: ClassVar[str] = "concurrency"
    TITLE: ClassVar[str] = "Concurrency"
    SUMMARY: ClassVar[str] = "gather, TaskGroup, races, timeouts and bounded fan-out"

    MAX_KEPT = 4

    DEFAULT_CSS = """
    ConcurrencyPane #controls { height: auto; }
    ConcurrencyPane #strategy { width: 36; height: auto; }
    ConcurrencyPane #params { height: auto; width: 1fr; }
    ConcurrencyPane #params Horizontal { height: auto; }
    ConcurrencyPane #params Label { width: 9; padding: 1 0 0 1; }
    ConcurrencyPane #params Input { width: 12; }
    ConcurrencyPane #buttons { height: auto; padding-left: 1; }
    ConcurrencyPane #buttons Button { margin-right: 1; min-width: 8; }
    ConcurrencyPane #lesson { height: auto; color: $text-muted; padding: 0 1; }
    ConcurrencyPane #lesson.-blocking { color: $error; }
    ConcurrencyPane #runs { height: 1fr; border: round $primary 40%; }
    ConcurrencyPane #summary { height: auto; min-height: 2; }
    """

    class RunDone(Message):
        """The server answered with a run report (or the run could not be made)."""

        def __init__(self, report: dict[str, Any] | None, error: str | None) -> None:
            super().__init__()
            self.report = report
            self.error = error

    running: reactive[bool] = reactive(False)
    strategy_key: reactive[str] = reactive("gather", init=False)
    report: reactive[dict[str, Any] | None] = reactive(None, init=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ticker: Timer | None = None
        self._began = 0.0
        self._began_wall = 0.0

    def compose(self) -> ComposeResult:
        with Horizontal(id="controls"):
            with Vertical(id="strategy"):
                yield Select(
                    [(s.label, s.key) for s in STRATEGIES],
                    value=self.strategy_key,
                    allow_blank=False,
                    # the app's keys (digits, b, r, c, q) must reach it, not search the menu
                    type_to_search=False,
                    id="strategy-select",
                )
                with Horizontal(id="buttons"):
                    yield Button("Run", id="run", variant="primary")
                    yield Button("Keep", id="keep", tooltip="Keep this run, to compare")
                    yield Button("Clear", id="clear", tooltip="Forget the kept runs")
            with Vertical(id="params"):
                yield Horizontal(
                    Label("tasks n"),
                    number_input("n", "5", 1, 200, "Upstream calls"),
                    Label("latency"),
                    number_input("latency", "0.2", 0, 10, "Upstream latency (s)"),
                    Label("jitter"),
                    number_input("jitter", "0.0", 0, 10, "Latency jitter (s)"),
                )
                yield Horizontal(
                    Label("fail rate"),
                    number_input("failure_rate", "0.0", 0, 1, "Failure probability"),
                    Label("timeout"),
                    number_input("timeout_s", "0.3", 0.01, 30, "Timeout (s)"),
                    Label("limit"),
                    number_input("limit", "5", 1, 50, "Concurrency limit"),
                )
        yield Static(id="lesson")
        with VerticalScroll(id="runs") as runs:
            runs.border_title = "tasks on a time axis (kept runs below)"
            yield Label("", id="current-headline")
            yield Timeline(id="timeline")
        yield Static(id="summary")

    def on_mount(self) -> None:
        self.context.blocking.subscribe(lambda _: self._show_lesson())
        self._show_lesson()

    # -- controls ------------------------------------------------------------------------

    @on(Select.Changed, "#strategy-select")
    def _strategy_changed(self, event: Select.Changed) -> None:
        if isinstance(event.value, str):
            self.strategy_key = event.value

    def watch_strategy_key(self) -> None:
        self._show_lesson()

    def _show_lesson(self) -> None:
        strategy = STRATEGY_BY_KEY[self.strategy_key]
        blocking = self.context.blocking.enabled
        lesson = self.query_one("#lesson", Static)
        text = strategy.lesson
        if blocking and strategy.key != "sequential":
            text = "Blocking mode: this strategy runs in its pitfall form. " + text
        lesson.update(text)
        lesson.set_class(blocking and strategy.key != "sequential", "-blocking")

    @on(Button.Pressed, "#run")
    def _run_pressed(self) -> None:
        self.action_run()

    @on(Button.Pressed, "#keep")
    def _keep_pressed(self) -> None:
        self.keep_current()

    @on(Button.Pressed, "#clear")
    def _clear_pressed(self) -> None:
        for kept in self.query(KeptRun):
            kept.remove()

    def action_run(self) -> None:
        """Validate the parameters and ask the server to run the strategy."""
        if self.running:
            self.notify("A run is still in progress.", severity="warning")
            return
        fields = [self.query_one(f"#{name}", Input) for name in _FIELDS]
        problems = invalid_fields(*fields)
        if problems:
            field, reason = problems[0]
            self.notify(reason, title="Invalid input", severity="error")
            field.focus()
            return
        body: dict[str, Any] = {"strategy": self.strategy_key}
        for name, cast in _FIELDS.items():
            body[name] = cast(self.query_one(f"#{name}", Input).value)
        self.running = True
        self._began = time.perf_counter()
        self._began_wall = time.time()
        # the ticker holds its label: a timer may fire while the pane is torn down
        summary = self.query_one("#summary", Static)
        self._ticker = self.set_interval(0.1, lambda: self._tick(summary))
        self.query_one("#summary", Static).update(Text("running…", style="dim italic"))
        self.run_strategy(body)

    def _tick(self, summary: Static) -> None:
        elapsed = time.perf_counter() - self._began
        summary.update(Text(f"running… {elapsed:.1f} s", style="dim italic"), layout=False)

    def keep_current(self) -> None:
        """Keep the current run under the live one, to compare strategies."""
        if self.report is None:
            self.notify("Run a strategy first.")
            return
        kept = list(self.query(KeptRun))
        if len(kept) >= self.MAX_KEPT:
            kept[0].remove()
        self.query_one("#runs", VerticalScroll).mount(KeptRun(self.report))

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
        timeline.span = report["wall_ms"] / 1000.0
        timeline.now = report["wall_ms"] / 1000.0
        self.query_one("#current-headline", Label).update(headline(report))
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


#: the run parameters, their JSON names and types
_FIELDS: dict[str, type] = {
    "n": int,
    "latency": float,
    "jitter": float,
    "failure_rate": float,
    "timeout_s": float,
    "limit": int,
}


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
