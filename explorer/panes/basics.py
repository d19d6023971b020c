"""Basics pane: fire N concurrent requests at one handler style and watch them on a timeline."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
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
from textual.widgets import Button, Input, Label, RadioButton, RadioSet, Static

from server.monitor import Stall
from server.routes import basics as routes

from ..code_source import SourceBlock, source_of, with_highlight
from ..widgets.number_field import invalid_fields, number_input
from ..widgets.timeline import Bar, Timeline
from ..wording import counted
from .base import PatternPane


@dataclass(frozen=True)
class HandlerStyle:
    """One of the five ways to write the handler."""

    key: str
    label: str
    path: str
    parameter: str  # "delay" or "n"
    handler: Callable[..., Any]
    lesson: str
    blocking_lesson: str = ""


log = logging.getLogger("fastasync.explorer.basics")

STYLES: tuple[HandlerStyle, ...] = (
    HandlerStyle(
        "async",
        "async def + await",
        "/basics/async",
        "delay",
        routes.async_sleep,
        "While one request awaits, the loop serves the others: N requests of d seconds "
        "take about d in all.",
        "Blocking mode: this handler now calls time.sleep, so the requests queue up "
        "behind each other and the whole loop (this UI too) freezes.",
    ),
    HandlerStyle(
        "sync",
        "def (threadpool)",
        "/basics/sync",
        "delay",
        routes.sync_sleep,
        "FastAPI runs a plain def handler on its threadpool (40 threads by default): a "
        "blocking call is safe there; concurrency is capped by the pool.",
    ),
    HandlerStyle(
        "blocking",
        "time.sleep in async def",
        "/basics/blocking",
        "delay",
        routes.blocking_sleep,
        "The classic mistake: the loop is stuck in time.sleep, requests run one after "
        "another, and everything on this loop freezes, this UI included.",
    ),
    HandlerStyle(
        "cpu",
        "CPU loop in async def",
        "/basics/cpu",
        "n",
        routes.cpu_inline,
        "No await, so no chance to switch: the loop stalls for the whole computation.",
    ),
    HandlerStyle(
        "offload",
        "CPU offloaded to a process",
        "/basics/offload",
        "n",
        routes.cpu_offloaded,
        "The work runs in a worker process and the handler only awaits it: the loop "
        "stays responsive. The first call also starts the pool.",
        "Blocking mode: the work stays on the loop, exactly like the CPU style.",
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


class BasicsPane(PatternPane):
    """Five handler styles, N concurrent requests, one timeline."""

    SLUG: ClassVar[str] = "basics"
    TITLE: ClassVar[str] = "Basics"
    SUMMARY: ClassVar[str] = "the five ways to write a handler"

    MAX_REQUESTS = 100

    DEFAULT_CSS = """
    BasicsPane #controls { height: auto; }
    BasicsPane RadioSet { width: 34; height: auto; }
    BasicsPane #params { height: auto; width: 1fr; padding-left: 2; }
    BasicsPane #params Horizontal { height: auto; }
    BasicsPane #params Label { width: 12; padding-top: 1; }
    BasicsPane #params Input { width: 16; }
    BasicsPane #run { margin-left: 2; margin-top: 0; }
    BasicsPane #lesson { height: auto; color: $text-muted; padding: 1 0 0 0; }
    BasicsPane #lesson.-blocking { color: $error; }
    BasicsPane #timeline-box { height: 1fr; border: round $primary 40%; }
    BasicsPane #summary { height: auto; min-height: 2; }
    """

    class RequestDone(Message):
        """One request came back (or failed)."""

        def __init__(self, index: int, bar: Bar) -> None:
            super().__init__()
            self.index = index
            self.bar = bar

    class BatchDone(Message):
        """All requests of a batch came back."""

        def __init__(self, summary: BatchSummary) -> None:
            super().__init__()
            self.summary = summary

    running: reactive[bool] = reactive(False)
    style_key: reactive[str] = reactive("async")
    summary: reactive[BatchSummary | None] = reactive(None)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._last_run_style: HandlerStyle | None = None
        self._ticker: Timer | None = None
        self._batch_began = 0.0

    def compose(self) -> ComposeResult:
        with Horizontal(id="controls"):
            with RadioSet(id="style"):
                for index, style in enumerate(STYLES):
                    yield RadioButton(style.label, value=index == 0, id=f"style-{style.key}")
            with Vertical(id="params"):
                yield Horizontal(
                    Label("requests"),
                    number_input("count", "5", 1, self.MAX_REQUESTS, "Concurrent requests"),
                    Button("Run", id="run", variant="primary"),
                )
                yield Horizontal(
                    Label("delay (s)"),
                    number_input(
                        "delay", "0.2", 0, routes.MAX_DELAY_S, "Seconds each handler waits"
                    ),
                    id="delay-row",
                )
                yield Horizontal(
                    Label("work (n)"),
                    number_input("work", "2000000", 1, routes.MAX_WORK, "CPU steps per request"),
                    id="work-row",
                )
                yield Static(id="lesson")
        with VerticalScroll(id="timeline-box") as box:
            box.border_title = "requests on a time axis"
            yield Timeline(id="timeline")
        yield Static(id="summary")

    def on_mount(self) -> None:
        self.context.blocking.subscribe(lambda _: self._show_lesson())
        self._show_lesson()

    # -- controls ------------------------------------------------------------------------

    @on(RadioSet.Changed, "#style")
    def _style_changed(self, event: RadioSet.Changed) -> None:
        self.style_key = STYLES[event.index].key

    def watch_style_key(self, key: str) -> None:
        style = STYLE_BY_KEY[key]
        self.query_one("#delay-row").display = style.parameter == "delay"
        self.query_one("#work-row").display = style.parameter == "n"
        self._show_lesson()

    def _show_lesson(self) -> None:
        style = STYLE_BY_KEY[self.style_key]
        pitfall = self.context.blocking.enabled and bool(style.blocking_lesson)
        lesson = self.query_one("#lesson", Static)
        lesson.update(style.blocking_lesson if pitfall else style.lesson)
        lesson.set_class(pitfall, "-blocking")

    @on(Button.Pressed, "#run")
    def _run_requested(self) -> None:
        self.action_run()

    def action_run(self) -> None:
        """Validate the inputs and start a batch (one at a time)."""
        if self.running:
            self.notify("A batch is still running.", severity="warning")
            return
        plan = self._plan()
        if plan is not None:
            self.start_batch(plan)

    def _plan(self) -> BatchPlan | None:
        style = STYLE_BY_KEY[self.style_key]
        count_input = self.query_one("#count", Input)
        value_input = self.query_one("#delay" if style.parameter == "delay" else "#work", Input)
        problems = invalid_fields(count_input, value_input)
        if problems:
            field, reason = problems[0]
            self.notify(reason, title="Invalid input", severity="error")
            field.focus()
            return None
        count = int(count_input.value)
        value: float | int = (
            float(value_input.value) if style.parameter == "delay" else int(value_input.value)
        )
        return BatchPlan(style, count, {style.parameter: value})

    # -- the batch -------------------------------------------------------------------------

    def start_batch(self, plan: BatchPlan) -> None:
        """Reset the timeline and send the batch from a worker."""
        self.running = True
        self._last_run_style = plan.style
        self._batch_began = time.perf_counter()
        timeline = self.query_one(Timeline)
        timeline.bars = tuple(Bar(f"#{i + 1}", 0.0) for i in range(plan.count))
        delay = plan.params.get("delay")
        timeline.span = max(0.05, float(delay)) if isinstance(delay, float) else 0.05
        timeline.now = 0.0
        # the ticker holds its timeline: a timer may fire while the pane is torn down
        self._ticker = self.set_interval(0.1, lambda: self._tick(timeline))
        self.query_one("#summary", Static).update(Text("running…", style="dim italic"))
        self.send_batch(plan)

    def _tick(self, timeline: Timeline) -> None:
        timeline.now = time.perf_counter() - self._batch_began

    @work(exclusive=True, group="basics-batch")
    async def send_batch(self, plan: BatchPlan) -> None:
        """Send ``plan.count`` requests at once over real HTTP and time each one."""
        client = self.context.http
        began = self._batch_began
        began_wall = time.time()
        failures = 0

        async def one(index: int) -> None:
            nonlocal failures
            start = time.perf_counter() - began
            try:
                response = await client.get(plan.style.path, params=plan.params)
                response.raise_for_status()
                report = response.json()
                # where the handler ran: on the loop, a pool thread, or another process
                if report["process"] != os.getpid():
                    note = f"pid {report['process']}"
                else:
                    note = "loop" if report["thread"] == "MainThread" else "threadpool"
                bar = Bar(f"#{index + 1}", start, time.perf_counter() - began, "ok", note)
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                # a refused connection, a 4xx/5xx, or a body that is not the report:
                # a failed bar with its reason, never a crashed pane
                failures += 1
                end = time.perf_counter() - began
                bar = Bar(f"#{index + 1}", start, end, "failed", type(exc).__name__)
                log.warning("request #%d to %s failed: %s", index + 1, plan.style.path, exc)
            self.post_message(self.RequestDone(index, bar))

        await asyncio.gather(*(one(i) for i in range(plan.count)))
        wall = time.perf_counter() - began
        # The watchdog publishes a stall just after the loop recovers: let it land.
        await asyncio.sleep(self.context.stall_settle_s)
        monitor = self.context.monitor
        stalls = tuple(s for s in monitor.stalls_after(0) if s.started_at >= began_wall - 0.001)
        summary = BatchSummary(
            plan=plan,
            wall_s=wall,
            lag_max_ms=monitor.lag(window_s=wall + 0.05).max,
            stalls=stalls,
            failures=failures,
            blocking_mode=self.context.blocking.enabled,
        )
        self.post_message(self.BatchDone(summary))

    def on_basics_pane_request_done(self, message: RequestDone) -> None:
        timeline = self.query_one(Timeline)
        bars = list(timeline.bars)
        if message.index < len(bars):
            bars[message.index] = message.bar
            timeline.bars = tuple(bars)

    def on_basics_pane_batch_done(self, message: BatchDone) -> None:
        self.show_summary(message.summary)

    def show_summary(self, summary: BatchSummary) -> None:
        """Stop the live ticker and print what the batch measured."""
        if self._ticker is not None:
            self._ticker.stop()
            self._ticker = None
        self.running = False
        timeline = self.query_one(Timeline)
        timeline.now = summary.wall_s
        self.summary = summary

    def watch_summary(self, summary: BatchSummary | None) -> None:
        if summary is not None:
            self.query_one("#summary", Static).update(describe(summary))

    # -- code view -------------------------------------------------------------------------

    def code_blocks(self, stall: Stall | None = None) -> list[SourceBlock]:
        style = self._last_run_style or STYLE_BY_KEY[self.style_key]
        stalls = self.summary.stalls if self.summary else ()
        blamed = stall or next((s for s in stalls if s.location), None)
        handler = source_of(style.handler, f"server: {style.path}")
        if blamed is not None and blamed.filename == handler.filename:
            handler = with_highlight(handler, blamed.lineno)
        return [handler, source_of(BasicsPane.send_batch, "client: this pane's worker")]


def describe(summary: BatchSummary) -> Text:
    """Two lines: what ran and how long; what the loop went through meanwhile."""
    plan = summary.plan
    value = next(iter(plan.params.values()))
    unit = f"{value} s each" if plan.style.parameter == "delay" else f"n={value:,} each"
    text = Text.assemble(
        (f"{plan.count} × {plan.style.label}", "bold"),
        f" ({unit})",
        (" · blocking mode" if summary.blocking_mode else "", "bold red"),
        " → wall ",
        (f"{summary.wall_s:.3f} s", "bold"),
    )
    if plan.style.parameter == "delay":
        delay = float(value)
        text.append(
            f"  (all at once: {delay:.3f} s, one by one: {delay * plan.count:.3f} s)",
            style="dim",
        )
    if summary.failures:
        text.append(f"  {summary.failures} failed", style="bold red")
    text.append("\nloop lag max ")
    text.append(f"{summary.lag_max_ms:.1f} ms", style="bold red" if summary.lag_max_ms > 50 else "")
    in_requests = [s for s in summary.stalls if s.route]
    elsewhere = [s for s in summary.stalls if not s.route]
    if in_requests:
        total = sum(s.duration_ms for s in in_requests)
        where = next((s.location for s in in_requests if s.location), "an unsampled line")
        stalls = counted(len(in_requests), "stall")
        text.append(f" · {stalls} in handlers, {total:.0f} ms in all, at ")
        text.append(where, style="bold yellow")
    else:
        text.append(" · no stall in the handlers", style="green")
    if elsewhere:
        # Outside any request: this UI's own rendering, a GC pass... the loop is shared.
        total = sum(s.duration_ms for s in elsewhere)
        text.append(f" (+{len(elsewhere)} outside requests, {total:.0f} ms)", style="dim")
    return text
