"""The shape every correctness tab (but the guide's) shares: a form choice (by mode, right,
pitfall), an optional second choice, a Run button, the tab's lesson, a verdict and a log.

A tab subclasses :class:`DemoTab`, names its ids' prefix, its choices and lessons, and gives
``fetch`` (the worker's request, through :mod:`explorer.patterns.correctness.client`),
``draw`` (the verdict and log of a result, from :mod:`.figures`) and ``code_blocks``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Input, Label, Select, Static

from explorer.code_source import SourceBlock
from explorer.context import ExplorerContext
from explorer.pane import LessonLine
from explorer.patterns.correctness.controls import Choices, TabLesson, choice_select, form_lesson
from explorer.widgets.number_field import invalid_fields

FORMS = (("by mode (b)", "mode"), ("pitfall", "pitfall"), ("right", "right"))


class DemoTab(Vertical):
    """One demo: run it in the form chosen (or blocking mode's), show what came back."""

    DEFAULT_CSS = """
    DemoTab { height: 1fr; }
    DemoTab .controls { height: 1; }
    DemoTab .controls Button { margin-left: 1; min-width: 5; }
    DemoTab .controls Label { padding: 0 1; }
    DemoTab .choice { width: 22; }
    DemoTab .form { width: 17; }
    DemoTab TabLesson { margin-top: 1; }
    DemoTab .verdict { height: 2; }
    DemoTab .log { height: 1fr; min-height: 3; }
    """

    #: the prefix of the tab's ids (``<prefix>-form``, ``<prefix>-run`` ...)
    PREFIX: ClassVar[str] = "demo"
    #: the second choice (a store, a kind), or none
    CHOICES: ClassVar[Choices] = ()
    #: the lesson of each (choice, form); choice "" when there is no second choice
    LESSONS: ClassVar[dict[tuple[str, str], str]] = {}

    @dataclass
    class Done(Message):
        """A run came back (or the reason it did not)."""

        tab: DemoTab
        result: Any
        error: str = ""

    def __init__(self, context: ExplorerContext) -> None:
        super().__init__(id=f"{self.PREFIX}-tab")
        self.context = context
        self.running = False
        #: the last run's result (tests read it)
        self.result: Any = None
        self._verdict = Static(id=f"{self.PREFIX}-verdict", classes="verdict")
        self._log = Static(id=f"{self.PREFIX}-log-text")
        self._unfollow: Callable[[], None] | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(classes="controls"):
            if self.CHOICES:
                yield self._select("choice", self.CHOICES, self.CHOICES[0][1])
            yield self._select("form", FORMS, "mode")
            yield from self.fields()
            yield Button("Run", id=f"{self.PREFIX}-run", variant="primary", compact=True)
        yield TabLesson(id=f"{self.PREFIX}-lesson")
        yield self._verdict
        with VerticalScroll(classes="log"):
            yield self._log

    def fields(self) -> ComposeResult:
        """The tab's number fields (none by default)."""
        yield from ()

    def _select(self, name: str, options: Choices, value: str) -> Select[str]:
        return choice_select(f"{self.PREFIX}-{name}", options, value, classes=name)

    def on_mount(self) -> None:
        self._unfollow = self.context.blocking.subscribe(lambda _enabled: self.show_lesson())
        self.show_lesson()

    def on_unmount(self) -> None:
        if self._unfollow is not None:
            self._unfollow()
            self._unfollow = None

    # -- what the pane asks of its tab -------------------------------------------------------

    @property
    def choice(self) -> str:
        """The second choice's value ("" without one)."""
        if not self.CHOICES:
            return ""
        value = self.query_one(f"#{self.PREFIX}-choice", Select).value
        return value if isinstance(value, str) else self.CHOICES[0][1]

    def form_chosen(self) -> str:
        """mode, right or pitfall, as the select says."""
        value = self.query_one(f"#{self.PREFIX}-form", Select).value
        return value if isinstance(value, str) else "mode"

    def form_in_use(self, blocking: bool) -> str:
        """The form the next run takes: the one chosen, or the pitfall in blocking mode."""
        chosen = self.form_chosen()
        return chosen if chosen != "mode" else "pitfall" if blocking else "right"

    def lesson_of(self, blocking: bool) -> LessonLine:
        """The lesson of the form the next run takes."""
        form = self.form_in_use(blocking)
        text = self.LESSONS[(self.choice, form)]
        pitfall = form == "pitfall"
        return form_lesson(text, pitfall, blocking)

    def show_lesson(self) -> None:
        """Redraw the lesson line."""
        self.query_one(TabLesson).show(self.lesson_of(self.context.blocking.enabled))

    def code_blocks(self) -> list[SourceBlock]:
        """The server code the next run takes and the tab's client code, from disk."""
        raise NotImplementedError

    # -- running -----------------------------------------------------------------------------

    @on(Select.Changed)
    def _select_changed(self) -> None:
        self.show_lesson()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_run()

    @on(Button.Pressed)
    def _run_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == f"{self.PREFIX}-run":
            self.action_run()

    def action_run(self) -> None:
        """Run the demo once (the pane's ``r``)."""
        if self.running:
            self.notify("Still running the last one.", severity="warning")
            return
        problems = invalid_fields(*self.query(Input).results(Input))
        if problems:
            self.notify(problems[0][1], title="Invalid input", severity="error")
            problems[0][0].focus()
            return
        self.running = True
        self._verdict.update(Text("running…", style="dim italic"))
        self._log.update("")
        self.run_worker(self._go(self.form_chosen()), exclusive=True, group=self.PREFIX)

    def pane_hidden(self) -> None:
        """The pane was left: a run still going is cancelled (its requests with it)."""
        if self.running:
            self.workers.cancel_group(self, self.PREFIX)
            self.running = False
            self._verdict.update(Text("cancelled: the pane was left mid-run", style="yellow"))

    async def _go(self, form: str) -> None:
        try:
            self.post_message(self.Done(self, await self.fetch(form)))
        except ValueError as exc:  # the server's refusal: its sentence says why
            self.post_message(self.Done(self, None, str(exc)))
        except (httpx.HTTPError, KeyError) as exc:
            self.post_message(self.Done(self, None, f"{type(exc).__name__}: {exc}"))

    async def fetch(self, form: str) -> Any:
        """The run's requests (in the worker)."""
        raise NotImplementedError

    def draw(self, result: Any) -> tuple[Text, Text]:
        """The verdict and the log of ``result``."""
        raise NotImplementedError

    @on(Done)
    def _done(self, message: Done) -> None:
        if message.tab is not self:
            return
        message.stop()
        self.running = False
        if message.error:
            self._verdict.update(Text(f"The request failed: {message.error}", style="bold red"))
            return
        self.result = message.result
        verdict, log = self.draw(message.result)
        self._verdict.update(verdict)
        self._log.update(log)

    @property
    def figures(self) -> dict[str, Any]:
        """What the verdict and log say now (plain text, for tests and tools)."""
        return {"verdict": str(self._verdict.render()), "log": str(self._log.render())}


def labelled(label: str, field: Input) -> ComposeResult:
    """A field with its label before it, in the controls row."""
    yield Label(label)
    yield field
