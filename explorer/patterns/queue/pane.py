"""Durable queue pane: arq workers on Redis against BackgroundTasks; kill -9 them, scale them."""

from __future__ import annotations

import asyncio
import contextlib
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
from textual.widgets import Button, DataTable, Input, Label, RadioButton, RadioSet

from explorer.code_source import SourceBlock, source_of
from explorer.pane import Lesson, LessonLine, PatternPane
from explorer.patterns.queue import demos
from explorer.patterns.queue.client import QueueClient, QueueUnavailable
from explorer.patterns.queue.outcome import (
    enqueue_text,
    scale_text,
    server_kill_text,
    worker_kill_text,
)
from explorer.patterns.queue.table import (
    JOB_COLUMNS,
    STATE_STYLE,
    STATES,
    WORKER_COLUMNS,
    job_cells,
    lost_rows,
    sync_rows,
    worker_cells,
)
from explorer.patterns.queue.teaching import ACTION_BY_KEY, ACTIONS, BACKEND_BY_KEY, BACKENDS
from explorer.widgets.choice_buttons import choice_buttons
from explorer.widgets.control_row import ControlRow
from explorer.widgets.live_text import LiveText
from explorer.widgets.number_field import number_input
from explorer.widgets.stall_inspector import is_server_stall
from fastasync_probe.monitor import Stall

KINDS = ("cpu", "sleep", "fail", "hang")
#: jobs the pane lists (the newest)
LISTED = 30
#: a run's jobs are followed this long at most (a hang job times out after 5 s)
FOLLOW_S = 60.0


class QueuePane(
    PatternPane,
    slug="queue",
    title="Durable queue",
    summary="arq on Redis with worker processes, against BackgroundTasks",
):
    """Buttons that enqueue, kill and scale; the workers and the jobs, polled live."""

    STATUS_POLL_S = 1.0
    JOBS_POLL_S = 0.5

    DEFAULT_CSS = """
    QueuePane RadioSet { width: auto; layout: horizontal; margin-right: 2; }
    QueuePane RadioSet RadioButton { width: auto; margin-right: 1; }
    QueuePane #queue-seconds { width: 6; }
    QueuePane #queue-jobs, QueuePane #queue-workers { width: 5; }
    QueuePane #queue-redis { height: 1; }
    QueuePane Lesson { max-height: 3; }
    QueuePane #queue-outcome { height: 2; }
    QueuePane #queue-counts { height: 1; }
    QueuePane #queue-tables { height: 1fr; min-height: 4; }
    QueuePane #worker-table { width: 33; height: 1fr; margin-right: 1; overflow-x: hidden; }
    QueuePane #job-table { width: 1fr; height: 1fr; overflow-x: hidden; }
    """

    @dataclass
    class Finished(Message):
        """A button's work ended: what to say, and whether it was refused."""

        seq: int
        text: Text
        refused: bool = False
        #: the run is over (else a progress line)
        final: bool = True

    last_action: reactive[str] = reactive("enqueue", init=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = QueueClient(self.context.http)
        self.status: dict[str, Any] = {}
        self.listing: list[dict[str, Any]] = []
        #: the in-process jobs a killed server child took with it (shown as "lost")
        self.lost_jobs: list[dict[str, Any]] = []
        self._redis_line = LiveText(id="queue-redis")
        self._outcome = LiveText(id="queue-outcome")
        self._counts = LiveText(id="queue-counts")
        self._workers: DataTable[str | Text] = DataTable(id="worker-table", cursor_type="row")
        self._jobs: DataTable[str | Text] = DataTable(id="job-table", cursor_type="row")
        self._seq = 0
        self._said: Text = Text("r runs the highlighted button; the result is told here")

    def compose(self) -> ComposeResult:
        with ControlRow(id="queue-where"):
            with RadioSet(id="queue-backend", compact=True):
                for choice in BACKENDS:
                    yield RadioButton(
                        choice.label,
                        value=choice.key == "inprocess",
                        id=f"backend-{choice.key}",
                        compact=True,
                    )
            yield Label("workers")
            yield number_input("queue-workers", "2", 0, 8, "Worker processes")
        with ControlRow(id="queue-controls"):
            with RadioSet(id="queue-kind", compact=True):
                for kind in KINDS:
                    yield RadioButton(kind, value=kind == "cpu", id=f"kind-{kind}", compact=True)
            yield Label("s")
            yield number_input("queue-seconds", "0.25", 0, 4, "Seconds per job")
            yield Label("jobs")
            yield number_input("queue-jobs", "4", 1, 200, "Jobs per run")
        with ControlRow(id="queue-actions"):
            yield from choice_buttons(((a.key, a.label) for a in ACTIONS), "do", "enqueue")
        yield self._redis_line
        yield Lesson(id="lesson")
        yield self._outcome
        yield self._counts
        with Horizontal(id="queue-tables"):
            yield self._workers
            yield self._jobs

    def on_mount(self) -> None:
        for column in WORKER_COLUMNS:
            self._workers.add_column(column, key=column)
        for column in JOB_COLUMNS:
            self._jobs.add_column(column, key=column)
        self._outcome.show(Text(self._said.plain, style="dim"))
        self.follow_status()
        self.follow_jobs()

    # -- what the server says ------------------------------------------------------------

    def _status_arrived(self, status: dict[str, Any]) -> None:
        self.status = status
        text = Text()
        if status.get("redis_up"):
            text.append("Redis ", style="dim")
            text.append(status.get("redis_url", ""), style="bold")
            text.append(" up · jobs: ", style="dim")
            text.append(self.backend_name(), style="bold")
        else:
            text.append(status.get("reason") or "Redis does not answer.", style="bold yellow")
            text.append(" Jobs stay in-process.", style="dim")
        self._redis_line.show(text)
        rows = [(str(w["pid"]), worker_cells(w)) for w in status.get("workers", [])]
        sync_rows(self._workers, rows)

    @property
    def redis_up(self) -> bool:
        return bool(self.status.get("redis_up"))

    def backend(self) -> str:
        """Where Enqueue sends jobs: the backend chosen, in-process while Redis is down."""
        pressed = self.query_one("#queue-backend", RadioSet).pressed_index
        chosen = BACKENDS[max(0, pressed)].key
        return "inprocess" if chosen == "redis" and self.status and not self.redis_up else chosen

    def backend_name(self) -> str:
        if self.backend() == "redis":
            return "the Redis queue"
        if self.context.blocking.enabled:
            return "in-process, CPU on the loop"
        return "in-process, CPU in a pool"

    @on(RadioSet.Changed, "#queue-backend")
    def _backend_changed(self, event: RadioSet.Changed) -> None:
        event.stop()
        if self.backend() != BACKENDS[event.index].key:  # Redis chosen while it is down
            self.refuse(f"{self.status.get('reason')} Jobs stay in-process.")
            self.query_one("#backend-inprocess", RadioButton).value = True
        self.last_action = "enqueue"
        self.show_lesson()
        if self.status:
            self._status_arrived(self.status)

    @work(group="queue-status")
    async def follow_status(self) -> None:
        """Redis and the workers, while the pane is shown."""
        await self.poll_while_shown("/queue", self.STATUS_POLL_S, self._status_arrived)

    @work(group="queue-jobs")
    async def follow_jobs(self) -> None:
        """The current backend's newest jobs, while the pane is shown (none while Redis
        does not answer: its listing is a 503)."""
        while True:
            if self.display:
                with contextlib.suppress(httpx.HTTPError, ValueError):
                    response = await self.context.http.get(
                        "/queue/jobs", params={"backend": self.backend(), "limit": LISTED}
                    )
                    if response.status_code == 200:
                        self._jobs_arrived(response.json()["jobs"])
            await asyncio.sleep(self.JOBS_POLL_S if self.display else self.HIDDEN_POLL_S)

    def _jobs_arrived(self, jobs: list[dict[str, Any]]) -> None:
        self.listing = jobs
        shown = self.lost_jobs + jobs[::-1]  # the newest first
        sync_rows(self._jobs, [(str(job["id"]), job_cells(job)) for job in shown])
        counts = {state: 0 for state in STATES}
        for job in shown:
            counts[job["state"]] = counts.get(job["state"], 0) + 1
        text = Text()
        for state in STATES:
            text.append(f"{state} ", style="dim")
            text.append(f"{counts[state]}  ", style=STATE_STYLE[state] if counts[state] else "")
        text.append("ran twice ", style="dim")
        twice = sum(int(job.get("runs") or 0) > 1 for job in shown)
        text.append(str(twice), style="bold yellow" if twice else "")
        self._counts.show(text)

    # -- buttons -------------------------------------------------------------------------

    def lesson_of(self, blocking: bool) -> LessonLine:
        if self.last_action == "enqueue":
            return BACKEND_BY_KEY[self.backend()].line(blocking)
        return ACTION_BY_KEY[self.last_action].line(blocking)

    def blocking_changed(self, enabled: bool) -> None:
        self.show_lesson()
        if self.status:
            self._status_arrived(self.status)

    def watch_last_action(self) -> None:
        self.show_lesson()
        for other in ACTIONS:  # the button r presses is the highlighted one
            button = self.query_one(f"#do-{other.key}", Button)
            button.variant = "primary" if other.key == self.last_action else "default"

    @on(Button.Pressed, "#queue-actions Button")
    def _action_pressed(self, event: Button.Pressed) -> None:
        self.trigger((event.button.id or "").removeprefix("do-"))

    def action_run(self) -> None:
        """The ``r`` key: the highlighted button (Enqueue at first)."""
        self.trigger(self.last_action)

    def submit(self, field: Input) -> None:
        """Enter in the workers field sets the workers; elsewhere it runs the pane."""
        if field.id == "queue-workers":
            if self.fields_valid(field):
                self.set_workers(int(field.value))
            return
        self.action_run()

    def _field(self, name: str) -> Input:
        return self.query_one(f"#{name}", Input)

    def trigger(self, key: str) -> None:
        """Validate, then run the action from a worker."""
        fields = [self._field(name) for name in ("queue-seconds", "queue-jobs", "queue-workers")]
        if not self.fields_valid(*fields):
            return
        if self.still_running("A run is in progress; its result comes here."):
            return
        if key != "enqueue" and self.status and not self.redis_up:
            self.refuse(f"{self.status.get('reason')} This demo needs the Redis queue.")
            return
        self.last_action = key
        self.running = True
        self._seq += 1
        self._say(Text(f"{ACTION_BY_KEY[key].label}…", style="dim"))
        seconds, count, workers = (float(f.value) for f in fields)
        self.perform(self._seq, key, seconds, int(count), int(workers))

    def _say(self, text: Text) -> None:
        self._said = text
        self._outcome.show(text)

    @work(group="queue-actions")
    async def perform(self, seq: int, key: str, seconds: float, count: int, workers: int) -> None:
        """The requests behind each button, over real HTTP; progress goes to the result line."""

        def progress(line: str) -> None:
            self.post_message(self.Finished(seq, Text(line + "…", style="dim"), final=False))

        try:
            if key == "enqueue":
                text = await self._enqueue(seconds, count, workers)
            elif key == "kill_worker":
                text = worker_kill_text(
                    await demos.kill_a_worker(
                        self.queue, seconds=min(seconds, 0.2), progress=progress
                    )
                )
            elif key == "kill_server":
                found = await demos.kill_the_server(
                    self.queue,
                    self.context.redis_url,
                    seconds=min(seconds, 0.2),
                    workers=max(1, workers),
                    progress=progress,
                )
                self.lost_jobs = lost_rows(found.lost, found.child_pid, min(seconds, 0.2))
                text = server_kill_text(found)
            else:
                text = scale_text(
                    await demos.scale(self.queue, jobs=count, seconds=seconds, progress=progress)
                )
            self.post_message(self.Finished(seq, text))
        except QueueUnavailable as exc:
            self.post_message(self.Finished(seq, Text(str(exc), style="bold yellow"), True))
        except Exception as exc:  # a child that would not start, a dropped connection
            said = Text(f"{type(exc).__name__}: {exc}"[:200], style="bold red")
            self.post_message(self.Finished(seq, said, True))

    async def _enqueue(self, seconds: float, count: int, workers: int) -> Text:
        kind = KINDS[max(0, self.query_one("#queue-kind", RadioSet).pressed_index)]
        backend = self.backend()
        blocking = self.context.blocking.enabled
        if backend == "redis":
            await self.queue.scale(workers)
        began = time.perf_counter()
        began_wall = time.time()
        ids = await self.queue.enqueue(kind, seconds, count, backend)
        listing = await self.queue.until(backend, ids, count, within_s=FOLLOW_S)
        wall = time.perf_counter() - began
        stalls = [s for s in await self.context.stalls_since(began_wall) if is_server_stall(s)]
        if backend == "redis":
            where = f"{workers} worker process(es)"
        elif kind != "cpu":
            where = "this server's loop"
        else:
            where = "this server's loop" if blocking else "this server's process pool"
        return enqueue_text(listing, where, wall, stalls)

    def set_workers(self, count: int) -> None:
        self._scale(count)

    @work(group="queue-scale")
    async def _scale(self, count: int) -> None:
        try:
            await self.queue.scale(count)
        except QueueUnavailable as exc:
            said = Text(str(exc), style="bold yellow")
            self.post_message(self.Finished(self._seq, said, True, final=not self.running))

    def on_queue_pane_finished(self, message: Finished) -> None:
        if message.seq == self._seq:
            self._say(message.text)
            if message.final:  # running ends with its result on screen, not before
                self.running = False
        if message.refused:
            self.notify(message.text.plain[:200], title="Durable queue", severity="warning")

    @property
    def outcome_text(self) -> str:
        """The result line as displayed (plain text)."""
        return self._outcome.shown

    # -- code view -----------------------------------------------------------------------

    def code_blocks(self, stall: Stall | None = None) -> list[SourceBlock]:
        action = ACTION_BY_KEY[self.last_action]
        code = BACKEND_BY_KEY[self.backend()].code if action.key == "enqueue" else action.code
        return [source_of(part, f"{action.label}: {part.__qualname__}") for part in code]
