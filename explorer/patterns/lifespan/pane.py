"""Lifespan pane: a child app's real life in three forms, and a pool drained by leaks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Button, Input, Label, Select, Static

from explorer.code_source import SourceBlock, source_of
from explorer.pane import Lesson, LessonLine, PatternPane, Teaching
from explorer.patterns.lifespan import client
from explorer.patterns.lifespan.client import Drain, PoolStep
from explorer.patterns.lifespan.figures import (
    drain_body,
    drain_verdict,
    gauge_text,
    leftovers_text,
    life_body,
    life_verdict,
)
from explorer.widgets.live_text import LiveText
from explorer.widgets.number_field import number_input
from fastasync_probe.monitor import Stall
from server.patterns.lifespan import child_apps, connections, pool
from server.patterns.lifespan import router as routes

#: how often the pool's gauge is read while the pane is on screen
GAUGE_POLL_S = 0.25

DEMOS = (("App startup & shutdown", "app"), ("Pooled connection", "pool"))
APP_FORMS = (
    ("by mode (b)", "mode"),
    ("lifespan, corrected", "lifespan"),
    ("lifespan, guide's", "naive"),
    ("@app.on_event", "on_event"),
)
POOL_FORMS = (("by mode (b)", "mode"), ("async with", "acm"), ("bare acquire", "leak"))

TEACHINGS: dict[str, Teaching] = {
    "lifespan": Teaching(
        lesson="lifespan, corrected: each resource goes on an AsyncExitStack as soon as it "
        "opens, so even a startup failing half-way closes what it opened. (The guide's "
        "snippet, open-open-yield-close-close, has no try/finally: it would leak here.)"
    ),
    "naive": Teaching(
        lesson="The guide's lifespan as written: fine while all goes well; when the second "
        "open fails, nothing closes the first (no try/finally around the yield)."
    ),
    "on_event": Teaching(
        lesson="@app.on_event (deprecated): when a startup handler fails, uvicorn exits "
        "without running any shutdown handler, so the database the first one opened stays "
        "open, held in a module global."
    ),
    "acm": Teaching(
        lesson="async with connection(pool): the guide's context manager rolls back and "
        "releases on any error, so the pool stays full however many requests fail."
    ),
    "leak": Teaching(
        lesson="Acquire without a context manager: the exception skips the release, so each "
        "failing request keeps its connection for good (the pool holds a strong reference: "
        "no garbage collector gives it back), until acquires time out: 503."
    ),
}
#: what "by mode" means: the right form, and the pitfall blocking mode switches to
BY_MODE = {"app": ("lifespan", "on_event"), "pool": ("acm", "leak")}


class LifespanPane(
    PatternPane,
    slug="lifespan",
    title="Lifespan",
    summary="resources opened and closed: lifespan, async with",
):
    """Runs a child app's life or a drain of the pool; shows the log and the live gauge."""

    DEFAULT_CSS = """
    LifespanPane Horizontal { height: 1; }
    LifespanPane #controls Button { margin-left: 1; min-width: 5; }
    LifespanPane #demo { width: 28; }
    LifespanPane #app-form, LifespanPane #pool-form { width: 24; }
    LifespanPane #fail-at { width: 20; }
    LifespanPane .field { width: auto; margin-right: 1; }
    LifespanPane .field Label { padding: 0 1 0 0; }
    LifespanPane Lesson { margin-top: 1; }
    LifespanPane #status { height: 1; }
    LifespanPane #verdict { height: 2; }
    LifespanPane #log { height: 1fr; min-height: 3; }
    """

    @dataclass
    class GaugeRead(Message):
        """A reading of ``GET /lifespan/pool``."""

        gauge: dict[str, Any]

    @dataclass
    class LifeDone(Message):
        """A child app's life came back (or the reason it did not)."""

        life: dict[str, Any] | None
        error: str = ""

    @dataclass
    class Stepped(Message):
        """One request of a drain came back."""

        step: PoolStep

    @dataclass
    class DrainDone(Message):
        """A drain ended (or the reason it stopped)."""

        run: Drain | None
        error: str = ""

    demo: reactive[str] = reactive("app", init=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Held, not queried: the gauge poll updates them at any time, teardown included.
        self._status = LiveText(id="status")
        self._verdict = Static(id="verdict")
        self._log = Static(id="log-text")
        self.gauge: dict[str, Any] | None = None
        self.leftovers: int | None = None
        #: the last life or drain (tests and the snapshot read them)
        self.life: dict[str, Any] | None = None
        self.drain: Drain | None = None
        #: the running drain's requests so far
        self._steps: list[PoolStep] = []

    def compose(self) -> ComposeResult:
        with Horizontal(id="controls"):
            yield self._select("demo", DEMOS, "app")
            yield Button("Run", id="lifespan-run", variant="primary", compact=True)
            yield Button(
                "Clean up",
                id="lifespan-clean",
                tooltip="Close what runs left open; give leaked connections back",
                compact=True,
            )
        with Horizontal(id="fields"):
            with Horizontal(classes="field field-app"):
                yield Label("form")
                yield self._select("app-form", APP_FORMS, "mode")
            with Horizontal(classes="field field-app"):
                yield Label("startup")
                yield self._select(
                    "fail-at", (("2nd open fails", "second"), ("all opens work", "none")), "second"
                )
            with Horizontal(classes="field field-pool"):
                yield Label("form")
                yield self._select("pool-form", POOL_FORMS, "mode")
            with Horizontal(classes="field field-pool"):
                yield Label("requests")
                yield number_input("requests", "6", 1, 20, "Failing requests")
            with Horizontal(classes="field field-pool"):
                yield Label("timeout s")
                yield number_input("timeout_s", "1.0", 0.05, 10, "Acquire timeout (s)")
        yield Lesson(id="lesson")
        yield self._status
        yield self._verdict
        with VerticalScroll(id="log"):
            yield self._log

    @staticmethod
    def _select(select_id: str, options: tuple[tuple[str, str], ...], value: str) -> Select[str]:
        # type_to_search off: the app's keys (digits, b, r, c, q) must reach it
        return Select(
            options,
            value=value,
            allow_blank=False,
            type_to_search=False,
            id=select_id,
            compact=True,
        )

    def on_mount(self) -> None:
        self._show_demo()
        self.follow_gauge()

    def on_show(self) -> None:
        # The menu, not a text field: r, b and c must reach the app when the pane opens.
        self.query_one("#demo", Select).focus()

    # -- the live gauge ------------------------------------------------------------------------

    @work(group="lifespan-gauge")
    async def follow_gauge(self) -> None:
        """The pool's gauge, 4 times a second while the pane is on screen."""
        await self.poll_while_shown("/lifespan/pool", GAUGE_POLL_S, self._gauge_arrived)

    def _gauge_arrived(self, gauge: dict[str, Any]) -> None:
        self.post_message(self.GaugeRead(gauge))

    def on_lifespan_pane_gauge_read(self, message: GaugeRead) -> None:
        self.gauge = message.gauge
        self._show_status()

    def _show_status(self) -> None:
        if self.demo == "pool":
            self._status.show(gauge_text(self.gauge))
        else:
            self._status.show(leftovers_text(self.leftovers))

    # -- controls ------------------------------------------------------------------------------

    @on(Select.Changed)
    def _select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "demo" and isinstance(event.value, str):
            self.demo = event.value
        self.show_lesson()

    def watch_demo(self) -> None:
        self._show_demo()

    def _show_demo(self) -> None:
        """Only the chosen demo's fields; its lesson, its live line."""
        for group in self.query(".field"):
            group.display = group.has_class(f"field-{self.demo}")
        self.show_lesson()
        self._show_status()

    def _value(self, select_id: str) -> str:
        value = self.query_one(f"#{select_id}", Select).value
        return value if isinstance(value, str) else "mode"

    def form_in_use(self, blocking: bool) -> str:
        """The form the next run takes: the one chosen, or by blocking mode."""
        chosen = self._value("app-form" if self.demo == "app" else "pool-form")
        right, pitfall = BY_MODE[self.demo]
        return chosen if chosen != "mode" else pitfall if blocking else right

    def lesson_of(self, blocking: bool) -> LessonLine:
        form = self.form_in_use(blocking)
        pitfall = form in ("naive", "on_event", "leak")
        text = TEACHINGS[form].lesson
        return LessonLine(f"Blocking mode: {text}" if pitfall and blocking else text, pitfall)

    @on(Button.Pressed, "#lifespan-run")
    def action_run(self) -> None:
        """The ``r`` key: run the chosen demo once."""
        if self.still_running("Still running the last one."):
            return
        if self.demo == "pool":
            fields = (self.query_one("#requests", Input), self.query_one("#timeout_s", Input))
            if not self.fields_valid(*fields):
                return
            self.running = True
            self._verdict.update(Text("draining the pool…", style="dim italic"))
            self._log.update("")
            self._steps = []
            self.run_drain(self._value("pool-form"), int(fields[0].value), float(fields[1].value))
        else:
            self.running = True
            self._verdict.update(Text("the child app is living its life…", style="dim italic"))
            self.run_life(self._value("app-form"), self._value("fail-at"))

    @on(Button.Pressed, "#lifespan-clean")
    def _clean_pressed(self) -> None:
        self.clean_up()

    # -- workers and their answers -------------------------------------------------------------

    @work(exclusive=True, group="lifespan-run")
    async def run_life(self, form: str, fail_at: str) -> None:
        """One child app's life on the server."""
        try:
            self.post_message(
                self.LifeDone(await client.app_life(self.context.http, form, fail_at))
            )
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            self.post_message(self.LifeDone(None, f"{type(exc).__name__}: {exc}"))

    @work(exclusive=True, group="lifespan-run")
    async def run_drain(self, form: str, requests: int, timeout_s: float) -> None:
        """Failing requests on the pool, one after another; each one shown as it comes."""
        try:
            run = await client.drain_pool(
                self.context.http,
                form,
                requests,
                timeout_s,
                self._stepped,
            )
            self.post_message(self.DrainDone(run))
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            self.post_message(self.DrainDone(None, f"{type(exc).__name__}: {exc}"))

    def _stepped(self, step: PoolStep) -> None:
        self.post_message(self.Stepped(step))

    @work(group="lifespan-clean")
    async def clean_up(self) -> None:
        """Close the leftovers and give leaked connections back; say what that did."""
        try:
            closed = await client.clean_up(self.context.http)
            reset = await client.reset_pool(self.context.http)
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            self.notify(f"{type(exc).__name__}: {exc}", title="Clean up failed", severity="error")
            return
        self.leftovers = closed["leftovers"]
        self.gauge = reset["pool"]
        self._show_status()
        self.notify(
            f"closed {len(closed['closed'])} left-open resource(s); "
            f"gave back {reset['returned']} leaked connection(s)",
            title="Clean up",
            timeout=3,
        )

    def on_lifespan_pane_life_done(self, message: LifeDone) -> None:
        self.running = False
        if message.life is None:
            self._verdict.update(Text(f"The request failed: {message.error}", style="bold red"))
            return
        self.life = message.life
        self.leftovers = message.life["leftovers"]
        self._verdict.update(life_verdict(message.life))
        self._log.update(life_body(message.life))
        self._show_status()

    def on_lifespan_pane_stepped(self, message: Stepped) -> None:
        self.gauge = message.step.gauge
        self._show_status()
        self._steps.append(message.step)
        self._log.update(drain_body(Drain("", 0, steps=self._steps)))

    def on_lifespan_pane_drain_done(self, message: DrainDone) -> None:
        self.running = False
        if message.run is None:
            self._verdict.update(Text(f"The request failed: {message.error}", style="bold red"))
            return
        self.drain = message.run
        self._verdict.update(drain_verdict(message.run))
        self._log.update(drain_body(message.run))

    # -- code view -----------------------------------------------------------------------------

    def code_blocks(self, stall: Stall | None = None) -> list[SourceBlock]:
        form = self.form_in_use(self.context.blocking.enabled)
        if self.demo == "pool":
            work = connections.with_context_manager
            if form == "leak":
                work = connections.without_context_manager
            return [
                source_of(work, "server: the request's work on a pooled connection"),
                source_of(pool.connection, "server: the guide's async context manager"),
                source_of(routes.pool_request, "server: POST /lifespan/pool/request"),
                source_of(client.drain_pool, "client: this pane's worker"),
            ]
        shapes: dict[str, Callable[..., Any]] = {
            "lifespan": child_apps.corrected_lifespan,
            "naive": child_apps.naive_lifespan,
            "on_event": child_apps.on_event_app,
        }
        shape = shapes[form]
        return [
            source_of(shape, f"server: the child app's resources ({form})"),
            source_of(routes.run_app, "server: POST /lifespan/app/run"),
            source_of(client.app_life, "client: this pane's worker"),
        ]
