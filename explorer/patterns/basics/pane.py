"""Basics pane: fire N concurrent requests at one handler style and watch them on a timeline.

Each request is drawn twice on one row: light from the moment the client sent it to the
moment it read the answer, solid where the server's handler ran (the handler reports its
own start and end). With the loop frozen the client reads every answer at the end, so
only the handlers show the requests running one after another.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

import httpx
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.timer import Timer
from textual.widgets import Button, Input, Label, RadioButton, RadioSet, Static

from explorer.code_source import SourceBlock, source_of, with_highlight
from explorer.pane import Lesson, LessonLine, PatternPane
from explorer.patterns.basics.figures import LoopComparison, LoopComparisonView, RunLag
from explorer.patterns.basics.styles import (
    STYLE_BY_KEY,
    STYLES,
    BatchPlan,
    BatchSummary,
    HandlerStyle,
    describe,
    describe_cpu,
)
from explorer.widgets.number_field import number_input
from explorer.widgets.timeline import Bar, Timeline
from fastasync_probe.monitor import Stall
from server.patterns.basics import router as routes

__all__ = ["STYLES", "STYLE_BY_KEY", "BasicsPane", "BatchPlan", "BatchSummary", "HandlerStyle"]

log = logging.getLogger("fastasync.explorer.basics")

#: the light part of a bar is the client's request, the solid part the server's handler
LEGEND = "░ client: sent → answer read   █ server: the handler ran"


class BasicsPane(
    PatternPane,
    slug="basics",
    title="Basics",
    summary="the five ways to write a handler",
):
    """Five handler styles, N concurrent requests, one timeline."""

    MAX_REQUESTS = 100

    DEFAULT_CSS = """
    BasicsPane #controls { height: auto; }
    BasicsPane #style { width: 32; height: auto; }
    BasicsPane #params { height: auto; width: 1fr; padding-left: 1; }
    BasicsPane #params Horizontal { height: 1; }
    BasicsPane #params Label { width: 10; }
    BasicsPane #params Input { width: 10; }
    BasicsPane #params #count { width: 5; }
    BasicsPane #run { margin-left: 2; min-width: 7; }
    BasicsPane #timeline-box { height: 1fr; min-height: 4; border: round $primary 40%; }
    BasicsPane #summary { height: auto; }
    BasicsPane.-cpu #summary { text-wrap: nowrap; text-overflow: ellipsis; }
    BasicsPane #compare { display: none; }
    BasicsPane.-cpu #compare { display: block; }
    """

    @dataclass
    class RequestDone(Message):
        """One request came back (or failed)."""

        index: int
        bar: Bar

    @dataclass
    class BatchDone(Message):
        """All requests of a batch came back."""

        summary: BatchSummary

    style_key: reactive[str] = reactive("async")
    summary: reactive[BatchSummary | None] = reactive(None)
    #: the CPU styles' figure: the loop's lag with the work on it and offloaded
    comparison: reactive[LoopComparisonView] = reactive(LoopComparisonView)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._last_run_style: HandlerStyle | None = None
        self._ticker: Timer | None = None
        self._batch_began = 0.0

    def compose(self) -> ComposeResult:
        with Horizontal(id="controls"):
            with RadioSet(id="style", compact=True):
                for index, style in enumerate(STYLES):
                    yield RadioButton(
                        style.label, value=index == 0, id=f"style-{style.key}", compact=True
                    )
            with Vertical(id="params"):
                yield Horizontal(
                    Label("requests"),
                    number_input("count", "5", 1, self.MAX_REQUESTS, "Concurrent requests"),
                    Button("Run", id="run", variant="primary", compact=True),
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
                yield Lesson(id="lesson")
        with VerticalScroll(id="timeline-box") as box:
            box.border_title = "requests on a time axis"
            box.border_subtitle = LEGEND
            yield Timeline(id="timeline", figure_width=35)
        yield Static(id="summary")
        yield LoopComparison(id="compare")

    # -- controls ------------------------------------------------------------------------

    @on(RadioSet.Changed, "#style")
    def _style_changed(self, event: RadioSet.Changed) -> None:
        self.style_key = STYLES[event.index].key

    def watch_style_key(self, key: str) -> None:
        style = STYLE_BY_KEY[key]
        self.query_one("#delay-row").display = style.parameter == "delay"
        self.query_one("#work-row").display = style.parameter == "n"
        self.set_class(style.parameter == "n", "-cpu")
        self.show_lesson()

    def lesson_of(self, blocking: bool) -> LessonLine:
        return STYLE_BY_KEY[self.style_key].line(blocking)

    @on(Button.Pressed, "#run")
    def action_run(self) -> None:
        """Validate the inputs and start a batch (one at a time)."""
        if self.still_running("A batch is still running."):
            return
        plan = self._plan()
        if plan is not None:
            self.start_batch(plan)

    def _plan(self) -> BatchPlan | None:
        style = STYLE_BY_KEY[self.style_key]
        count_input = self.query_one("#count", Input)
        value_input = self.query_one("#delay" if style.parameter == "delay" else "#work", Input)
        if not self.fields_valid(count_input, value_input):
            return None
        count = int(count_input.value)
        value: float | int = (
            float(value_input.value) if style.parameter == "delay" else int(value_input.value)
        )
        return BatchPlan(style, count, {style.parameter: value})

    # -- the batch -------------------------------------------------------------------------

    def start_batch(self, plan: BatchPlan) -> None:
        """Mark the pane busy and send the batch from a worker."""
        self.running = True
        self._last_run_style = plan.style
        self.query_one("#summary", Static).update(Text("running…", style="dim italic"))
        self.send_batch(plan)

    def _begin_bars(self, plan: BatchPlan) -> tuple[float, float]:
        """Reset the timeline for ``plan``; the batch's origin on both clocks."""
        timeline = self.query_one(Timeline)
        timeline.bars = tuple(Bar(f"#{i + 1}", 0.0) for i in range(plan.count))
        delay = plan.params.get("delay")
        timeline.span = max(0.05, float(delay)) if isinstance(delay, float) else 0.05
        timeline.now = 0.0
        self._batch_began = time.perf_counter()
        # the ticker holds its timeline: a timer may fire while the pane is torn down
        if self._ticker is None:
            self._ticker = self.set_interval(0.1, lambda: self._tick(timeline))
        return self._batch_began, time.time()

    def _tick(self, timeline: Timeline) -> None:
        # a redraw only while a bar still grows: once every answer is in, nothing moves
        if any(bar.end is None for bar in timeline.bars):
            timeline.now = time.perf_counter() - self._batch_began

    async def _start_pool(self) -> dict[str, Any] | None:
        """Start the CPU pool before the batch, so its start-up is timed apart from it."""
        self.query_one("#summary", Static).update(
            Text("starting the process pool (timed apart from the run)…", style="dim italic")
        )
        try:
            response = await self.context.http.post("/basics/pool")
            response.raise_for_status()
            pool: dict[str, Any] = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("could not start the CPU pool apart: %s", exc)
            return None
        return pool

    @work(exclusive=True, group="basics-batch")
    async def send_batch(self, plan: BatchPlan) -> None:
        """Send ``plan.count`` requests at once over real HTTP and time each one."""
        client = self.context.http
        blocking = self.context.blocking.enabled
        offloading = plan.style.key == "offload" and not blocking
        pool = await self._start_pool() if offloading else None
        began, began_wall = self._begin_bars(plan)
        failures = 0
        spans: list[tuple[float, float]] = []
        client_ends: list[float] = []

        async def one(index: int) -> None:
            nonlocal failures
            start = time.perf_counter() - began
            try:
                response = await client.get(plan.style.path, params=plan.params)
                response.raise_for_status()
                report = response.json()
                end = time.perf_counter() - began
                client_ends.append(end)
                # the handler's own start and end, on the same axis as the client's
                inner = (report["started_at"] - began_wall, report["ended_at"] - began_wall)
                spans.append(inner)
                # where the handler ran: on the loop, a pool thread, or another process
                if report["process"] != os.getpid():
                    where = f"pid {report['process']}"
                else:
                    where = "loop" if report["thread"] == "MainThread" else "threadpool"
                note = f"ran {inner[0] * 1000:.0f}–{inner[1] * 1000:.0f} {where}"
                bar = Bar(f"#{index + 1}", start, end, "ok", note, inner=inner)
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                # a refused connection, a 4xx/5xx, or a body that is not the report:
                # a failed bar with its reason, never a crashed pane
                failures += 1
                end = time.perf_counter() - began
                bar = Bar(f"#{index + 1}", start, end, "failed", type(exc).__name__)
                log.warning("request #%d to %s failed: %s", index + 1, plan.style.path, exc)
            self.post_message(self.RequestDone(index, bar))

        await asyncio.gather(*(one(i) for i in range(plan.count)))
        wall = time.perf_counter() - began
        stalls = tuple(await self.context.stalls_since(began_wall))
        summary = BatchSummary(
            plan=plan,
            wall_s=wall,
            # the lag of this batch only (the pool's start-up came before `began`)
            lag_max_ms=self.context.monitor.lag(window_s=time.perf_counter() - began).max,
            stalls=stalls,
            failures=failures,
            blocking_mode=blocking,
            handler_spans=tuple(sorted(spans)),
            client_ends=tuple(sorted(client_ends)),
        )
        self.post_message(self.BatchDone(summary))
        if plan.style.parameter == "n":
            self.compare(summary, pool)

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
            cpu = summary.plan.style.parameter == "n"
            self.query_one("#summary", Static).update(
                describe_cpu(summary) if cpu else describe(summary)
            )

    def compare(self, summary: BatchSummary, pool: dict[str, Any] | None) -> None:
        """Keep the CPU batch as the last one of its kind: on the loop, or offloaded."""
        in_handlers = summary.in_handlers
        on_loop = summary.plan.style.on_loop(summary.blocking_mode)
        run = RunLag(
            count=summary.plan.count,
            n=int(summary.plan.params["n"]),
            wall_s=summary.wall_s,
            lag_max_ms=summary.lag_max_ms,
            stalls=len(in_handlers),
            stall_ms=sum(s.duration_ms for s in in_handlers),
            via="offload, blocking mode" if on_loop and summary.plan.style.key == "offload" else "",
        )
        view = self.comparison
        if on_loop:
            view = LoopComparisonView(
                run, view.offloaded, "loop", view.pool_workers, view.pool_startup_s, False
            )
        else:
            started_now = bool(pool and pool.get("started_now"))
            startup_ms = pool.get("startup_ms") if pool else None
            view = LoopComparisonView(
                view.on_loop,
                run,
                "offloaded",
                int(pool["workers"]) if pool else view.pool_workers,
                startup_ms / 1000.0 if isinstance(startup_ms, int | float) else view.pool_startup_s,
                started_now,
            )
        self.comparison = view

    def watch_comparison(self, view: LoopComparisonView) -> None:
        self.query_one(LoopComparison).view = view

    # -- code view -------------------------------------------------------------------------

    def code_blocks(self, stall: Stall | None = None) -> list[SourceBlock]:
        style = self._last_run_style or STYLE_BY_KEY[self.style_key]
        handler = source_of(style.handler, f"server: {style.path}")
        # the line a request's stall blamed in this handler (not the UI's own stalls)
        stalls = self.summary.in_handlers if self.summary else ()
        blamed = stall or next((s for s in stalls if s.filename == handler.filename), None)
        if blamed is not None and blamed.filename == handler.filename:
            handler = with_highlight(handler, blamed.lineno)
        blocks = [handler]
        if style.key == "offload" and not self.context.blocking.enabled:
            # what the pane calls first, so the pool's start-up is timed apart
            blocks.append(source_of(routes.start_pool, "server: POST /basics/pool"))
        blocks.append(source_of(BasicsPane.send_batch, "client: this pane's worker"))
        return blocks
