"""Deadlock tab: two transfers that take two locks in opposite order, or a dependency that
waits for its own handler; the task inspector's view of them while they hang.

A tab of the correctness pane, built as ``DeadlockTab(context)``. Its worker (I/O through
:mod:`explorer.patterns.correctness.deadlock_client`) sends the requests and looks at
``GET /monitor/tasks`` while they hang; the tab shows the cycle it reports, how long it took
to appear, and the loop lag meanwhile (flat: a deadlock does not block the loop, which is
why the stall inspector never sees one). A hang ends with End, a pane switch, quitting, or
the server's bound.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import httpx
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Button, Input, Label, Select, Static

from explorer.code_source import SourceBlock, source_of
from explorer.context import ExplorerContext
from explorer.pane import LessonLine, Teaching
from explorer.patterns.correctness import deadlock_client
from explorer.patterns.correctness.controls import TabLesson, choice_select, form_lesson
from explorer.patterns.correctness.deadlock_client import Watch
from explorer.widgets.number_field import invalid_fields, number_input
from server.patterns.correctness import deadlock

DEMOS = (("Two locks", "transfer"), ("Dependency", "handshake"))
FORMS = {
    "transfer": (
        ("by mode (b)", "mode"),
        ("opposite order", "pitfall"),
        ("fixed order", "ordered"),
        ("timeout + retry", "timeout"),
    ),
    "handshake": (("by mode (b)", "mode"), ("waits first", "pitfall"), ("after yield", "right")),
}
#: the form a run with "by mode" takes
BY_MODE = {("transfer", True): "pitfall", ("transfer", False): "ordered"} | {
    ("handshake", True): "pitfall",
    ("handshake", False): "right",
}

TEACHINGS: dict[tuple[str, str], Teaching] = {
    ("transfer", "pitfall"): Teaching(
        lesson="Two requests take lock A and lock B in opposite order: each holds one and "
        "waits for the other, for ever. The loop is idle, so loop lag stays flat and the "
        "stall inspector sees nothing; the task inspector (t) shows the cycle. End it, or "
        "wait for its bound."
    ),
    ("transfer", "ordered"): Teaching(
        lesson="Fixed: every request takes the locks in one order (A, then B), so no cycle "
        "can form; the second request waits its turn, then both finish."
    ),
    ("transfer", "timeout"): Teaching(
        lesson="Fixed: asyncio.timeout around the second acquire turns the deadlock into a "
        "timeout; the request releases its first lock, pauses a random while and retries, "
        "so one of the two gets both and both finish."
    ),
    ("handshake", "pitfall"): Teaching(
        lesson="The dependency waits for an event its own handler sets, but FastAPI runs "
        "the handler only after the dependency returns: the request hangs, the loop idles."
    ),
    ("handshake", "right"): Teaching(
        lesson="Fixed: the dependency yields first and waits on the teardown side of its "
        "yield, which runs after the handler: the event is set by then."
    ),
}


class DeadlockTab(Vertical):
    """Runs the lab's requests, shows the cycle and the loop lag while they hang."""

    DEFAULT_CSS = """
    DeadlockTab { height: 1fr; }
    DeadlockTab Horizontal { height: 1; }
    DeadlockTab #deadlock-controls Button { margin-left: 1; min-width: 5; }
    DeadlockTab #deadlock-demo { width: 16; }
    DeadlockTab #deadlock-form { width: 22; }
    DeadlockTab .field { width: auto; margin-left: 1; }
    DeadlockTab .field Label { padding: 0 1 0 0; }
    DeadlockTab #deadlock-bound { width: 6; }
    DeadlockTab TabLesson { margin-top: 1; }
    DeadlockTab #deadlock-verdict { height: 2; }
    DeadlockTab #deadlock-view { height: 1fr; min-height: 3; }
    """

    @dataclass
    class Looked(Message):
        """The worker looked at the task inspector again (a copy of what it knows)."""

        watch: Watch

    @dataclass
    class Done(Message):
        """The run's requests have all answered (or the reason they could not be sent)."""

        watch: Watch | None
        error: str = ""

    demo: reactive[str] = reactive("transfer", init=False)

    def __init__(self, context: ExplorerContext) -> None:
        super().__init__(id="deadlock")
        self.context = context
        self.running = False
        #: the last run, as the worker last reported it (tests read it)
        self.last_run: Watch | None = None
        self._verdict = Static(id="deadlock-verdict")
        self._view = Static(id="deadlock-view")

    def compose(self) -> ComposeResult:
        with Horizontal(id="deadlock-controls"):
            yield choice_select("deadlock-demo", DEMOS, "transfer")
            yield choice_select("deadlock-form", FORMS["transfer"], "mode")
            with Horizontal(classes="field"):
                yield Label("bound s")
                yield number_input("deadlock-bound", "20", 0.1, 120, "Upper bound of a hang (s)")
            yield Button("Run", id="deadlock-run", variant="primary", compact=True)
            yield Button("End", id="deadlock-end", tooltip="End the stuck requests", compact=True)
        yield TabLesson(id="deadlock-lesson")
        yield self._verdict
        yield self._view

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
        self._unfollow = self.context.blocking.subscribe(lambda _enabled: self.show_lesson())
        self.show_lesson()

    def on_unmount(self) -> None:
        self._unfollow()

    def pane_hidden(self) -> None:
        """Another pane was opened: a hang ends (quitting ends it in the server)."""
        if self.running:
            self.end_stuck()

    # -- what the pane asks of its tab -------------------------------------------------------

    def form_in_use(self, blocking: bool) -> str:
        """The form the next run takes: the one chosen, or by blocking mode."""
        chosen = self._form_chosen()
        return BY_MODE[(self.demo, blocking)] if chosen == "mode" else chosen

    def lesson_of(self, blocking: bool) -> LessonLine:
        """The chosen demo's lesson in the form the next run takes."""
        form = self.form_in_use(blocking)
        pitfall = form == "pitfall"
        text = TEACHINGS[(self.demo, form)].lesson
        return form_lesson(text, pitfall, blocking)

    def show_lesson(self) -> None:
        """Redraw the lesson line."""
        self.query_one(TabLesson).show(self.lesson_of(self.context.blocking.enabled))

    def code_blocks(self) -> list[SourceBlock]:
        """The server code the next run takes and this tab's client code, from disk."""
        if self.demo == "handshake":
            server = [
                source_of(deadlock.handshake_dependency, "server: the dependency"),
                source_of(deadlock.handshake, "server: POST /correctness/deadlock/handshake"),
            ]
        else:
            server = [
                source_of(deadlock.take_both, "server: both locks, in the form's order"),
                source_of(deadlock.transfer, "server: POST /correctness/deadlock/transfer"),
            ]
        return [*server, source_of(deadlock_client.run_lab, "client: this tab's worker")]

    # -- controls ----------------------------------------------------------------------------

    def _form_chosen(self) -> str:
        value = self.query_one("#deadlock-form", Select).value
        return value if isinstance(value, str) else "mode"

    @on(Select.Changed, "#deadlock-demo")
    def _demo_changed(self, event: Select.Changed) -> None:
        if isinstance(event.value, str) and event.value != self.demo:
            self.demo = event.value
            self.query_one("#deadlock-form", Select).set_options(FORMS[self.demo])
        self.show_lesson()

    @on(Select.Changed, "#deadlock-form")
    def _form_changed(self) -> None:
        self.show_lesson()

    @on(Button.Pressed, "#deadlock-run")
    def action_run(self) -> None:
        """Run the chosen demo once (the pane's ``r``)."""
        if self.running:
            self.notify("Still running: End ends it.", severity="warning")
            return
        bound = self.query_one("#deadlock-bound", Input)
        problems = invalid_fields(bound)
        if problems:
            self.notify(problems[0][1], title="Invalid input", severity="error")
            problems[0][0].focus()
            return
        self.running = True
        self._verdict.update(Text("sending the requests…", style="dim italic"))
        self._view.update("")
        form = self._form_chosen()
        self.run_lab(self.demo, form, float(bound.value))

    @on(Button.Pressed, "#deadlock-end")
    def end_stuck(self) -> None:
        """End the stuck requests now (each answers 409)."""
        self.end_lab()

    # -- workers and their answers -----------------------------------------------------------

    @work(exclusive=True, group="deadlock-run")
    async def run_lab(self, demo: str, form: str, bound_s: float) -> None:
        """The run's requests, watched until they all answer."""
        try:
            watch = await deadlock_client.run_lab(
                self.context.http,
                demo,
                form,
                bound_s,
                lambda seen: self.post_message(self.Looked(replace(seen))),
            )
            self.post_message(self.Done(watch))
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            self.post_message(self.Done(None, f"{type(exc).__name__}: {exc}"))

    @work(group="deadlock-end")
    async def end_lab(self) -> None:
        try:
            ended = await deadlock_client.end_lab(self.context.http)
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            self.notify(f"{type(exc).__name__}: {exc}", title="End failed", severity="error")
            return
        if ended == 0 and not self.running:
            self.notify("Nothing is stuck.", timeout=3)

    def on_deadlock_tab_looked(self, message: Looked) -> None:
        self.last_run = message.watch
        self._show(message.watch, done=False)

    def on_deadlock_tab_done(self, message: Done) -> None:
        self.running = False
        if message.watch is None:
            self._verdict.update(Text(f"The request failed: {message.error}", style="bold red"))
            return
        self.last_run = message.watch
        self._show(message.watch, done=True)

    def _show(self, watch: Watch, done: bool) -> None:
        lag = self.context.monitor.lag(window_s=watch.elapsed_s)
        self._verdict.update(deadlock_verdict(watch, lag.p99, done))
        self._view.update(deadlock_view(watch))


def deadlock_verdict(watch: Watch, lag_p99_ms: float, done: bool) -> Text:
    """Two lines: what the requests did, and the loop lag meanwhile."""
    failed = [answer for answer in watch.answers if answer.status >= 400]
    if not done:
        head = Text(f"stuck for {watch.elapsed_s:.1f} s", style="bold red")
        if watch.cycle is not None:
            head.append(
                f": cycle found by the task inspector after {watch.cycle_after_s:.1f} s",
                style="bold",
            )
    elif failed:
        head = Text(f"{len(failed)} of {len(watch.answers)} ended stuck (409)", style="bold red")
    else:
        head = Text(f"all {len(watch.answers)} finished (200)", style="bold green")
    lag = Text(
        f"\nloop lag p99 meanwhile {lag_p99_ms:.1f} ms: the loop idles, no stall",
        style="dim" if done else "",
    )
    return head + lag


def deadlock_view(watch: Watch) -> Text:
    """The cycle (or what each task waits on), then each answer."""
    text = Text()
    if watch.cycle is not None:
        text.append(f"wait-for cycle: {' -> '.join(watch.cycle.locks)}\n", style="bold")
        for line in watch.cycle.lines:
            text.append(f"  {line}\n")
    elif watch.waiting:
        for line in watch.waiting:
            text.append(f"{line}\n")
    if watch.inspector_missing:
        text.append("(no task inspector on this server: GET /monitor/tasks is 404)\n", "dim")
    for answer in watch.answers:
        style = "red" if answer.status >= 400 else "green"
        text.append(f"{answer.status} {answer.name}: {answer.detail}\n", style)
    return text
