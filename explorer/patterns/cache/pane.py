"""Pooling and caching pane: a TTL cache with single flight, shared vs per-request clients,
and timeouts against a hanging upstream, each run listed in a table."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.reactive import reactive
from textual.timer import Timer
from textual.validation import Regex
from textual.widgets import Button, Input, Label, Select, Static

from explorer.code_source import SourceBlock, source_of
from explorer.pane import Lesson, LessonLine, PatternPane
from explorer.patterns.cache.client import RUNNERS, DemoResult
from explorer.patterns.cache.demos import DEMO_BY_KEY, DEMOS
from explorer.patterns.cache.runs import RunRow, RunTable
from explorer.patterns.cache.stampede import StampedeRun, stampede_figure
from explorer.patterns.cache.stats import CacheStats
from explorer.widgets.number_field import number_input
from fastasync_probe.monitor import Stall
from server.patterns.cache import router as routes
from server.patterns.cache.ttl_cache import TTLCache

__all__ = ["DEMOS", "CachePane", "RunRow"]

#: how often the live counters are read while a demonstration runs (<= 4 Hz)
STATS_INTERVAL_S = 0.25


class CachePane(
    PatternPane,
    slug="cache",
    title="Pooling & caching",
    summary="TTL cache with single flight, a shared httpx client, timeouts",
):
    """A demo menu with the chosen demo's fields, live cache counters, and the runs."""

    MAX_ROWS = 100

    DEFAULT_CSS = """
    CachePane #controls, CachePane #fields { height: 1; }
    CachePane #demo { width: 32; }
    CachePane #controls Button { margin-left: 1; min-width: 5; }
    CachePane .field { width: auto; height: 1; margin-right: 1; }
    CachePane .field Label { padding: 0 1 0 0; }
    CachePane #key { width: 14; }
    CachePane #summary { height: auto; }
    CachePane #runs { height: 1fr; min-height: 3; }
    """

    @dataclass
    class StatsArrived(Message):
        """A reading of ``GET /cache/stats``."""

        stats: dict[str, Any]

    @dataclass
    class DemoDone(Message):
        """A demonstration finished: what it reports."""

        demo: str
        result: DemoResult

    demo: reactive[str] = reactive("stampede", init=False)
    stats: reactive[dict[str, Any] | None] = reactive(None, init=False)
    busy: reactive[int] = reactive(0, init=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Held, not queried: the stats feed and the ticker update them on their own
        # schedule, possibly while the app tears its widgets down.
        self._stats_view = CacheStats(id="stats")
        self._summary = Static(id="summary")
        self._table = RunTable(self.MAX_ROWS, id="runs")
        self._ticker: Timer | None = None
        self._began = 0.0
        #: ask the feed for one reading even when nothing runs (after a run, at mount)
        self._stats_wanted = asyncio.Event()
        #: the last stampede of each form (the figure compares them)
        self.stampedes: dict[str, StampedeRun] = {}

    def compose(self) -> ComposeResult:
        with Horizontal(id="controls"):
            yield Select(
                [(demo.label, demo.key) for demo in DEMOS],
                value=self.demo,
                allow_blank=False,
                type_to_search=False,  # digits, b, r, c and q are the app's keys
                id="demo",
                compact=True,
            )
            # not id="run": Textual finds ids breadth-first, and a shallow #run here would
            # shadow the other panes' for an unscoped query_one("#run")
            yield Button("Run", id="cache-run", variant="primary", compact=True)
            yield Button(
                "Clear", id="clear", tooltip="Empty the cache and zero its counters", compact=True
            )
        with Horizontal(id="fields"):
            for name, label, field in self._fields():
                with Horizontal(classes=f"field field-{name}"):
                    yield Label(label)
                    yield field
        yield Lesson(id="lesson")
        yield self._stats_view
        yield self._summary
        yield self._table

    @staticmethod
    def _fields() -> list[tuple[str, str, Input]]:
        key = Input(
            "alpha",
            id="key",
            validators=[Regex(r"^[A-Za-z0-9_.-]{1,40}$")],
            tooltip="Cache key (1-40 letters, digits, '_', '.', '-')",
            max_length=40,
            compact=True,
        )
        fields = [
            ("key", "key", key),
            # 2 s: the n callers of a stampede must all arrive while the first computes; on
            # this one shared loop (and a busy machine) their arrival can spread over 1 s
            ("delay_s", "delay s", number_input("delay_s", "2.0", 0, 5, "Upstream delay (s)")),
            ("ttl_s", "ttl s", number_input("ttl_s", "5.0", 0.05, 300, "Time to live (s)")),
            ("callers", "callers", number_input("callers", "20", 2, 100, "Concurrent callers")),
            ("calls", "calls", number_input("calls", "100", 1, 1000, "Client calls")),
            (
                "concurrency",
                "at once",
                number_input("concurrency", "10", 1, routes.POOL_SIZE, "Calls at once"),
            ),
            ("hang_s", "hang s", number_input("hang_s", "3.0", 0, 30, "Upstream hang (s)")),
            ("timeout_s", "timeout s", number_input("timeout_s", "0.5", 0.05, 10, "Timeout (s)")),
        ]
        for name, _, field in fields:
            if name != "key":  # as wide as what it may hold, and the cursor
                field.styles.width = (field.max_length or 8) + 1
        return fields

    def on_mount(self) -> None:
        self._stats_view.show(None)
        self._show_demo()
        self._stats_wanted.set()
        self.follow_stats()

    def on_show(self) -> None:
        # The menu, not a text field: r, b and c must reach the app when the pane opens.
        self.query_one("#demo", Select).focus()

    # -- live counters -------------------------------------------------------------------

    @work(group="cache-stats")
    async def follow_stats(self) -> None:
        """Read ``/cache/stats`` at most 4 times a second while a demonstration runs, and
        once after each; idle, it only waits (no polling cost to the shared loop)."""
        while True:
            if not self.busy:
                await self._stats_wanted.wait()
            self._stats_wanted.clear()
            try:
                response = await self.context.http.get("/cache/stats")
                response.raise_for_status()
                self.post_message(self.StatsArrived(response.json()))
            except (httpx.HTTPError, ValueError):
                pass  # the next reading will tell; the run itself reports its errors
            await asyncio.sleep(STATS_INTERVAL_S)

    def on_cache_pane_stats_arrived(self, message: StatsArrived) -> None:
        self.stats = message.stats

    def watch_stats(self, stats: dict[str, Any] | None) -> None:
        self._stats_view.show(stats)

    # -- the menu and its fields -----------------------------------------------------------

    @on(Select.Changed, "#demo")
    def _demo_changed(self, event: Select.Changed) -> None:
        if isinstance(event.value, str):
            self.demo = event.value

    def watch_demo(self) -> None:
        self._show_demo()

    def _show_demo(self) -> None:
        """Only the chosen demo's fields, in reading (and Tab) order; its lesson."""
        used = DEMO_BY_KEY[self.demo].fields
        for group in self.query(".field"):
            group.display = any(group.has_class(f"field-{name}") for name in used)
        self.show_lesson()

    def lesson_of(self, blocking: bool) -> LessonLine:
        return DEMO_BY_KEY[self.demo].line(blocking)

    @on(Button.Pressed, "#clear")
    def _clear_pressed(self) -> None:
        self.clear_cache()

    @on(Button.Pressed, "#cache-run")
    def action_run(self) -> None:
        """The ``r`` key: run the chosen demonstration."""
        self.start(self.demo)

    def _field(self, name: str) -> Input:
        return self.query_one(f"#{name}", Input)

    def start(self, demo: str) -> None:
        """Validate the fields the demonstration uses, then run it in a worker."""
        names = DEMO_BY_KEY[demo].fields
        if not self.fields_valid(*(self._field(name) for name in names)):
            return
        values = {name: self._field(name).value for name in names}
        self.busy += 1
        self._stats_wanted.set()
        if self._ticker is None:
            self._began = time.perf_counter()
            summary = self._summary
            summary.update(Text("running…", style="dim italic"))  # one line from now on
            self._ticker = self.set_interval(0.25, lambda: self._tick(summary))
        self.run_demo(demo, values)

    def _tick(self, summary: Static) -> None:
        elapsed = time.perf_counter() - self._began
        summary.update(Text(f"running… {elapsed:.1f} s", style="dim italic"), layout=False)

    @work(group="cache-demos")
    async def run_demo(self, demo: str, values: dict[str, str]) -> None:
        """Run one demonstration over real HTTP and report it."""
        try:
            result = await RUNNERS[demo](self.context, values)
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
            result = DemoResult(
                [RunRow(demo, "", "failed", 0.0, reason, ok=False)],
                Text(f"The request failed: {reason}", style="bold red"),
            )
        self.post_message(self.DemoDone(demo, result))

    @work(group="cache-clear")
    async def clear_cache(self) -> None:
        """Empty the cache and zero its counters."""
        try:
            response = await self.context.http.delete(
                "/cache/entries", params={"reset_stats": "true"}
            )
            response.raise_for_status()
            self.post_message(self.StatsArrived(response.json()["stats"]))
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            self.notify(f"{type(exc).__name__}: {exc}", title="Clear failed", severity="error")

    def on_cache_pane_demo_done(self, message: DemoDone) -> None:
        self.busy = max(0, self.busy - 1)
        self._stats_wanted.set()
        if not self.busy and self._ticker is not None:
            self._ticker.stop()
            self._ticker = None
        result = message.result
        for row in result.rows:
            self._table.add_run(row)
        text = Text()
        pitfall = DEMO_BY_KEY[message.demo].line(self.context.blocking.enabled).pitfall
        # (a stampede says its form itself, in its figure)
        said = result.stampede is not None or result.summary.plain.startswith("Blocking mode")
        if pitfall and not said:
            text.append("blocking mode · ", style="bold red")
        text.append_text(result.summary)
        if result.stampede is not None:
            self.stampedes[result.stampede.form] = result.stampede
            text.append("\n")
            text.append_text(stampede_figure(self.stampedes, result.stampede))
        self._summary.update(text)

    # -- code view -----------------------------------------------------------------------

    def code_blocks(self, stall: Stall | None = None) -> list[SourceBlock]:
        client = RUNNERS[self.demo]
        worker = source_of(client, "client: this pane's worker")
        if self.demo == "clients":
            return [
                source_of(routes.call_shared, "server: the shared client"),
                source_of(routes.call_per_request, "server: a client per request"),
                worker,
            ]
        if self.demo == "hanging":
            return [source_of(routes.fetch_hanging, "server: the call with a timeout"), worker]
        return [
            source_of(TTLCache.get_or_compute, "server: the TTL cache (single flight)"),
            source_of(routes.cached_value, "server: the route in front of it"),
            worker,
        ]
