"""Pooling and caching pane: a TTL cache with single flight, shared vs per-request clients,
and timeouts against a hanging upstream, each run listed in a table."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.reactive import reactive
from textual.timer import Timer
from textual.validation import Regex
from textual.widgets import Button, DataTable, Input, Label, Static

from server.monitor import Stall
from server.routes import cache as routes
from server.ttl_cache import TTLCache

from ..code_source import SourceBlock, source_of
from ..widgets.cache_stats import CacheStats
from ..widgets.number_field import invalid_fields, number_input
from ..wording import counted
from .base import PatternPane

#: how often the live counters are read while a demonstration runs (<= 4 Hz)
STATS_INTERVAL_S = 0.25
#: keys the sweep reads: more than the cache holds, so the least recently used go
SWEEP_KEYS = 12


@dataclass(frozen=True)
class Demo:
    """A button: what it shows, right and in blocking mode."""

    key: str
    label: str
    lesson: str
    pitfall: str


DEMOS: tuple[Demo, ...] = (
    Demo(
        "get",
        "Get",
        "Read one key through the TTL cache: the first read calls the slow upstream (a miss), "
        "reads within the TTL are hits, and after it the entry has expired.",
        "Blocking mode: the cache has no single flight; a lone read looks the same. Try Stampede.",
    ),
    Demo(
        "stampede",
        "Stampede",
        "n requests for one cold key at once: the first computes, the others wait for its "
        "result (single flight). The upstream counts one call.",
        "Blocking mode: no single flight, so every concurrent miss calls the upstream: a "
        "cache stampede, n upstream calls for one value.",
    ),
    Demo(
        "sweep",
        f"Sweep ×{SWEEP_KEYS}",
        f"Read {SWEEP_KEYS} keys into a cache of {routes.CACHE_SIZE}: the least recently used "
        "entries are evicted, so memory stays bounded.",
        "",
    ),
    Demo(
        "clients",
        "Shared vs per-request",
        "The same calls with the one lifespan-owned httpx client (pooled, kept-alive "
        "connections, limits and timeouts) and then with a new client per call: requests/s "
        "and TCP connections, counted where they happen.",
        "",
    ),
    Demo(
        "hanging",
        "Hanging upstream",
        "Call an upstream that hangs with a timeout: the request answers 504 with a message "
        "as soon as the timeout passes.",
        "Blocking mode: the call has no timeout, so the request waits the whole hang.",
    ),
)
DEMO_BY_KEY = {demo.key: demo for demo in DEMOS}


@dataclass(frozen=True)
class RunRow:
    """One finished demonstration, as the run table shows it."""

    demo: str
    form: str
    outcome: str
    took_ms: float
    detail: str
    ok: bool = True


def error_text(response: httpx.Response) -> str:
    """A refused request's message: ``detail`` as a sentence, or the status line."""
    try:
        detail = response.json()["detail"]
    except (ValueError, KeyError, TypeError):
        return f"{response.status_code} {response.reason_phrase}"
    if isinstance(detail, list):
        return "; ".join(str(item.get("msg", item)) for item in detail)
    return str(detail)


def stampede_row(replies: list[dict[str, Any]], n: int, wall_ms: float) -> RunRow:
    """What n concurrent reads of one cold key did, from their answers."""
    sources = {source: sum(r["source"] == source for r in replies) for source in _SOURCES}
    calls = max((r["upstream_calls"] for r in replies), default=0)
    single_flight = all(r["single_flight"] for r in replies)
    counts = ", ".join(
        f"{count} {_PLURALS[source] if count != 1 else source}"
        for source, count in sources.items()
        if count
    )
    return RunRow(
        f"stampede ×{n}",
        "single flight" if single_flight else "no single flight",
        f"{counted(calls, 'upstream call')}",
        wall_ms,
        counts,
        ok=single_flight,
    )


_SOURCES = ("miss", "coalesced", "hit")
_PLURALS = {"miss": "misses", "coalesced": "coalesced", "hit": "hits"}


class CachePane(PatternPane):
    """Buttons for each demonstration, live cache counters, and a table of the runs."""

    SLUG: ClassVar[str] = "cache"
    TITLE: ClassVar[str] = "Pooling & caching"
    SUMMARY: ClassVar[str] = "TTL cache with single flight, a shared httpx client, timeouts"

    MAX_ROWS = 100

    DEFAULT_CSS = """
    CachePane .fields { height: auto; }
    CachePane .fields Label { width: 10; padding: 1 0 0 1; }
    CachePane .fields Input { width: 11; }
    CachePane #key { width: 16; }
    CachePane #actions { height: auto; }
    CachePane #actions Button { margin-right: 1; min-width: 6; }
    CachePane #lesson { height: auto; color: $text-muted; padding: 0 1; }
    CachePane #lesson.-blocking { color: $error; }
    CachePane #stats { padding: 0 1; }
    CachePane #runs { height: 1fr; }
    CachePane #summary { height: auto; min-height: 2; padding: 0 1; }
    """

    class StatsArrived(Message):
        """A reading of ``GET /cache/stats``."""

        def __init__(self, stats: dict[str, Any]) -> None:
            super().__init__()
            self.stats = stats

    class DemoDone(Message):
        """A demonstration finished: its table rows and the sentence under the table."""

        def __init__(self, demo: str, rows: list[RunRow], summary: Text) -> None:
            super().__init__()
            self.demo = demo
            self.rows = rows
            self.summary = summary

    last_demo: reactive[str] = reactive("get", init=False)
    stats: reactive[dict[str, Any] | None] = reactive(None, init=False)
    busy: reactive[int] = reactive(0, init=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Held, not queried: the stats feed and the ticker update them on their own
        # schedule, possibly while the app tears its widgets down.
        self._stats_view = CacheStats(id="stats")
        self._summary = Static(id="summary")
        self._table: DataTable[str | Text] = DataTable(id="runs", cursor_type="row")
        self._numbers = itertools.count(1)
        self._row_keys: list[str] = []
        self._ticker: Timer | None = None
        self._began = 0.0
        #: ask the feed for one reading even when nothing runs (after a run, at mount)
        self._stats_wanted = asyncio.Event()

    def compose(self) -> ComposeResult:
        key = Input(
            "alpha",
            id="key",
            validators=[Regex(r"^[A-Za-z0-9_.-]{1,40}$")],
            tooltip="Cache key (1-40 letters, digits, '_', '.', '-')",
        )
        yield Horizontal(
            Label("key"),
            key,
            Label("delay s"),
            number_input("delay_s", "0.3", 0, 5, "Upstream delay (s)"),
            Label("ttl s"),
            number_input("ttl_s", "5.0", 0.05, 300, "Time to live (s)"),
            Label("callers"),
            number_input("callers", "20", 2, 100, "Concurrent callers"),
            classes="fields",
        )
        yield Horizontal(
            Label("calls"),
            number_input("calls", "100", 1, 1000, "Client calls"),
            Label("at once"),
            number_input("concurrency", "10", 1, routes.POOL_SIZE, "Calls at once"),
            Label("hang s"),
            number_input("hang_s", "3.0", 0, 30, "Upstream hang (s)"),
            Label("timeout s"),
            number_input("timeout_s", "0.5", 0.05, 10, "Call timeout (s)"),
            classes="fields",
        )
        with Horizontal(id="actions"):
            for demo in DEMOS:
                yield Button(
                    demo.label,
                    # not id="run": Textual finds ids breadth-first, and a shallow #run here
                    # would shadow the other panes' for an unscoped query_one("#run")
                    id=f"do-{demo.key}",
                    variant="primary" if demo.key == "get" else "default",
                )
            yield Button("Clear", id="clear", tooltip="Empty the cache and zero its counters")
        yield Static(id="lesson")
        yield self._stats_view
        yield self._table
        yield self._summary

    def on_mount(self) -> None:
        for column in ("#", "demo", "form", "outcome", "took", "detail"):
            self._table.add_column(column, key=column)
        self._stats_view.show(None)
        self.context.blocking.subscribe(lambda _: self._show_lesson())
        self._show_lesson()
        self._stats_wanted.set()
        self.follow_stats()

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

    # -- buttons -------------------------------------------------------------------------

    def _show_lesson(self) -> None:
        demo = DEMO_BY_KEY[self.last_demo]
        pitfall = self.context.blocking.enabled and bool(demo.pitfall)
        lesson = self.query_one("#lesson", Static)
        lesson.update(demo.pitfall if pitfall else demo.lesson)
        lesson.set_class(pitfall, "-blocking")

    def watch_last_demo(self) -> None:
        self._show_lesson()

    @on(Button.Pressed, "#clear")
    def _clear_pressed(self) -> None:
        self.clear_cache()

    @on(Button.Pressed)
    def _demo_pressed(self, event: Button.Pressed) -> None:
        if event.button.id and event.button.id.startswith("do-"):
            self.start(event.button.id.removeprefix("do-"))

    def action_run(self) -> None:
        """The ``r`` key: repeat the last demonstration."""
        self.start(self.last_demo)

    def _field(self, name: str) -> Input:
        return self.query_one(f"#{name}", Input)

    def start(self, demo: str) -> None:
        """Validate the fields the demonstration uses, then run it in a worker."""
        names = _FIELDS_OF[demo]
        problems = invalid_fields(*(self._field(name) for name in names))
        if problems:
            field, reason = problems[0]
            self.notify(reason, title="Invalid input", severity="error")
            field.focus()
            return
        values = {name: self._field(name).value for name in names}
        self.last_demo = demo
        self.busy += 1
        self._stats_wanted.set()
        if self._ticker is None:
            self._began = time.perf_counter()
            summary = self._summary
            self._ticker = self.set_interval(0.25, lambda: self._tick(summary))
        self.run_demo(demo, values)

    def _tick(self, summary: Static) -> None:
        elapsed = time.perf_counter() - self._began
        summary.update(Text(f"running… {elapsed:.1f} s", style="dim italic"), layout=False)

    @work(group="cache-demos")
    async def run_demo(self, demo: str, values: dict[str, str]) -> None:
        """Run one demonstration over real HTTP and report it as table rows."""
        runner = _RUNNERS[demo]
        try:
            rows, summary = await runner(self, values)
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            rows = [RunRow(demo, "", "failed", 0.0, f"{type(exc).__name__}: {exc}", ok=False)]
            summary = Text(f"The request failed: {type(exc).__name__}: {exc}", style="bold red")
        self.post_message(self.DemoDone(demo, rows, summary))

    async def get_one(self, values: dict[str, str]) -> tuple[list[RunRow], Text]:
        """One read of the key through the cache."""
        params = {"delay_s": values["delay_s"], "ttl_s": values["ttl_s"]}
        response = await self.context.http.get(f"/cache/value/{values['key']}", params=params)
        if response.status_code != 200:
            return [_refused("get", response)], Text(error_text(response), style="bold red")
        reply = response.json()
        row = RunRow(
            f"get {reply['key']}",
            "single flight" if reply["single_flight"] else "no single flight",
            reply["source"],
            reply["took_ms"],
            f"age {reply['age_s']:.1f} s · expires in {reply['expires_in_s']:.1f} s · "
            f"upstream calls for it {reply['upstream_calls']}",
        )
        note = {
            "hit": "A hit: served from memory, no upstream call.",
            "miss": "A miss: this request called the upstream and stored the value.",
            "coalesced": "Coalesced: another request was already computing it; this one "
            "waited for that result.",
        }[reply["source"]]
        return [row], Text(note)

    async def stampede(self, values: dict[str, str]) -> tuple[list[RunRow], Text]:
        """``callers`` concurrent reads of one cold key, each a real HTTP request."""
        n = int(values["callers"])
        key = f"{values['key']}.{uuid.uuid4().hex[:8]}"  # cold: never read before
        params = {"delay_s": values["delay_s"], "ttl_s": values["ttl_s"]}
        began = time.perf_counter()
        responses = await asyncio.gather(
            *(self.context.http.get(f"/cache/value/{key}", params=params) for _ in range(n))
        )
        wall_ms = (time.perf_counter() - began) * 1000
        refused = [r for r in responses if r.status_code != 200]
        if refused:
            return [_refused("stampede", refused[0])], Text(error_text(refused[0]), style="red")
        row = stampede_row([r.json() for r in responses], n, wall_ms)
        if row.ok:
            note = Text(
                f"{n} concurrent misses for {key}, one upstream call: the first request "
                "computed, the others waited for its result."
            )
        else:
            note = Text(
                f"Stampede: {n} concurrent misses for one key made {row.outcome} for the "
                "same value. Single flight would have made one.",
                style="bold red",
            )
        return [row], note

    async def sweep(self, values: dict[str, str]) -> tuple[list[RunRow], Text]:
        """Read more distinct keys than the cache holds, one after another."""
        before = await self._read_stats()
        began = time.perf_counter()
        sources: list[str] = []
        for i in range(SWEEP_KEYS):
            response = await self.context.http.get(
                f"/cache/value/sweep-{i}", params={"delay_s": 0.02, "ttl_s": values["ttl_s"]}
            )
            if response.status_code != 200:
                return [_refused("sweep", response)], Text(error_text(response), style="red")
            sources.append(response.json()["source"])
        wall_ms = (time.perf_counter() - began) * 1000
        after = await self._read_stats()
        evicted = after["evictions"] - before["evictions"]
        misses = sources.count("miss") + sources.count("coalesced")
        row = RunRow(
            f"sweep ×{SWEEP_KEYS}",
            f"LRU, {after['maxsize']} entries",
            f"{misses} misses, {sources.count('hit')} hits",
            wall_ms,
            f"{evicted} evicted · cache holds {after['size']}/{after['maxsize']}",
        )
        note = Text(
            f"{SWEEP_KEYS} keys into {after['maxsize']} places: {evicted} least recently used "
            "entries were evicted. Sweeping again in the same order misses every time: each "
            "key is evicted just before it is needed (LRU's worst case)."
        )
        return [row], note

    async def compare_clients(self, values: dict[str, str]) -> tuple[list[RunRow], Text]:
        """The same calls with the shared client, then with a client per call."""
        reports = {}
        began_wall = time.time()
        for mode in ("shared", "per_request"):
            if mode == "per_request":
                began_wall = time.time()
            body = {
                "mode": mode,
                "n": int(values["calls"]),
                "concurrency": int(values["concurrency"]),
            }
            response = await self.context.http.post("/cache/clients/run", json=body)
            if response.status_code != 200:
                return [_refused("clients", response)], Text(error_text(response), style="red")
            reports[mode] = response.json()
        rows = [
            RunRow(
                f"clients ×{report['n']}",
                mode.replace("_", "-"),
                f"{report['requests_per_s']:.0f} req/s",
                report["wall_ms"],
                f"TCP opened {report['connections_opened']} · seen {report['connections_seen']}"
                + (f" · {counted(report['errors'], 'error')}" if report["errors"] else ""),
                ok=mode == "shared",
            )
            for mode, report in reports.items()
        ]
        shared, fresh = reports["shared"], reports["per_request"]
        ratio = shared["requests_per_s"] / max(fresh["requests_per_s"], 0.001)
        text = Text()
        text.append(f"shared/per-request: {ratio:.1f}× the requests/s", style="bold")
        text.append(
            f" · connections opened {shared['connections_opened']} vs "
            f"{fresh['connections_opened']}\n"
        )
        text.append(fresh["note"])
        await asyncio.sleep(self.context.stall_settle_s)  # the watchdog publishes after
        stalls = [
            stall
            for stall in self.context.monitor.stalls_after(0)
            if stall.started_at >= began_wall and "in call_per_request" in (stall.location or "")
        ]
        if stalls:
            worst = max(stall.duration_ms for stall in stalls)
            text.append(
                f"\n{counted(len(stalls), 'loop stall')} in call_per_request, worst "
                f"{worst:.0f} ms: the event loop (and this UI) served nothing meanwhile.",
                style="bold red",
            )
        return rows, text

    async def hanging(self, values: dict[str, str]) -> tuple[list[RunRow], Text]:
        """Call the hanging upstream through the server, with or without a timeout."""
        params = {"hang_s": values["hang_s"], "timeout_s": values["timeout_s"]}
        began = time.perf_counter()
        response = await self.context.http.get("/cache/hanging", params=params)
        took = (time.perf_counter() - began) * 1000
        if response.status_code == 504:
            message = error_text(response)
            row = RunRow(
                f"hang {values['hang_s']} s",
                f"timeout {values['timeout_s']} s",
                "504",
                took,
                "gave up at the timeout, not the hang",
            )
            return [row], Text(message)
        if response.status_code != 200:
            return [_refused("hanging", response)], Text(error_text(response), style="red")
        reply = response.json()
        without = reply["timeout_s"] is None
        row = RunRow(
            f"hang {values['hang_s']} s",
            "no timeout" if without else f"timeout {values['timeout_s']} s",
            "200",
            took,
            f"waited {reply['waited_ms']:.0f} ms",
            ok=not without,
        )
        return [row], Text(reply["note"], style="bold red" if without else "")

    async def _read_stats(self) -> dict[str, Any]:
        response = await self.context.http.get("/cache/stats")
        response.raise_for_status()
        stats: dict[str, Any] = response.json()
        return stats

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
        for row in message.rows:
            self._add_row(row)
        text = Text()
        pitfall = self.context.blocking.enabled and DEMO_BY_KEY[message.demo].pitfall
        if pitfall and not message.summary.plain.startswith("Blocking mode"):
            text.append("blocking mode · ", style="bold red")
        text.append_text(message.summary)
        self._summary.update(text)

    def _add_row(self, row: RunRow) -> None:
        number = str(next(self._numbers))
        style = "" if row.ok else "bold red"
        self._table.add_row(
            number,
            row.demo,
            row.form,
            Text(row.outcome, style=style),
            took_text(row.took_ms),
            row.detail,
            key=number,
        )
        self._row_keys.append(number)
        if len(self._row_keys) > self.MAX_ROWS:
            self._table.remove_row(self._row_keys.pop(0))
        self._table.move_cursor(row=self._table.row_count - 1)

    # -- code view -----------------------------------------------------------------------

    def code_blocks(self, stall: Stall | None = None) -> list[SourceBlock]:
        demo = self.last_demo
        client = _RUNNERS[demo]
        if demo == "clients":
            return [
                source_of(routes.call_shared, "server: the shared client"),
                source_of(routes.call_per_request, "server: a client per request"),
                source_of(client, "client: this pane's worker"),
            ]
        if demo == "hanging":
            return [
                source_of(routes.fetch_hanging, "server: the call with a timeout"),
                source_of(client, "client: this pane's worker"),
            ]
        return [
            source_of(TTLCache.get_or_compute, "server: the TTL cache (single flight)"),
            source_of(routes.cached_value, "server: the route in front of it"),
            source_of(client, "client: this pane's worker"),
        ]


def took_text(ms: float) -> str:
    """``0.006 ms``, ``4.2 ms``, ``312 ms``: a cache hit takes microseconds."""
    if ms < 1:
        return f"{ms:.3f} ms"
    return f"{ms:.1f} ms" if ms < 10 else f"{ms:.0f} ms"


def _refused(demo: str, response: httpx.Response) -> RunRow:
    return RunRow(demo, "", str(response.status_code), 0.0, error_text(response)[:120], ok=False)


Runner = Callable[[CachePane, dict[str, str]], Awaitable[tuple[list[RunRow], Text]]]

#: each demonstration's worker (the code view shows it)
_RUNNERS: dict[str, Runner] = {
    "get": CachePane.get_one,
    "stampede": CachePane.stampede,
    "sweep": CachePane.sweep,
    "clients": CachePane.compare_clients,
    "hanging": CachePane.hanging,
}

#: the fields each demonstration reads
_FIELDS_OF: dict[str, tuple[str, ...]] = {
    "get": ("key", "delay_s", "ttl_s"),
    "stampede": ("key", "delay_s", "ttl_s", "callers"),
    "sweep": ("ttl_s",),
    "clients": ("calls", "concurrency"),
    "hanging": ("hang_s", "timeout_s"),
}
