"""SSE pane: follow the app's feed with ids, drop and resume, a swarm of subscribers, the leak."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx
from httpx_sse import aconnect_sse
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Button, Input, Label, Log, Static

from server.monitor import Stall
from server.routes import sse as routes

from ..code_source import SourceBlock, source_of
from ..widgets.number_field import invalid_fields, number_input
from .base import PatternPane

#: how often the figures line redraws (counters only; events go to the log as they come)
REFRESH_S = 0.25
#: events kept in the log view
LOG_LINES = 300


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def describe(event: str, data: str) -> str:
    """One short line for an event's data (the JSON as sent when it is not a known kind)."""
    try:
        d = json.loads(data)
        if event == "tick":
            return f"n={d['n']} value={d['value']}"
        if event == "stall":
            return f"{d['duration_ms']:.0f} ms {d['kind']} at {d['location']} ({d['route']})"
        if event == "job":
            return f"job {d['id']} {d['kind']} {d['state']}"
    except (ValueError, KeyError, TypeError):
        pass
    return data[:160]


@dataclass
class Swarm:
    """The pane's N subscribers: plain counters the refresh timer reads."""

    open: int = 0
    delivered: int = 0
    errors: int = 0
    lags_ms: list[float] = field(default_factory=list)  # the last few thousand

    def record(self, lag_ms: float) -> None:
        self.delivered += 1
        self.lags_ms.append(lag_ms)
        if len(self.lags_ms) > 5000:
            del self.lags_ms[:2500]


class SsePane(PatternPane):
    """The live feed, resume from Last-Event-ID, many subscribers, and the pitfall."""

    SLUG: ClassVar[str] = "sse"
    TITLE: ClassVar[str] = "SSE feed"
    SUMMARY: ClassVar[str] = "a feed with ids, heartbeat and resume; many subscribers; leaks"

    DEFAULT_CSS = """
    SsePane #controls, SsePane #swarm-controls { height: auto; }
    SsePane Button { margin-right: 1; }
    SsePane Label { padding: 1 1 0 1; }
    SsePane #subscribers { width: 10; }
    SsePane #lesson { height: auto; color: $text-muted; }
    SsePane #lesson.-blocking { color: $error; }
    SsePane #figures { height: 3; }
    SsePane #events { height: 1fr; }
    """

    class FeedEvent(Message):
        """An event from /sse/feed, or a connection change (``event`` open/closed)."""

        def __init__(self, event: str, event_id: str, data: str) -> None:
            super().__init__()
            self.event = event
            self.event_id = event_id
            self.data = data

    class Figures(Message):
        """``GET /sse/stats``."""

        def __init__(self, stats: dict[str, Any]) -> None:
            super().__init__()
            self.stats = stats

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.last_id: str | None = None
        self.following = False
        self.resumes = 0
        self.gaps: list[dict[str, Any]] = []
        self.ids_seen: list[str] = []
        self.swarm = Swarm()
        self.server: dict[str, Any] = {}
        self.last_action = "follow"
        # Held, not queried: the feed and the timer update them during teardown too.
        self._log = Log(max_lines=LOG_LINES, id="events")
        self._figures = Static(id="figures")
        self._lesson = Static(id="lesson")
        self._swarm_tasks: set[asyncio.Task[None]] = set()

    def compose(self) -> ComposeResult:
        with Horizontal(id="controls"):
            yield Button("Follow feed", id="follow", variant="primary")
            yield Button("Drop", id="drop")
            yield Button("Resume", id="resume")
            yield Button("Ticker, leave after 3", id="leave")
            yield Button("End leaks", id="end-leaks")
        with Horizontal(id="swarm-controls"):
            yield Label("subscribers")
            yield number_input("subscribers", "100", 1, 1000, "Subscribers")
            yield Button("Open swarm", id="swarm-open")
            yield Button("Close swarm", id="swarm-close")
        yield self._lesson
        yield self._figures
        yield self._log

    def on_mount(self) -> None:
        self.context.blocking.subscribe(lambda _: self._show_lesson())
        self._show_lesson()
        self.poll_stats()
        self.set_interval(REFRESH_S, self._show_figures)

    async def on_unmount(self) -> None:
        await self._close_swarm()

    # -- buttons --------------------------------------------------------------------------

    @on(Button.Pressed)
    def _button(self, event: Button.Pressed) -> None:
        button = event.button.id or ""
        self.last_action = button
        if button == "follow":
            self.follow(None)
        elif button == "drop":
            self.drop()
        elif button == "resume":
            self.follow(self.last_id)
        elif button == "leave":
            self.leave_ticker()
        elif button == "end-leaks":
            self.end_leaks()
        elif button == "swarm-open":
            self.open_swarm()
        elif button == "swarm-close":
            self.run_worker(self._close_swarm(), group="sse-swarm")
        self._show_lesson()

    def action_run(self) -> None:
        """The ``r`` key: follow the feed (or resume it if it was dropped)."""
        self.follow(self.last_id)

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

    @work(group="sse-leave")
    async def leave_ticker(self) -> None:
        """Subscribe to the ticker, take three ticks, leave (a browser tab closed)."""
        try:
            async with aconnect_sse(self.context.http, "GET", "/sse/ticker?interval=0.1") as source:
                source.response.raise_for_status()
                ticks = 0
                async for event in source.aiter_sse():
                    ticks += event.event == "tick"
                    if ticks >= 3:
                        break
        except httpx.HTTPStatusError as exc:
            self.notify(exc.response.text[:200], title="Ticker refused", severity="warning")
        except httpx.HTTPError as exc:
            self.notify(f"{type(exc).__name__}", title="Ticker", severity="error")

    @work(group="sse-leave")
    async def end_leaks(self) -> None:
        try:
            response = await self.context.http.delete("/sse/leaked")
            self.notify(f"cancelled {response.json()['cancelled']} producer(s)", timeout=3)
        except (httpx.HTTPError, ValueError) as exc:
            self.notify(f"{type(exc).__name__}", title="End leaks", severity="error")

    # -- the swarm ------------------------------------------------------------------------

    def open_swarm(self) -> None:
        field_ = self.query_one("#subscribers", Input)
        problems = invalid_fields(field_)
        if problems:
            self.notify(problems[0][1], title="Invalid input", severity="error")
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
        while True:
            if not self.display:  # hidden behind another pane: cost the server nothing
                await asyncio.sleep(0.5)
                continue
            try:
                response = await self.context.http.get("/sse/stats")
                self.post_message(self.Figures(response.json()))
            except (httpx.HTTPError, ValueError):
                pass  # the server is starting or stopping; the next poll will say
            await asyncio.sleep(0.5)

    def on_sse_pane_figures(self, message: Figures) -> None:
        self.server = message.stats

    def _show_figures(self) -> None:
        s, swarm = self.server, self.swarm
        text = Text()
        text.append("server ", style="bold")
        text.append(
            f"streams {s.get('streams', '-')}  subscribers {s.get('subscribers', '-')}  "
            f"last id {s.get('last_id', '-')}  "
        )
        leaked = s.get("leaked_producers", 0)
        text.append(
            f"leaked producers {leaked} ({s.get('unread_ticks', 0)} ticks for nobody)",
            style="bold red" if leaked else "",
        )
        text.append("\nswarm  ", style="bold")
        text.append(
            f"open {swarm.open}  delivered {swarm.delivered:,}  "
            f"lag p50 {percentile(swarm.lags_ms, 0.5):.1f} ms  "
            f"p99 {percentile(swarm.lags_ms, 0.99):.1f} ms  errors {swarm.errors}"
        )
        text.append("\nfeed   ", style="bold")
        text.append(
            f"{'following' if self.following else 'not connected'}  "
            f"last id seen {self.last_id or '-'}  resumes {self.resumes}  "
            f"missed reports {len(self.gaps)}"
        )
        self._figures.update(text, layout=False)

    # -- lesson and code ------------------------------------------------------------------

    def _show_lesson(self) -> None:
        blocking = self.context.blocking.enabled
        if self.last_action in ("leave", "end-leaks"):
            lesson = (
                "Blocking mode: the ticker hands its work to a producer task and never "
                "cancels it. FastAPI cancels the generator when you leave, the producer "
                "keeps ticking for nobody: watch 'leaked producers' grow."
                if blocking
                else "The generator does the ticking itself: when you leave, FastAPI "
                "cancels it and nothing is left running (leaked producers stays 0). "
                "Press b and try again."
            )
        else:
            lesson = (
                "Every event has an id. Drop, wait, Resume: the client sends Last-Event-ID "
                "and the server replays from its ring, no gap, no duplicate (a 'missed' "
                "event if the ring no longer covers it). Heartbeats carry no id."
            )
        self._lesson.update(lesson)
        self._lesson.set_class(blocking and self.last_action == "leave", "-blocking")

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
