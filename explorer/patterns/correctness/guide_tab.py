"""Guide fixes tab: the guide's Debouncer and upload handler, as written and corrected.

A tab of the correctness pane, built as ``GuideFixesTab(context)``. It runs its own
workers (their I/O through :mod:`explorer.patterns.correctness.guide_client`), draws its
own lesson line (following blocking mode while mounted), and gives the pane its
``lesson_of`` and ``code_blocks``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Button, Input, Label, Select, Static

from explorer.code_source import SourceBlock, source_of
from explorer.context import ExplorerContext
from explorer.pane import LessonLine, Teaching
from explorer.patterns.correctness import guide_client
from explorer.patterns.correctness.controls import TabLesson, choice_select, form_lesson
from explorer.patterns.correctness.guide_client import Burst, Stored
from explorer.patterns.correctness.guide_figures import (
    burst_log,
    burst_verdict,
    upload_log,
    upload_verdict,
)
from explorer.widgets.number_field import invalid_fields, number_input
from server.patterns.correctness import guide_debounce, guide_upload
from server.patterns.tasks.debounce import Bursts

DEMOS = (("Debouncer", "debounce"), ("Upload filename", "upload"))
FORMS = (("by mode (b)", "mode"), ("guide's, as written", "guide"), ("corrected", "fixed"))
#: what the uploads carry (the content does not matter, where it lands does)
CONTENT = b"written by the guide-fixes tab\n"

TEACHINGS: dict[tuple[str, str], Teaching] = {
    ("debounce", "guide"): Teaching(
        lesson="The guide's Debouncer awaits its own task: every caller waits for the run, "
        "and when a later trigger cancels that task, its CancelledError is raised into the "
        "superseded caller's request: a failed request (409 here), not just a skipped run."
    ),
    ("debounce", "fixed"): Teaching(
        lesson="Corrected: a trigger schedules (or joins) the key's one run and returns at "
        "once (202); the run happens once the key is quiet, on a task the server keeps a "
        "strong reference to. No caller waits, none is cancelled."
    ),
    ("upload", "guide"): Teaching(
        lesson='The guide writes to f"/tmp/{file.filename}": the client picks the path, so '
        '"../escaped.txt" lands outside the upload directory (here uploads/ in a sandbox; '
        "anything outside the sandbox is refused, nothing written)."
    ),
    ("upload", "fixed"): Teaching(
        lesson="Corrected: the server names the file (secrets.token_hex(8) + '.bin') and "
        "keeps the client's filename only as escaped metadata: no filename can pick a path."
    ),
}


class GuideFixesTab(Vertical):
    """Fires a burst of callers at the guide's Debouncer or the corrected one, or uploads a
    file under a crafted filename; shows each caller and the verdict."""

    DEFAULT_CSS = """
    GuideFixesTab { height: 1fr; }
    GuideFixesTab Horizontal { height: 1; }
    GuideFixesTab #guide-controls Button { margin-left: 1; min-width: 5; }
    GuideFixesTab #guide-demo { width: 22; }
    GuideFixesTab #guide-form { width: 25; }
    GuideFixesTab #guide-filename { width: 30; }
    GuideFixesTab .field { width: auto; margin-right: 1; }
    GuideFixesTab .field Label { padding: 0 1 0 0; }
    /* a width of their own: an Input's default 100% of an auto-width row is no room */
    GuideFixesTab #guide-callers { width: 4; }
    GuideFixesTab #guide-delay { width: 7; }
    GuideFixesTab TabLesson { margin-top: 1; }
    GuideFixesTab #guide-verdict { height: 2; }
    GuideFixesTab #guide-log { height: 1fr; min-height: 3; }
    """

    @dataclass
    class BurstDone(Message):
        """A burst came back (or the reason it did not)."""

        burst: Burst | None
        error: str = ""

    @dataclass
    class UploadDone(Message):
        """An upload came back (or the reason it did not)."""

        stored: Stored | None
        error: str = ""

    demo: reactive[str] = reactive("debounce", init=False)

    def __init__(self, context: ExplorerContext) -> None:
        super().__init__(id="guide-fixes")
        self.context = context
        self.running = False
        #: the last burst and upload (tests read them)
        self.burst: Burst | None = None
        self.stored: Stored | None = None
        self._verdict = Static(id="guide-verdict")
        self._log = Static(id="guide-log-text")
        self._unfollow: Callable[[], None] | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="guide-controls"):
            yield choice_select("guide-demo", DEMOS, "debounce")
            yield choice_select("guide-form", FORMS, "mode")
            yield Button("Run", id="guide-run", variant="primary", compact=True)
            yield Button(
                "Reset", id="guide-reset", tooltip="Empty the upload sandbox", compact=True
            )
        with Horizontal(id="guide-fields"):
            with Horizontal(classes="field field-debounce"):
                yield Label("callers")
                yield number_input("guide-callers", "5", 1, 50, "Concurrent callers")
            with Horizontal(classes="field field-debounce"):
                yield Label("delay s")
                yield number_input("guide-delay", "0.3", 0.01, 5, "Debounce delay (s)")
            with Horizontal(classes="field field-upload"):
                yield Label("filename")
                yield Input("../escaped.txt", id="guide-filename", max_length=200, compact=True)
        yield TabLesson(id="guide-lesson")
        yield self._verdict
        with VerticalScroll(id="guide-log"):
            yield self._log

    def on_mount(self) -> None:
        self._unfollow = self.context.blocking.subscribe(lambda _enabled: self.show_lesson())
        self._show_demo()

    def on_unmount(self) -> None:
        if self._unfollow is not None:
            self._unfollow()
            self._unfollow = None

    # -- what the pane asks of its tab -------------------------------------------------------

    def form_in_use(self, blocking: bool) -> str:
        """The form the next run takes: the one chosen, or the guide's in blocking mode."""
        value = self.query_one("#guide-form", Select).value
        chosen = value if isinstance(value, str) else "mode"
        return chosen if chosen != "mode" else "guide" if blocking else "fixed"

    def lesson_of(self, blocking: bool) -> LessonLine:
        """The chosen demo's lesson in the form the next run takes."""
        form = self.form_in_use(blocking)
        text = TEACHINGS[(self.demo, form)].lesson
        pitfall = form == "guide"
        return form_lesson(text, pitfall, blocking)

    def show_lesson(self) -> None:
        """Redraw the lesson line."""
        self.query_one(TabLesson).show(self.lesson_of(self.context.blocking.enabled))

    def code_blocks(self) -> list[SourceBlock]:
        """The server code the next run takes and this tab's client code, from disk."""
        form = self.form_in_use(self.context.blocking.enabled)
        if self.demo == "upload":
            handler = guide_upload.guide_upload if form == "guide" else guide_upload.fixed_upload
            blocks = [source_of(handler, f"server: the upload handler ({form})")]
            if form == "guide":
                blocks.append(
                    source_of(guide_upload.UploadSandbox.guide_path, "server: the sandbox check")
                )
            return [
                *blocks,
                source_of(guide_upload.upload, "server: POST /correctness/upload"),
                source_of(guide_client.upload_file, "client: this tab's worker"),
            ]
        if form == "guide":
            shape = [source_of(guide_debounce.Debouncer, "server: the guide's Debouncer")]
        else:
            shape = [
                source_of(guide_debounce.FixedDebouncer, "server: the corrected debouncer"),
                source_of(Bursts.quiet, "server: the tasks pattern's Bursts, reused"),
            ]
        return [
            *shape,
            source_of(guide_debounce.trigger, "server: POST /correctness/debounce/trigger"),
            source_of(guide_client.fire_burst, "client: this tab's worker"),
        ]

    # -- controls ----------------------------------------------------------------------------

    @on(Select.Changed)
    def _select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "guide-demo" and isinstance(event.value, str):
            self.demo = event.value
        self.show_lesson()

    def watch_demo(self) -> None:
        self._show_demo()

    def _show_demo(self) -> None:
        for group in self.query(".field"):
            group.display = group.has_class(f"field-{self.demo}")
        self.show_lesson()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_run()

    @on(Button.Pressed, "#guide-run")
    def action_run(self) -> None:
        """Run the chosen demo once (the pane's ``r``)."""
        if self.running:
            self.notify("Still running the last one.", severity="warning")
            return
        form = self._form_chosen()
        if self.demo == "upload":
            filename = self.query_one("#guide-filename", Input)
            if not filename.value:
                self._refuse("Filename: type one (../escaped.txt shows the escape)", filename)
                return
            self._start("uploading…")
            self.run_upload(form, filename.value)
            return
        fields = (self.query_one("#guide-callers", Input), self.query_one("#guide-delay", Input))
        problems = invalid_fields(*fields)
        if problems:
            self._refuse(problems[0][1], problems[0][0])
            return
        self._start("firing the callers…")
        self.run_burst(form, int(fields[0].value), float(fields[1].value))

    def _form_chosen(self) -> str:
        value = self.query_one("#guide-form", Select).value
        return value if isinstance(value, str) else "mode"

    def _start(self, what: str) -> None:
        self.running = True
        self._verdict.update(Text(what, style="dim italic"))
        self._log.update("")

    def _refuse(self, reason: str, field: Input) -> None:
        self.notify(reason, title="Invalid input", severity="error")
        field.focus()

    @on(Button.Pressed, "#guide-reset")
    def _reset_pressed(self) -> None:
        self.reset_sandbox()

    # -- workers and their answers -----------------------------------------------------------

    @work(exclusive=True, group="guide-run")
    async def run_burst(self, form: str, callers: int, delay_s: float) -> None:
        """The callers, concurrent, on the server; then the key's runs."""
        try:
            burst = await guide_client.fire_burst(self.context.http, form, callers, delay_s)
            self.post_message(self.BurstDone(burst))
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            self.post_message(self.BurstDone(None, f"{type(exc).__name__}: {exc}"))

    @work(exclusive=True, group="guide-run")
    async def run_upload(self, form: str, filename: str) -> None:
        """One upload under ``filename``."""
        try:
            stored = await guide_client.upload_file(self.context.http, form, filename, CONTENT)
            self.post_message(self.UploadDone(stored))
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            self.post_message(self.UploadDone(None, f"{type(exc).__name__}: {exc}"))

    @work(group="guide-reset")
    async def reset_sandbox(self) -> None:
        """Empty the sandbox; say how many files that removed."""
        try:
            removed = await guide_client.reset_sandbox(self.context.http)
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            self.notify(f"{type(exc).__name__}: {exc}", title="Reset failed", severity="error")
            return
        self.notify(f"removed {removed} file(s) from the sandbox", title="Reset", timeout=3)

    def _failed(self, error: str) -> None:
        self._verdict.update(Text(f"The request failed: {error}", style="bold red"))

    def on_guide_fixes_tab_burst_done(self, message: BurstDone) -> None:
        self.running = False
        if message.burst is None:
            self._failed(message.error)
            return
        self.burst = message.burst
        self._verdict.update(burst_verdict(message.burst))
        self._log.update(burst_log(message.burst))

    def on_guide_fixes_tab_upload_done(self, message: UploadDone) -> None:
        self.running = False
        if message.stored is None:
            self._failed(message.error)
            return
        self.stored = message.stored
        self._verdict.update(upload_verdict(message.stored))
        self._log.update(upload_log(message.stored))

    @property
    def figures(self) -> dict[str, Any]:
        """What the verdict and log say now (plain text, for tests and tools)."""
        return {"verdict": str(self._verdict.render()), "log": str(self._log.render())}
