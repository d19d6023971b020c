"""Background jobs pane: BackgroundTasks, a bounded queue, fire-and-forget and debounce, live."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import httpx
from httpx_sse import aconnect_sse
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Button, DataTable, Input, Label, RadioButton, RadioSet, Static

from explorer.code_source import SourceBlock, source_of
from explorer.pane import Lesson, LessonLine, PatternPane, Teaching
from explorer.patterns.tasks.outcome import Run, outcome_of
from explorer.patterns.tasks.table import COLUMNS, STATE_STYLE, STATES, job_cells
from explorer.widgets.choice_buttons import choice_buttons
from explorer.widgets.control_row import ControlRow
from explorer.widgets.live_text import LiveText
from explorer.widgets.number_field import number_input
from fastasync_probe.monitor import Stall
from server.patterns.tasks import router as routes

#: "fail" first: the default, and where the set's cursor starts when it takes focus
KINDS = ("fail", "sleep", "hang")
DEBOUNCE_TRIGGERS = 10
#: quiet time before a debounced run: well over a trigger's round trip on a busy machine
DEBOUNCE_DELAY_S = 0.5


@dataclass(frozen=True, kw_only=True)
class Action(Teaching):
    """A button: what it sends and what it teaches."""

    key: str
    label: str
    handler: Callable[..., Any]


#: said in blocking mode by the actions that have no pitfall form
NO_PITFALL = " (No pitfall form: b changes Fire & forget and Debounce.)"

ACTIONS: tuple[Action, ...] = (
    Action(
        key="fire_and_forget",
        label="Fire & forget",
        handler=routes.fire_and_forget,
        lesson="create_task with the task kept and a done callback: the outcome, error "
        "included, is recorded on the job as soon as it ends.",
        pitfall="Blocking mode: a bare create_task, no reference kept, no callback: the job "
        "stays 'running' for ever and its exception is never seen.",
    ),
    Action(
        key="background",
        label="Background ×3",
        handler=routes.background_jobs,
        lesson="BackgroundTasks run after the response is sent, in turn: sleep, the kind "
        "chosen, sleep. A failure is recorded and the next job still runs.",
        no_pitfall=NO_PITFALL,
    ),
    Action(
        key="queue",
        label="Queue",
        handler=routes.enqueue_job,
        lesson="A bounded queue, two workers: jobs wait their turn, and a full queue answers "
        "503 at once instead of growing.",
        no_pitfall=NO_PITFALL,
    ),
    Action(
        key="debounce",
        label="Debounce ×10",
        handler=routes.debounce,
        lesson="Ten triggers 20 ms apart collapse into one run, 0.5 s after the last one.",
        pitfall="Blocking mode: no debounce, so ten triggers mean ten runs.",
    ),
)
ACTION_BY_KEY = {action.key: action for action in ACTIONS}


class TasksPane(
    PatternPane,
    slug="tasks",
    title="Background jobs",
    summary="BackgroundTasks, a bounded queue, fire-and-forget, debounce",
):
    """A live job table fed by the server's SSE stream, and buttons that make jobs."""

    MAX_ROWS = 200
    #: how often the result line is re-read (a lost job's "N s after" grows; at most 2 Hz)
    OUTCOME_REFRESH_S = 0.5

    DEFAULT_CSS = """
    TasksPane #kind { width: auto; layout: horizontal; margin-right: 2; }
    TasksPane #kind RadioButton { width: auto; margin-right: 1; }
    TasksPane #duration { width: 10; }
    TasksPane Lesson { max-height: 3; margin-top: 1; }
    TasksPane #outcome { height: 2; }
    TasksPane #counts { height: 1; }
    /* no sideways scrollbar: a long error is cut here, the result line has it whole */
    TasksPane #jobs { height: 1fr; min-height: 4; overflow-x: hidden; }
    """

    @dataclass
    class StreamEvent(Message):
        """A ``snapshot`` or ``job`` event from /tasks/stream, or a connection status."""

        event: str
        data: Any

    @dataclass
    class ActionDone(Message):
        """A button's requests came back: the jobs they made, or why not."""

        run: Run
        outcome: str
        ok: bool

    last_action: reactive[str] = reactive("fire_and_forget", init=False)
    connected: reactive[bool] = reactive(False, init=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.jobs: dict[int, dict[str, Any]] = {}
        #: the last action's jobs, whose result the outcome line tells
        self.run: Run | None = None
        # Held, not queried: the live feed updates them whenever an event arrives, possibly
        # while the app tears its widgets down.
        self._counts = Static(id="counts")
        self._outcome = LiveText(id="outcome")
        self._table: DataTable[str | Text] = DataTable(
            id="jobs", cursor_type="row", zebra_stripes=True
        )
        self._runs_sent = 0
        self.queue_info: dict[str, Any] = {}

    def compose(self) -> ComposeResult:
        with ControlRow(id="controls"):
            yield Label("kind")
            with RadioSet(id="kind", compact=True):
                for kind in KINDS:
                    yield RadioButton(kind, value=kind == "fail", id=f"kind-{kind}", compact=True)
            yield Label("duration (s)")
            yield number_input("duration", "0.5", 0, 30, "Job duration (s)")
        with ControlRow(id="actions"):
            yield from choice_buttons(((a.key, a.label) for a in ACTIONS), "do", "fire_and_forget")
        yield Lesson(id="lesson")
        yield self._outcome
        yield self._counts
        yield self._table

    def on_mount(self) -> None:
        table = self._table
        for column in COLUMNS:
            table.add_column(column, key=column)
        self._show_outcome()
        self.follow_jobs()
        self.set_interval(self.OUTCOME_REFRESH_S, self._show_outcome)

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
            self._show_outcome()
        elif message.event == "job":
            self._upsert(message.data)
            self._show_counts()
            self._show_outcome()

    def _upsert(self, job: dict[str, Any]) -> None:
        table = self._table
        key = str(job["id"])
        cells = job_cells(job)
        if job["id"] in self.jobs:
            for column, value in zip(table.columns, cells, strict=True):
                table.update_cell(key, column, value, update_width=True)
        else:
            table.add_row(*cells, key=key)
            if table.row_count > self.MAX_ROWS:
                oldest = min(self.jobs)
                table.remove_row(str(oldest))
                del self.jobs[oldest]
            # the newest job is the one to read: keep it in view (the table fills in order)
            table.scroll_end(animate=False, immediate=False, x_axis=False)
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
            text.append(f"{counts[state]}  ", style=STATE_STYLE[state])
        if not self.connected:
            text.append("· live feed reconnecting…", style="bold yellow")
        self._counts.update(text, layout=False)

    def _show_outcome(self) -> None:
        """The last action's result in words; redrawn only when its words change."""
        if self.run is None:
            text = Text("r runs the highlighted button; the result is told here", style="dim")
        else:
            text = outcome_of(self.run, self.jobs)
        self._outcome.show(text)

    @property
    def outcome_text(self) -> str:
        """The result line as displayed (plain text)."""
        return self._outcome.shown

    # -- buttons -------------------------------------------------------------------------

    def lesson_of(self, blocking: bool) -> LessonLine:
        return ACTION_BY_KEY[self.last_action].line(blocking)

    def watch_last_action(self) -> None:
        self.show_lesson()
        for other in ACTIONS:  # the button r presses is the highlighted one
            button = self.query_one(f"#do-{other.key}", Button)
            button.variant = "primary" if other.key == self.last_action else "default"

    def _chosen_kind(self) -> str:
        pressed = self.query_one("#kind", RadioSet).pressed_index
        return KINDS[pressed] if pressed >= 0 else "sleep"

    @on(Button.Pressed, "#actions Button")
    def _action_pressed(self, event: Button.Pressed) -> None:
        """Each action's button is named after it: ``do-<key>``."""
        self.trigger((event.button.id or "").removeprefix("do-"))

    def action_run(self) -> None:
        """The ``r`` key: repeat the last action (Fire & forget at first)."""
        self.trigger(self.last_action)

    def trigger(self, key: str) -> None:
        """Validate, then send the action's requests from a worker."""
        duration_field = self.query_one("#duration", Input)
        if not self.fields_valid(duration_field):
            return
        self.last_action = key
        self._runs_sent += 1
        self.run = Run(key, seq=self._runs_sent)
        self._show_outcome()
        self.send_action(self.run, self._chosen_kind(), float(duration_field.value))

    @work(group="tasks-actions")
    async def send_action(self, sent: Run, kind: str, duration_s: float) -> None:
        """The requests behind each button, over real HTTP."""
        http = self.context.http
        key, run = sent.action, sent
        try:
            if key == "background":
                jobs = [
                    {"kind": "sleep", "duration_s": duration_s},
                    {"kind": kind, "duration_s": duration_s},
                    {"kind": "sleep", "duration_s": duration_s},
                ]
                response = await http.post("/tasks/background", json={"jobs": jobs})
                if response.status_code < 400:
                    run = replace(sent, job_ids=tuple(response.json()["job_ids"]))
            elif key in ("queue", "fire_and_forget"):
                path = "/tasks/queue" if key == "queue" else "/tasks/fire-and-forget"
                response = await http.post(path, json={"kind": kind, "duration_s": duration_s})
                if response.status_code < 400:
                    body = response.json()
                    run = replace(
                        sent, job_ids=(body["job_id"],), supervised=body.get("supervised", True)
                    )
            else:
                ids: list[int] = []
                for _ in range(DEBOUNCE_TRIGGERS):
                    response = await http.post(
                        "/tasks/debounce", json={"key": "pane", "delay_s": DEBOUNCE_DELAY_S}
                    )
                    if response.status_code >= 400:
                        break
                    job_id = response.json()["job_id"]
                    if job_id is not None and job_id not in ids:
                        ids.append(job_id)
                    await asyncio.sleep(0.02)
                run = replace(sent, job_ids=tuple(ids), triggers=DEBOUNCE_TRIGGERS)
            ok = response.status_code < 400
            outcome = f"{response.status_code} {response.json()}"
            if not ok:
                detail = response.json().get("detail", response.text)
                run = replace(sent, refused=f"{response.status_code} {str(detail)[:120]}")
        except (httpx.HTTPError, ValueError) as exc:
            ok, outcome = False, f"{type(exc).__name__}: {exc}"
            run = replace(sent, refused=outcome[:120])
        self.post_message(self.ActionDone(run, outcome, ok))

    def on_tasks_pane_action_done(self, message: ActionDone) -> None:
        if self.run is None or message.run.seq == self.run.seq:  # not overtaken by a newer one
            self.run = message.run
            self._show_outcome()
        if not message.ok:  # the result line says what happened; a refusal also pops up
            label = ACTION_BY_KEY[message.run.action].label
            self.notify(
                message.outcome[:200], title=f"{label}: refused", severity="warning", timeout=3
            )

    # -- code view -----------------------------------------------------------------------

    def code_blocks(self, stall: Stall | None = None) -> list[SourceBlock]:
        action = ACTION_BY_KEY[self.last_action]
        return [
            source_of(action.handler, f"server: {action.label}"),
            source_of(TasksPane.send_action, "client: this pane's worker"),
        ]
