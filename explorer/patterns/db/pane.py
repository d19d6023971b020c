"""Database pane: the live backend, a pool gauge, and the guide's database patterns run on it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from rich.console import Group
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Button, Input, Label, Select, Static

from explorer.code_source import SourceBlock, source_of, with_highlight
from explorer.pane import Lesson, LessonLine, PatternPane
from explorer.patterns.db import client
from explorer.patterns.db.actions import ACTION_BY_KEY, ACTIONS, Action
from explorer.patterns.db.notes import NOTES
from explorer.patterns.db.pool_gauge import PoolGauge
from explorer.patterns.db.results import (
    describe_dashboard,
    describe_exhaust,
    describe_fetch,
    describe_pair,
    describe_report,
)
from explorer.patterns.db.status import BackendLine, orm_line
from explorer.widgets.number_field import number_input
from fastasync_probe.monitor import Stall

__all__ = ["ACTIONS", "ACTION_BY_KEY", "Action", "DbPane"]

#: how often the gauge asks /db/status while the pane is on screen
POLL_S = 0.25
#: where a stall in the server's database code is located (the code view marks its line)
ROUTER_FILE = "server/patterns/db/router.py:"


class DbPane(
    PatternPane,
    slug="db",
    title="Database & pool",
    summary="aiosqlite / asyncpg pool, AsyncSession, batch, N+1, exhaustion",
):
    """The live database and its pool, and the guide's patterns run against them."""

    DEFAULT_CSS = """
    DbPane #orm { height: 1; }
    DbPane #controls { height: 1; }
    DbPane #action { width: 52; }
    DbPane #controls Label { padding: 0 1; }
    DbPane #rows { width: 5; }
    DbPane #run { margin-left: 1; min-width: 5; }
    /* one rule on top (with the title), not a box: at 100×30 every row counts */
    DbPane #results {
        height: 1fr;
        border-top: round $primary 40%;
        border-title-align: left;
    }
    """

    @dataclass
    class StatusUpdate(Message):
        """A fresh ``/db/status`` (``None``: the server did not answer)."""

        status: dict[str, Any] | None

    @dataclass
    class ActionDone(Message):
        """An action's requests came back: what to show, and the figures behind it."""

        key: str
        text: Text | Group
        data: dict[str, Any]

    action_key: reactive[str] = reactive("dashboard", init=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Held, not queried: the status poll updates them at any time, teardown included.
        self._backend = BackendLine(id="backend")
        self._gauge = PoolGauge(id="gauge")
        self._orm = Static(id="orm")
        self._result = Static(id="result")
        self.status: dict[str, Any] | None = None
        #: the last action's figures (tests and the snapshot read them)
        self.result: dict[str, Any] | None = None
        self._began_wall = 0.0
        #: the gauge's highest readings during the running action
        self._peak: dict[str, int] = {}
        #: the slow report's own stalls, from its last run
        self._report_stalls: list[Stall] = []
        self._last_stall: Stall | None = None

    def compose(self) -> ComposeResult:
        yield self._backend
        yield self._gauge
        yield self._orm
        with Horizontal(id="controls"):
            yield Select(
                [(a.label, a.key) for a in ACTIONS],
                value=self.action_key,
                allow_blank=False,
                # the app's keys (digits, b, r, c, q) must reach it, not search the menu
                type_to_search=False,
                id="action",
                compact=True,
            )
            yield Label("rows")
            yield number_input("rows", "1000", 1, 5000, "Rows to insert")
            yield Button("Run", id="run", variant="primary", compact=True)
        yield Lesson(id="lesson")
        with VerticalScroll(id="results") as results:
            results.border_title = "result"
            yield self._result

    def on_mount(self) -> None:
        self.follow_status()

    def on_show(self) -> None:
        # Focus the menu, not the rows field: b, r and c must reach the app when the pane
        # opens (a focused Input would take them as text).
        self.query_one("#action", Select).focus()

    # -- the live status and gauge -----------------------------------------------------------

    @work(group="db-status")
    async def follow_status(self) -> None:
        """Poll /db/status while the pane is on screen (cheap: one small JSON, 4 Hz)."""
        while True:
            if self.display or self.status is None:
                try:
                    response = await self.context.http.get("/db/status")
                    response.raise_for_status()
                    self.post_message(self.StatusUpdate(response.json()))
                except (httpx.HTTPError, ValueError):
                    self.post_message(self.StatusUpdate(None))
            await asyncio.sleep(POLL_S)

    def on_db_pane_status_update(self, message: StatusUpdate) -> None:
        status = message.status
        if status == self.status:
            return
        self.status = status
        pool = (status or {}).get("pool")
        if self.running and pool:  # what the exhaustion demo reports after the run
            for field in ("in_use", "waiters"):
                self._peak[field] = max(self._peak.get(field, 0), int(pool[field]))
        self._backend.show(status)
        self._gauge.show(status.get("pool") if status else None)
        self._orm.update(orm_line(status), layout=False)

    # -- controls --------------------------------------------------------------------------

    @on(Select.Changed, "#action")
    def _action_changed(self, event: Select.Changed) -> None:
        if isinstance(event.value, str):
            self.action_key = event.value

    def watch_action_key(self) -> None:
        self.show_lesson()

    def lesson_of(self, blocking: bool) -> LessonLine:
        return ACTION_BY_KEY[self.action_key].line(blocking)

    @on(Button.Pressed, "#run")
    def action_run(self) -> None:
        """Run the chosen pattern (the ``r`` key)."""
        if self.still_running("Still running the last one."):
            return
        rows_field = self.query_one("#rows", Input)
        if not self.fields_valid(rows_field):
            return
        key = self.action_key
        if key == "notes":
            self._show_result(key, NOTES, {"notes": True})
            return
        self.running = True
        self._began_wall = time.time()
        self._result.update(Text(f"running {ACTION_BY_KEY[key].label}…", style="dim italic"))
        self.send_action(key, int(rows_field.value))

    @work(exclusive=True, group="db-action")
    async def send_action(self, key: str, rows: int) -> None:
        """The requests behind each menu entry, over real HTTP; figures come back as data."""
        http = self.context.http
        try:
            if key == "fetch":
                data = await client.fetch_three_ways(http, (self.status or {}).get("backend"))
            elif key in ("dashboard", "one_connection", "one_session"):
                mode = {"dashboard": "pool"}.get(key, key)
                data = await client.json_of(http.get("/db/dashboard", params={"mode": mode}))
            elif key in ("batch", "prefetch"):
                data = await client.paired_runs(http, key, rows)
            elif key == "exhaust":
                self._peak = {}
                size = int(((self.status or {}).get("pool") or {}).get("size", 10))
                data = {**await client.exhaust(http, size), "peak": self._peak}
            else:
                data = await client.report_with_probes(http)
                # The handler's own stalls: blamed on its code, not a collection or a redraw
                # that happened to land while the request was open.
                self._report_stalls = [
                    s
                    for s in await self.context.stalls_since(self._began_wall - 0.05)
                    if s.route == "GET /db/slow-report"
                    and (s.location or "").startswith(ROUTER_FILE)
                ]
            self.post_message(self.ActionDone(key, Text(), data))
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            self.post_message(
                self.ActionDone(key, Text(), {"request_error": f"{type(exc).__name__}: {exc}"})
            )

    def on_db_pane_action_done(self, message: ActionDone) -> None:
        self.running = False
        data = message.data
        text: Text | Group
        if "request_error" in data:
            text = Text(f"The requests failed: {data['request_error']}", style="bold red")
        else:
            text = self.describe(message.key, data)
        self._show_result(message.key, text, data)

    def _show_result(self, key: str, text: Text | Group, data: dict[str, Any]) -> None:
        self.result = {"key": key, **data}
        self._result.update(text)

    # -- what a result says --------------------------------------------------------------

    def describe(self, key: str, data: dict[str, Any]) -> Text | Group:
        """The figures of one action, with what they mean."""
        if key == "fetch":
            return describe_fetch(data)
        if key in ("dashboard", "one_connection", "one_session"):
            return describe_dashboard(data)
        if key == "batch":
            return describe_pair(data, "rows", "round_trips", "round trips")
        if key == "prefetch":
            return describe_pair(data, "posts", "queries", "queries")
        if key == "exhaust":
            return describe_exhaust(data)
        stalls = self._report_stalls
        self._last_stall = stalls[-1] if stalls else None
        return describe_report(data, stalls)

    # -- code view ---------------------------------------------------------------------------

    def code_blocks(self, stall: Stall | None = None) -> list[SourceBlock]:
        action = ACTION_BY_KEY[self.action_key]
        code = list(action.code)
        ran = (self.result or {}).get("effective")
        if self.action_key == "dashboard" and ran == "one_connection":
            code.reverse()  # blocking mode ran the pitfall: it comes first
            code.append(code.pop(0))  # (clocked stays last)
        blocks = [source_of(part, f"server: {part.__name__}") for part in code]
        stall = stall or (self._last_stall if self.action_key == "report" else None)
        location = stall.location if stall is not None else None
        if location is not None and location.startswith(ROUTER_FILE):
            line = int(location.split(":")[1].split()[0])
            blocks = [with_highlight(block, line) for block in blocks]
        blocks.append(source_of(DbPane.send_action, "client: this pane's worker"))
        helper = CLIENT_CODE.get(self.action_key)
        if helper is not None:
            blocks.append(source_of(helper, f"client: {helper.__name__}"))
        return blocks


#: the client function behind each menu entry, beside the worker in the code view
CLIENT_CODE: dict[str, Callable[..., Any]] = {
    "fetch": client.fetch_three_ways,
    "batch": client.paired_runs,
    "prefetch": client.paired_runs,
    "exhaust": client.exhaust,
    "report": client.report_with_probes,
}
