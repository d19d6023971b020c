"""The load driver's form: a route's method, path, query and body, how hard, how long.

Filled from the route picked in the list (or typed by hand); Enter in any field, or the
button, asks for a run with what :meth:`LoadForm.request` validated. No I/O here: the view
runs the load.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Button, Input, Label

from explorer.widgets.control_row import ControlRow
from explorer.widgets.live_text import LiveText
from explorer.widgets.number_field import invalid_fields, number_input
from explorer.yourapp.routes import METHODS, RouteInfo, parse_free_form, unfilled_params
from explorer.yourapp.widgets.figures_table import Figures

DEFAULT_CONCURRENCY = "8"
DEFAULT_DURATION_S = "3"


@dataclass(frozen=True, slots=True)
class LoadRequest:
    """A validated run: what the load driver is asked to do."""

    method: str
    path: str
    query: str
    json_body: Any | None
    concurrency: int
    duration_s: float

    @property
    def route(self) -> str:
        return f"{self.method} {self.path}"


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _figures_text(figures: Figures | None) -> Text:
    if figures is None:
        return Text("  starting…", style="dim")
    # fixed widths: the line is redrawn 4 times a second and must not jitter
    text = Text(f"  {figures.requests:>7,} requests")
    text.append(f"  {figures.errors:>4,} errors", style="bold red" if figures.errors else "")
    return text


class LoadForm(Vertical):
    """Method and path, query string, JSON body, concurrency and duration, and Run load."""

    DEFAULT_CSS = """
    LoadForm { height: auto; padding: 0 1; }
    LoadForm Label.-name { width: 12; color: $text-muted; }
    LoadForm #load-method { width: 9; }
    LoadForm #load-path, LoadForm #load-query, LoadForm #load-body { width: 1fr; }
    LoadForm #load-concurrency, LoadForm #load-duration { width: 6; margin-right: 2; }
    LoadForm #run-load { width: 12; }
    LoadForm #load-hint { height: 1; color: $text-muted; }
    LoadForm #load-progress { height: 1; }
    """

    #: a run is going: the button is off and another run is refused
    running: reactive[bool] = reactive(False)

    class RunRequested(Message):
        """Run load with ``request`` (Enter in a field, or the button)."""

        def __init__(self, request: LoadRequest) -> None:
            super().__init__()
            self.request = request

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.method = Input("GET", id="load-method", max_length=7, compact=True)
        self.path = Input(
            "/", id="load-path", placeholder="/items/1 (or POST /orders)", compact=True
        )
        self.query_field = Input(id="load-query", placeholder="no query (a=1&b=2)", compact=True)
        self.body = Input(id="load-body", placeholder="no body", compact=True)
        self.concurrency = number_input(
            "load-concurrency", DEFAULT_CONCURRENCY, 1, 256, "concurrency"
        )
        self.duration = number_input("load-duration", DEFAULT_DURATION_S, 1, 120, "duration (s)")
        self.button = Button("Run load", id="run-load", variant="primary", compact=True)
        self.hint = LiveText(id="load-hint")
        self.progress = LiveText(id="load-progress")

    def compose(self) -> ComposeResult:
        with ControlRow():
            yield Label("method", classes="-name")
            yield self.method
            yield Label(" path")
            yield self.path
        with ControlRow():
            yield Label("query", classes="-name")
            yield self.query_field
        with ControlRow():
            yield Label("JSON body", classes="-name")
            yield self.body
        with ControlRow():
            yield Label("concurrency", classes="-name")
            yield self.concurrency
            yield Label("duration s")
            yield self.duration
            yield self.button
        yield self.hint
        yield self.progress

    def fill(self, route: RouteInfo) -> None:
        """The form for ``route``: its path with examples in the parameters, its query, its
        body (or none); how hard and how long stay as they were."""
        self.method.value = route.method
        self.path.value = route.filled_path()
        self.query_field.value = route.query
        self.body.value = route.body or ""
        self.body.placeholder = "JSON" if route.body is not None else "no body"
        names = ", ".join(name for name, _ in route.path_params)
        self.say(f"{route.label}: path params {names} filled with examples" if names else "")

    def say(self, text: str) -> None:
        """The hint line under the fields (why a run was refused, what was filled in)."""
        self.hint.show(Text(text))

    def request(self) -> LoadRequest | str:
        """The run the form describes, or the sentence that says what is wrong with it."""
        method = self.method.value.strip().upper()
        if method not in METHODS:
            return f"method must be one of {', '.join(METHODS)}"
        path = self.path.value.strip()
        typed = parse_free_form(path)
        if typed is not None:  # "POST /orders" typed in the path field
            method, path = typed
        if not path.startswith("/"):
            return "the path starts with /"
        missing = unfilled_params(path)
        if missing:
            return f"fill in the path's {', '.join('{' + m + '}' for m in missing)}"
        body: Any | None = None
        if self.body.value.strip():
            try:
                body = json.loads(self.body.value)
            except ValueError as exc:
                return f"the body is not JSON: {exc}"
        problems = invalid_fields(self.concurrency, self.duration)
        if problems:
            return problems[0][1]
        return LoadRequest(
            method=method,
            path=path,
            query=self.query_field.value.strip().lstrip("?"),
            json_body=body,
            concurrency=int(self.concurrency.value),
            duration_s=float(self.duration.value),
        )

    def ask(self) -> None:
        """Ask for a run with the form's values (refused in the hint line when they are
        wrong, or while a run goes)."""
        if self.running:
            self.say("⚠ a run is going: wait for its end")
            return
        request = self.request()
        if isinstance(request, str):
            self.say(f"⚠ {request}")
            return
        self.say("")
        self.post_message(self.RunRequested(request))

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.ask()

    @on(Button.Pressed, "#run-load")
    def _pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.ask()

    def watch_running(self, running: bool) -> None:
        self.button.disabled = running
        self.button.label = "Running…" if running else "Run load"

    def show_progress(
        self, route: str, elapsed_s: float, duration_s: float, figures: Figures | None
    ) -> None:
        """``▶ GET /x  1.2/3 s  412 requests  0 errors``, fixed widths."""
        text = Text.assemble(("▶ ", "bold green"), (f"{_cut(route, 18):<18}", "bold"))
        text.append(f" {min(elapsed_s, duration_s):5.1f}/{duration_s:<3g} s", style="dim")
        text.append_text(_figures_text(figures))
        self.progress.show(text)

    def show_done(self, route: str, figures: Figures | None) -> None:
        """The run's last figures (the table has them all)."""
        text = Text.assemble(("✔ ", "bold"), (f"{_cut(route, 18):<18}", "bold"), " done      ")
        text.append_text(_figures_text(figures))
        self.progress.show(text)

    def fields(self) -> list[Input]:
        """The form's inputs in tab order."""
        return [
            self.method,
            self.path,
            self.query_field,
            self.body,
            self.concurrency,
            self.duration,
        ]
