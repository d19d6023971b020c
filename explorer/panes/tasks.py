"""Background jobs pane: BackgroundTasks, a bounded queue, fire-and-forget and debounce, live."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx
from httpx_sse import aconnect_sse
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Button, DataTable, Input, Label, RadioButton, RadioSet, Static

from server.monitor import Stall
from server.routes import tasks as routes

from ..code_source import SourceBlock, source_of
from ..widgets.number_field import invalid_fields, number_input
from .base import PatternPane

KINDS = ("sleep", "fail", "hang")
STATES = ("pending", "running", "done", "failed", "cancelled", "lost")
_STATE_STYLE = {
    "pending": "dim",
    "running": "bold cyan",
    "done": "green",
    "failed": "bold red",
    "cancelled": "yellow",
    "lost": "bold magenta",
}


@dataclass(frozen=True)
class Action:
    """A button: what it sends and what it teaches."""

    key: str
    label: str
    handler: Callable[..., Any]
    lesson: str
    pitfall: str


ACTIONS: tuple[Action, ...] = (
    Action(
        "background",
        "Background ×3",
        routes.background_jobs,
        "BackgroundTasks run after the response is sent, one after another: the "
        "'after response' column shows the gap. This sends sleep, the chosen kind, then "
        "sleep again: a failure in the middle is recorded, and the next job still runs.",
        "",
    ),
    Action(
        "queue",
        "Queue",
        routes.enqueue_job,
        "A bounded queue with two workers: heavier jobs wait their turn, and a full "
        "queue answers 503 at once instead of growing without end.",
        "",
    ),
    Action(
        "fire_and_forget",
        "Fire & forget",
        routes.fire_and_forget,
        "create_task with a reference kept and a done callback: the outcome, error "
        "included, lands in the job table.",
        "Blocking mode: a bare create_task, no reference and no callback. The job shows "
        "'running' for ever, and its exception is swallowed.",
    ),
    Action(
        "debounce",
        "Debounce ×10",
        routes.debounce,
        "Ten triggers 20 ms apart collapse into one run, delay_s after the last one.",
        "Blocking mode: no debounce, so ten triggers mean ten runs.",
    ),
)
ACTION_BY_KEY = {action.key: action for action in ACTIONS}


class TasksPane(PatternPane):
    """A live job table fed by the server's SSE stream, and buttons that make jobs."""

    SLUG: ClassVar[str] = "tasks"
    TITLE: ClassVar[str] = "Background jobs"
    SUMMARY: ClassVar[str] = "BackgroundTasks, a bounded queue, fire-and-forget, debounce"

    MAX_ROWS = 200

    DEFAULT_CSS = """
    TasksPane #controls { height: auto; }
    TasksPane #kind { width: 16; height: auto; }
    TasksPane #controls Label { padding: 1 1 0 2; }
    TasksPane #duration { width: 10; }
    TasksPane #actions { height: auto; }
    TasksPane #actions Button { margin-right: 1; }
    TasksPane #lesson { height: auto; color: $text-muted; }
    TasksPane #lesson.-blocking { color: $error; }
    TasksPane #counts { height: 1; }
    TasksPane #jobs { height: 1fr; }
    """

    class StreamEvent(Message):
        """A ``snapshot`` or ``job`` event from /tasks/stream, or a connection status."""

        def __init__(self, event: str, data: Any) -> None:
            super().__init__()
            self.event = event
            self.data = data

    class ActionDone(Message):
        """A button's request came back."""

        def __init__(self, action: str, outcome: str, ok: bool) -> None:
            super().__init__()
            self.action = action
            self.outcome = outcome
            self.ok = ok

    last_action: reactive[str] = reactive("background", init=False)
    connected: reactive[bool] = reactive(False, init=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.jobs: dict[int, dict[str, Any]] = {}
        # Held, not queried: the live feed updates them whenever an event arrives, possibly
        # while the app tears its widgets down.
        self._counts = Static(id="counts")
        self._table: DataTable[str | Text] = DataTable(
            id="jobs", cursor_type="row", zebra_stripes=True
        )
        self.queue_info: dict[str, Any] = {}

    def compose(self) -> ComposeResult:
        with Horizontal(id="controls"):
            with RadioSet(id="kind"):
                for kind in KINDS:
                    yield RadioButton(kind, value=kind == "fail", id=f"kind-{kind}")
            yield Label("duration (s)")
            yield number_input("duration", "0.5", 0, 30, "Job duration (s)")
        with Horizontal(id="actions"):
            for action in ACTIONS:
                yield Button(
                    action.label,
                    id=f"do-{action.key}",
                    variant="primary" if action.key == "background" else "default",
                )
        yield Static(id="lesson")
        yield self._counts
        yield self._table

    def on_mount(self) -> None:
        table = self._table
        for column in ("job", "origin", "kind", "state", "took", "after response", "error"):
            table.add_column(column, key=column)
        self.context.blocking.subscribe(lambda _: self._show_lesson())
        self._show_lesson()
        self.follow_jobs()

    # -- the live feed -------------------------------------------------------------------

    @work(group="tasks-stream")
    async def follow_jobs(self) -> None:
        """Follow /tasks/stream for as long as the pane lives; reconnect if it drops."""
        delay = 0.5
        while True:
            try:
                async with aconnect_sse(self.context.http, "GET", "/tasks/stream") as source:
                    source.response.raise_for_status()
                    self.post_message(self.StreamEvent("connected", True))
                    delay = 0.5
                    async for event in source.aiter_sse():
                        self.post_message(self.StreamEvent(event.event, event.json()))
            except (httpx.HTTPError, ValueError) as exc:
                self.post_message(self.StreamEvent("disconnected", f"{type(exc).__name__}"))
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    def on_tasks_pane_stream_event(self, message: StreamEvent) -> None:
        if message.event == "connected":
            self.connected = True
        elif message.event == "disconnected":
            self.connected = False
        elif message.event == "snapshot":
            for job in reversed(message.data.get("jobs", [])):
                self._upsert(job)
            self.queue_info = message.data.get("queue", {})
            self._show_counts()
        elif message.event == "job":
            self._upsert(message.data)
            self._show_counts()

    def _upsert(self, job: dict[str, Any]) -> None:
        table = self._table
        key = str(job["id"])
        cells = _cells(job)
        if job["id"] in self.jobs:
            for column, value in zip(table.columns, cells, strict=True):
                table.update_cell(key, column, value, update_width=True)
        else:
            table.add_row(*cells, key=key)
            if table.row_count > self.MAX_ROWS:
                oldest = min(self.jobs)
                table.remove_row(str(oldest))
                del self.jobs[oldest]
        self.jobs[job["id"]] = job

    def watch_connected(self) -> None:
        self._show_counts()

    def _show_counts(self) -> None:
        counts = {state: 0 for state in STATES}
        for job in self.jobs.values():
            counts[job["state"]] = counts.get(job["state"], 0) + 1
        text = Text()
        for state in STATES:
            text.append(f"{state} ", style="dim")
            text.append(f"{counts[state]}  ", style=_STATE_STYLE[state])
        if not self.connected:
            text.append("· live feed reconnecting…", style="bold yellow")
        self._counts.update(text, layout=False)

    # -- buttons -------------------------------------------------------------------------

    def _show_lesson(self) -> None:
        action = ACTION_BY_KEY[self.last_action]
        pitfall = self.context.blocking.enabled and bool(action.pitfall)
        lesson = self.query_one("#lesson", Static)
        lesson.update(action.pitfall if pitfall else action.lesson)
        lesson.set_class(pitfall, "-blocking")

    def watch_last_action(self) -> None:
        self._show_lesson()

    def _chosen_kind(self) -> str:
        pressed = self.query_one("#kind", RadioSet).pressed_index
        return KINDS[pressed] if pressed >= 0 else "sleep"

    @on(Button.Pressed)
    def _button(self, event: Button.Pressed) -> None:
        if event.button.id and event.button.id.startswith("do-"):
            self.trigger(event.button.id.removeprefix("do-"))

    def action_run(self) -> None:
        """The ``r`` key: repeat the last action."""
        self.trigger(self.last_action)

    def trigger(self, key: str) -> None:
        """Validate, then send the action's requests from a worker."""
        duration_field = self.query_one("#duration", Input)
        problems = invalid_fields(duration_field)
        if problems:
            self.notify(problems[0][1], title="Invalid input", severity="error")
            duration_field.focus()
            return
        self.last_action = key
        self.send_action(key, self._chosen_kind(), float(duration_field.value))

    @work(group="tasks-actions")
    async def send_action(self, key: str, kind: str, duration_s: float) -> None:
        """The requests behind each button, over real HTTP."""
        http = self.context.http
        try:
            if key == "background":
                jobs = [
                    {"kind": "sleep", "duration_s": duration_s},
                    {"kind": kind, "duration_s": duration_s},
                    {"kind": "sleep", "duration_s": duration_s},
                ]
                response = await http.post("/tasks/background", json={"jobs": jobs})
            elif key == "queue":
                body = {"kind": kind, "duration_s": duration_s}
                response = await http.post("/tasks/queue", json=body)
            elif key == "fire_and_forget":
                body = {"kind": kind, "duration_s": duration_s}
                response = await http.post("/tasks/fire-and-forget", json=body)
            else:
                response = None
                for _ in range(10):
                    response = await http.post(
                        "/tasks/debounce", json={"key": "pane", "delay_s": 0.2}
                    )
                    await asyncio.sleep(0.02)
            assert response is not None
            ok = response.status_code < 400
            outcome = f"{response.status_code} {response.json()}"
        except (httpx.HTTPError, ValueError) as exc:
            ok, outcome = False, f"{type(exc).__name__}: {exc}"
        self.post_message(self.ActionDone(key, outcome, ok))

    def on_tasks_pane_action_done(self, message: ActionDone) -> None:
        label = ACTION_BY_KEY[message.action].label
        self.notify(
            message.outcome[:200],
            title=label if message.ok else f"{label}: refused",
            severity="information" if message.ok else "warning",
            timeout=3,
        )

    # -- code view -----------------------------------------------------------------------

    def code_blocks(self, stall: Stall | None = None) -> list[SourceBlock]:
        action = ACTION_BY_KEY[self.last_action]
        return [
            source_of(action.handler, f"server: {action.label}"),
            source_of(TasksPane.send_action, "client: this pane's worker"),
        ]


def _cells(job: dict[str, Any]) -> tuple[str | Text, ...]:
    took = "" if job.get("duration_ms") is None else f"{job['duration_ms']:.0f} ms"
    after = job.get("response_sent_ms")
    return (
        str(job["id"]),
        job["origin"],
        job["kind"],
        Text(job["state"], style=_STATE_STYLE.get(job["state"], "")),
        took,
        "" if after is None else f"+{after:.0f} ms",
        job.get("error") or "",
    )
