"""SSE pane: follow the app's feed with ids, drop and resume, a swarm of subscribers, the leak."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, replace
from typing import Any

import httpx
from httpx_sse import aconnect_sse
from textual import on, work
from textual.app import ComposeResult
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Button, Input, Label

from explorer.code_source import SourceBlock, source_of
from explorer.pane import Lesson, LessonLine, PatternPane, Teaching
from explorer.patterns.sse.figures import (
    WATCH_S,
    Leave,
    Swarm,
    describe,
    figures_text,
    leave_result,
)
from explorer.widgets.control_row import ControlRow
from explorer.widgets.follow_log import FollowLog
from explorer.widgets.live_text import LiveText
from explorer.widgets.number_field import number_input
from fastasync_probe.monitor import Stall
from server.patterns.sse import router as routes

#: how often the figures line redraws (counters only; events go to the log as they come)
REFRESH_S = 0.25
#: events kept in the log view
LOG_LINES = 300

#: what following the feed teaches (it has no pitfall form)
FEED_LESSON = Teaching(
    lesson="Every event has an id. Drop, wait, Resume: Last-Event-ID makes the server "
    "replay from its ring, no gap, no duplicate ('missed' if it no longer can).",
    no_pitfall=" The feed has no pitfall form: try 'Ticker, leave after 3'.",
)
#: what leaving the ticker teaches, and its pitfall
TICKER_LESSON = Teaching(
    lesson="The generator ticks itself: when you leave, FastAPI cancels it and "
    "nothing ticks on (the ticker line counts what does). Press b, try again.",
    pitfall="Blocking mode: the ticker hands its ticking to a producer task it never "
    "cancels. FastAPI cancels the generator when you leave; the producer "
    "ticks on for nobody (the ticker line) until End leaks.",
)


class SsePane(
    PatternPane,
    slug="sse",
    title="SSE feed",
    summary="a feed with ids, heartbeat and resume; many subscribers; leaks",
):
    """The live feed, resume from Last-Event-ID, many subscribers, and the pitfall."""

    DEFAULT_CSS = """
    SsePane #swarm-controls { margin-top: 1; }
    SsePane #subscribers { width: 6; margin-right: 1; }
    /* a fixed height: a lesson of another length must not resize the log below (a log
       no longer at its end stops following new lines) */
    SsePane Lesson { height: 3; margin-top: 1; }
    SsePane #figures { height: 4; }
    SsePane #events { height: 1fr; min-height: 3; }
    """

    @dataclass
    class FeedEvent(Message):
        """An event from /sse/feed, or a connection change (``event`` open/closed)."""

        event: str
        event_id: str
        data: str

    #: the button pressed last: which lesson and which code the pane shows
    last_action: reactive[str] = reactive("follow", init=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.last_id: str | None = None
        self.following = False
        self.resumes = 0
        self.gaps: list[dict[str, Any]] = []
        self.ids_seen: list[str] = []
        self.swarm = Swarm()
        self.server: dict[str, Any] = {}
        #: the last "Ticker, leave after 3" (None before the first)
        self.leave: Leave | None = None
        # Held, not queried: the feed and the timer update them during teardown too.
        self._log = FollowLog(max_lines=LOG_LINES, id="events")
        self._figures = LiveText(id="figures")
        self._swarm_tasks: set[asyncio.Task[None]] = set()

    def compose(self) -> ComposeResult:
        with ControlRow(id="controls"):
            yield Button("Follow feed", id="follow", variant="primary", compact=True)
            yield Button("Drop", id="drop", compact=True)
            yield Button("Resume", id="resume", compact=True)
            yield Button("Ticker, leave after 3", id="leave", compact=True)
            yield Button("End leaks", id="end-leaks", compact=True)
        with ControlRow(id="swarm-controls"):
            yield Label("subscribers")
            yield number_input("subscribers", "100", 1, 1000, "Subscribers")
            yield Button("Open swarm", id="swarm-open", compact=True)
            yield Button("Close swarm", id="swarm-close", compact=True)
        yield Lesson(id="lesson")
        yield self._figures
        yield self._log

    def on_mount(self) -> None:
        self.poll_stats()
        self.set_interval(REFRESH_S, self._show_figures)

    async def on_unmount(self) -> None:
        await self._close_swarm()

    # -- buttons --------------------------------------------------------------------------

    @on(Button.Pressed)
    def _remember(self, event: Button.Pressed) -> None:
        """Any button: the lesson and the code follow the one pressed last (its id)."""
        if event.button.id:
            self.last_action = event.button.id

    def watch_last_action(self) -> None:
        self.show_lesson()

    @on(Button.Pressed, "#follow")
    def _follow(self) -> None:
        self.follow(None)

    @on(Button.Pressed, "#resume")
    def _resume(self) -> None:
        self.follow(self.last_id)

    @on(Button.Pressed, "#swarm-close")
    def _swarm_close(self) -> None:
        self.run_worker(self._close_swarm(), group="sse-swarm")

    def submit(self, field: Input) -> None:
        """Enter in the subscribers field opens the swarm (the field's own action)."""
        self.last_action = "swarm-open"
        self.open_swarm()

    def action_run(self) -> None:
        """The ``r`` key: follow the feed (or resume it if it was dropped)."""
        self.follow(self.last_id)

    @on(Button.Pressed, "#drop")
    def drop(self) -> None:
        """Disconnect; ``Resume`` reconnects with the last id seen."""
        self.workers.cancel_group(self, "sse-follow")

    # -- following ------------------------------------------------------------------------

    @work(group="sse-follow", exclusive=True)
    async def follow(self, resume_from: str | None) -> None:
        """Follow /sse/feed; with ``resume_from`` sent as Last-Event-ID, as a browser does."""
        headers = {"Last-Event-ID": resume_from} if resume_from else {}
        try:
            async with aconnect_sse(
                self.context.http, "GET", "/sse/feed?heartbeat=5", headers=headers
            ) as source:
                source.response.raise_for_status()
                self.post_message(self.FeedEvent("open", resume_from or "", ""))
                async for event in source.aiter_sse():
                    self.post_message(self.FeedEvent(event.event, event.id, event.data))
        except httpx.HTTPError as exc:
            self.post_message(self.FeedEvent("error", "", f"{type(exc).__name__}: {exc}"))
        finally:
            self.post_message(self.FeedEvent("closed", "", ""))

    def on_sse_pane_feed_event(self, message: FeedEvent) -> None:
        log = self._log
        if message.event == "open":
            self.following = True
            if message.event_id:
                self.resumes += 1
                log.write_line(f"── resumed with Last-Event-ID: {message.event_id}")
            else:
                log.write_line("── following /sse/feed")
            return
        if message.event == "closed":
            self.following = False
            log.write_line(f"── disconnected; last id {self.last_id or '-'}")
            return
        if message.event == "missed":
            self.gaps.append({"data": message.data})
        if message.event_id:
            self.last_id = message.event_id
            self.ids_seen.append(message.event_id)
            del self.ids_seen[:-1000]
        ident = message.event_id or "·"
        log.write_line(f"{ident:>12}  {message.event:<9} {describe(message.event, message.data)}")

    # -- the pitfall ----------------------------------------------------------------------

    @on(Button.Pressed, "#leave")
    @work(group="sse-leave", exclusive=True)
    async def leave_ticker(self) -> None:
        """Subscribe to the ticker, take three ticks, leave (a browser tab closed).

        Then wait ``WATCH_S`` and read the server's books on that very response (the
        ``X-Ticker-Stream`` header names them): is anything still ticking for nobody?
        """
        http = self.context.http
        pitfall = self.context.blocking.enabled
        self.leave = Leave("reading")
        try:
            async with aconnect_sse(http, "GET", "/sse/ticker?interval=0.1") as source:
                source.response.raise_for_status()
                stream = int(source.response.headers[routes.TICKER_HEADER])
                ticks = 0
                async for event in source.aiter_sse():
                    ticks += event.event == "tick"
                    self.leave = Leave("reading", ticks)
                    if ticks >= 3:
                        break
            self.leave = Leave("watching", ticks)
            await asyncio.sleep(WATCH_S)
            stats = (await http.get("/sse/stats")).json()
            self.leave = leave_result(stream, ticks, stats, pitfall)
        except httpx.HTTPStatusError as exc:
            self.leave = Leave("error", error=f"refused: {exc.response.text[:100]}")
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            self.leave = Leave("error", error=f"{type(exc).__name__}: {exc}"[:100])

    @on(Button.Pressed, "#end-leaks")
    @work(group="sse-leave")
    async def end_leaks(self) -> None:
        """End the producers the pitfall left ticking (``DELETE /sse/leaked``)."""
        try:
            response = await self.context.http.delete("/sse/leaked")
            self.notify(f"cancelled {response.json()['cancelled']} producer(s)", timeout=3)
        except (httpx.HTTPError, ValueError) as exc:
            self.refuse(type(exc).__name__, title="End leaks")

    # -- the swarm ------------------------------------------------------------------------

    @on(Button.Pressed, "#swarm-open")
    def open_swarm(self) -> None:
        field_ = self.query_one("#subscribers", Input)
        if not self.fields_valid(field_):
            return
        for _ in range(int(field_.value)):
            task = asyncio.create_task(self._subscriber(), name="sse-pane-subscriber")
            self._swarm_tasks.add(task)
            task.add_done_callback(self._swarm_tasks.discard)

    async def _subscriber(self) -> None:
        """One swarm member: ticks only, delivery lag from the event's publish time."""
        swarm = self.swarm
        swarm.open += 1
        try:
            async with aconnect_sse(
                self.context.http, "GET", "/sse/feed?topics=tick&heartbeat=30"
            ) as source:
                async for event in source.aiter_sse():
                    if event.event == "tick":
                        published = event.json()["published_at"]
                        swarm.record((time.time() - published) * 1000)
        except httpx.HTTPError:
            swarm.errors += 1
        finally:
            swarm.open -= 1

    async def _close_swarm(self) -> None:
        tasks = list(self._swarm_tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- figures --------------------------------------------------------------------------

    @work(group="sse-stats")
    async def poll_stats(self) -> None:
        """The server's own counts, twice a second, for as long as the pane lives."""
        await self.poll_while_shown("/sse/stats", 0.5, self._got_stats)

    def _got_stats(self, stats: dict[str, Any]) -> None:
        self.server = stats

    def _show_figures(self) -> None:
        """Redraw the figures (4 Hz), only when a number in them has changed."""
        feed = (
            f"{'following' if self.following else 'not connected'}  "
            f"last id seen {self.last_id or '-'}  resumes {self.resumes}  "
            f"missed {len(self.gaps)}"
        )
        self._figures.show(figures_text(self.server, self.leave, self.swarm, feed))

    @property
    def figures_shown(self) -> str:
        """The figures as displayed (plain text)."""
        return self._figures.shown

    # -- lesson and code ------------------------------------------------------------------

    def lesson_of(self, blocking: bool) -> LessonLine:
        if self.last_action == "leave":
            return TICKER_LESSON.line(blocking)
        if self.last_action == "end-leaks":
            # the leaks are being ended: the pitfall's words stay, no longer as an error
            return replace(TICKER_LESSON.line(blocking), pitfall=False)
        return FEED_LESSON.line(blocking)

    def code_blocks(self, stall: Stall | None = None) -> list[SourceBlock]:
        if self.last_action in ("leave", "end-leaks"):
            handler = routes.leaky_ticker if self.context.blocking.enabled else routes.ticker
            return [
                source_of(handler, "server: the ticker"),
                source_of(routes.ticker_stream, "server: the stream's cleanup"),
            ]
        return [
            source_of(routes.feed, "server: GET /sse/feed"),
            source_of(routes.feed_subscription, "server: subscribe / unsubscribe"),
            source_of(SsePane.follow, "client: this pane's worker"),
        ]
