"""What every pattern pane provides to the shell, and what it gets from this base.

A pane subclasses :class:`PatternPane`, sets ``SLUG``, ``TITLE`` and ``SUMMARY``, yields a
:class:`Lesson` in its ``compose``, and implements :meth:`PatternPane.action_run`,
:meth:`PatternPane.lesson_of` and :meth:`PatternPane.code_blocks`. The base follows the
blocking switch (and lets go of it when the pane goes), redraws the lesson line, runs the
pane on Enter in a field, and refuses bad input the same way in every pane.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx
from rich.text import Text
from textual import on
from textual.containers import Vertical
from textual.events import Mount, Unmount
from textual.widget import Widget
from textual.widgets import Input, Static

from explorer.code_source import SourceBlock
from explorer.context import ExplorerContext
from explorer.widgets.number_field import invalid_fields
from fastasync_probe.monitor import Stall


@dataclass(frozen=True, kw_only=True)
class Teaching:
    """What a choice in a pane teaches: its lesson, and its pitfall's when it has one.

    Keyword-only, so a pane's own dataclass (a handler style, a strategy, an action) can
    subclass it and keep its positional fields first.
    """

    lesson: str
    #: said instead in blocking mode; empty when the choice has no pitfall form
    pitfall: str = ""
    #: said after the lesson in blocking mode by a choice with no pitfall form (where to
    #: find one instead); empty: the lesson alone
    no_pitfall: str = ""

    def line(self, blocking: bool) -> LessonLine:
        """The lesson line for this choice in the current mode."""
        if blocking and self.pitfall:
            return LessonLine(self.pitfall, pitfall=True)
        if blocking:
            return LessonLine(self.lesson + self.no_pitfall)
        return LessonLine(self.lesson)


@dataclass(frozen=True)
class LessonLine:
    """What the lesson line says, and whether it is the pitfall's (drawn as an error)."""

    text: str | Text
    pitfall: bool = False


class Lesson(Static):
    """The pane's lesson line: muted for the right form, in the error colour for the pitfall."""

    DEFAULT_CSS = """
    Lesson { height: auto; color: $text-muted; }
    Lesson.-blocking { color: $error; }
    """

    def show(self, line: LessonLine) -> None:
        """Say ``line``."""
        self.update(line.text)
        self.set_class(line.pitfall, "-blocking")


class PatternPane(Vertical):
    """A pattern's live view. Subclasses set the class variables and the methods below."""

    SLUG: ClassVar[str]
    TITLE: ClassVar[str]
    SUMMARY: ClassVar[str]
    #: how often a hidden pane's poll looks again whether it is shown
    HIDDEN_POLL_S: ClassVar[float] = 0.5

    DEFAULT_CSS = """
    PatternPane { padding: 0 1; }
    """

    def __init_subclass__(
        cls,
        *,
        slug: str | None = None,
        title: str | None = None,
        summary: str | None = None,
        **options: Any,
    ) -> None:
        """``class HelloPane(PatternPane, slug="hello", title="Hello", summary="...")``:
        the pattern's slug (its homes and its place in the menu), its menu title and the
        line the command palette shows."""
        super().__init_subclass__(**options)
        for name, value in (("SLUG", slug), ("TITLE", title), ("SUMMARY", summary)):
            if value is not None:
                setattr(cls, name, value)

    def __init__(self, context: ExplorerContext) -> None:
        super().__init__(id=f"pane-{self.SLUG}")
        self.context = context
        self.border_title = self.TITLE
        #: a run is in progress: the pane sets it, :meth:`still_running` reads it
        self.running = False
        #: ends the blocking switch's subscription (set while the pane is mounted)
        self._unfollow_blocking: Callable[[], None] | None = None

    # -- what a pane implements ---------------------------------------------------------------

    def action_run(self) -> None:
        """The pane's main action (the ``r`` key, Enter in a field)."""
        raise NotImplementedError

    def lesson_of(self, blocking: bool) -> LessonLine:
        """What the lesson line says now, in blocking mode or not."""
        raise NotImplementedError

    def code_blocks(self, stall: Stall | None = None) -> list[SourceBlock]:
        """The server code that ran last and the pane's own client code, read from disk."""
        raise NotImplementedError

    def blocking_changed(self, enabled: bool) -> None:
        """Blocking mode was switched: by default, the lesson line is said again."""
        self.show_lesson()

    # -- what the base does for every pane ----------------------------------------------------

    def show_lesson(self) -> None:
        """Redraw the lesson line (call it when what the lesson depends on changes)."""
        lessons = self.query(Lesson)
        if lessons:
            line = self.lesson_of(self.context.blocking.enabled)
            for lesson in lessons:
                lesson.show(line)

    @on(Mount)
    def _follow_blocking_mode(self) -> None:
        self._unfollow_blocking = self.context.blocking.subscribe(self.blocking_changed)
        self.show_lesson()

    @on(Unmount)
    def _stop_following_blocking_mode(self) -> None:
        if self._unfollow_blocking is not None:
            self._unfollow_blocking()
            self._unfollow_blocking = None

    @on(Input.Submitted)
    def _field_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.submit(event.input)

    def submit(self, field: Input) -> None:
        """Enter in one of the pane's fields: runs the pane, unless a pane maps it elsewhere."""
        self.action_run()

    def still_running(self, what: str) -> bool:
        """True, having said ``what``, while the pane's last run has not ended: one run at a
        time."""
        if self.running:
            self.notify(what, severity="warning")
        return self.running

    def refuse(
        self, reason: str, field: Widget | None = None, title: str = "Invalid input"
    ) -> None:
        """Say why the pane will not run (a notification), and put the cursor where to fix it."""
        self.notify(reason, title=title, severity="error")
        if field is not None:
            field.focus()

    def fields_valid(self, *fields: Input) -> bool:
        """True when every field holds a valid value; else refuse, naming the first bad one."""
        problems = invalid_fields(*fields)
        if problems:
            field, reason = problems[0]
            self.refuse(reason, field)
            return False
        return True

    async def poll_while_shown(
        self, path: str, every_s: float, deliver: Callable[[dict[str, Any]], None]
    ) -> None:
        """GET ``path`` every ``every_s`` and hand its JSON to ``deliver``, for as long as the
        calling worker lives.

        While the pane is hidden behind another it sends nothing (it costs the server
        nothing); a failed poll (the server starting or stopping) is skipped: the next says.
        """
        while True:
            if not self.display:
                await asyncio.sleep(self.HIDDEN_POLL_S)
                continue
            with contextlib.suppress(httpx.HTTPError, ValueError):
                deliver((await self.context.http.get(path)).json())
            await asyncio.sleep(every_s)
