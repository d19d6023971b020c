"""WebSocket pane: echo, a JSON protocol, token auth, a chat room, and a room full of bots.

Every connection is a real ``websockets`` client over loopback, opened from this very
loop. The bots are up to 1,000 of them (:class:`~explorer.patterns.ws.bots.BotSwarm`), and a
"stalled client" toggle adds one that stops reading: in blocking mode the naive broadcast
stalls the whole room; in the right mode the room keeps flowing and the stalled client is
dropped after its send timeout. The tabs' controls are in :mod:`explorer.patterns.ws.views`,
the bots' figures in :mod:`explorer.patterns.ws.figures`, the frame log in
:mod:`explorer.patterns.ws.frames`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from textual import on, work
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Button, Checkbox, ContentSwitcher, Input, RadioSet
from websockets.asyncio.client import ClientConnection

from explorer.code_source import SourceBlock, source_of
from explorer.pane import Lesson, LessonLine, PatternPane
from explorer.patterns.ws.bots import BotSwarm, StalledClient, ws_url
from explorer.patterns.ws.clients import SOCKET_ERRORS, HeldSockets, read_frames, token_attempt
from explorer.patterns.ws.delivery import Undelivered
from explorer.patterns.ws.figures import BotFigures, BotFiguresView
from explorer.patterns.ws.frames import FramesLog
from explorer.patterns.ws.room import BotRoom
from explorer.patterns.ws.views import LESSONS, VIEWS, WsTabs, WsViews
from fastasync_probe.monitor import Stall
from server.patterns.ws import manager as ws_manager
from server.patterns.ws import router as routes
from server.patterns.ws.tokens import TokenSigner

#: figures refresh rate (counters are read, never one redraw per message)
FIGURES_HZ = 4.0


class WsPane(
    PatternPane,
    slug="ws",
    title="WebSocket",
    summary="echo, JSON, token auth, chat; naive broadcast vs outboxes",
):
    """Tabs for each socket; the bots tab has live figures."""

    @dataclass
    class Line(Message):
        """A line for the frame log."""

        text: str

    view: reactive[str] = reactive("echo", init=False)
    chat_joined: reactive[bool] = reactive(False, init=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Held, not queried: timer- and worker-driven updates reach them during teardown.
        self._figures = BotFigures(id="figures")
        self._log = FramesLog(id="frames")
        self._log.border_title = "frames"
        self._views = WsViews(self._figures)
        self._sockets = HeldSockets()
        self.room = BotRoom(self.context.http, self.say)
        self.figures_view = BotFiguresView()

    # -- layout --------------------------------------------------------------------------

    def compose(self) -> Any:
        yield WsTabs()
        yield self._views
        yield Lesson(id="lesson")
        yield self._log

    def on_mount(self) -> None:
        self._figures.show(self.figures_view)
        #: the 4 Hz figures refresh (a snapshot test pauses it to freeze the figures)
        self.figures_timer = self.set_interval(1 / FIGURES_HZ, self.refresh_figures)

    def on_unmount(self) -> None:
        # The stalled socket is ours, not a task: close it here. The bot and socket
        # workers are cancelled with the pane; their finally blocks close the rest.
        self.room.remove_stalled(quietly=True)

    # -- tabs ------------------------------------------------------------------------------

    def on_show(self) -> None:
        """Opened with its number key: focus the tabs, so arrows and Enter work at once."""
        self.query_one("#ws-tabs", RadioSet).focus()

    @on(RadioSet.Changed, "#ws-tabs")
    def _tab(self, event: RadioSet.Changed) -> None:
        self.view = VIEWS[event.radio_set.pressed_index]

    def watch_view(self, view: str) -> None:
        self.query_one("#ws-views", ContentSwitcher).current = f"view-{view}"
        self.show_lesson()

    def lesson_of(self, blocking: bool) -> LessonLine:
        return LESSONS[self.view].line(blocking)

    def action_run(self) -> None:
        """The ``r`` key: the current tab's main button."""
        main: dict[str, Callable[[], object]] = {
            "echo": self.send_echo,
            "json": lambda: self.send_json("json-ping"),
            "chat": self.toggle_chat,
            "auth": lambda: self.try_auth("valid"),
            "bots": self.start_bots,
        }
        main[self.view]()

    def submit(self, field: Input) -> None:
        """Enter sends what the field holds; in chat's name and room it joins; in the bots'
        fields it (re)starts the bots."""
        if field.id == "echo-text":
            self.send_echo()
        elif field.id == "json-text":
            self.send_json("json-send")
        elif field.id == "chat-text":
            self.chat_send()
        elif field.id in ("chat-name", "chat-room"):
            if self.chat_joined:
                self.notify("Joined already: Leave first to change name or room.")
            else:
                self.join_chat()
        else:
            self.action_run()

    # -- buttons ---------------------------------------------------------------------------

    @on(Button.Pressed, "#echo-send")
    def send_echo(self) -> None:
        text = self.query_one("#echo-text", Input).value or "hello"
        self.send_frame("echo", "/ws/echo", text)

    @on(Button.Pressed, "#json-ping, #json-send, #json-bad, #json-unknown")
    def _json_button(self, event: Button.Pressed) -> None:
        self.send_json(event.button.id or "json-ping")

    def send_json(self, button_id: str) -> None:
        self.send_frame("json", "/ws/json", self._json_frame(button_id))

    @on(Button.Pressed, "#chat-join")
    def toggle_chat(self) -> None:
        if self.chat_joined:
            self.leave_chat()
        else:
            self.join_chat()

    @on(Button.Pressed, "#chat-send")
    def chat_send(self) -> None:
        if not self.chat_joined:
            self.notify("Join a room first.", severity="warning")
            return
        text_input = self.query_one("#chat-text", Input)
        frame = json.dumps({"type": "message", "text": text_input.value or "hi"})
        text_input.value = ""
        self.send_frame("chat", "/ws/chat", frame)

    @on(Button.Pressed, "#auth-valid, #auth-missing, #auth-bad, #auth-expired")
    def _auth_button(self, event: Button.Pressed) -> None:
        self.try_auth((event.button.id or "auth-valid").removeprefix("auth-"))

    @on(Button.Pressed, "#bots-start")
    def start_bots(self) -> None:
        fields = [self.query_one(f"#bots-{k}", Input) for k in ("n", "rate", "size")]
        if not self.fields_valid(*fields):
            return
        n, rate, size = (int(f.value) for f in fields)
        self.run_bots(n, rate, size)

    @on(Button.Pressed, "#bots-stop")
    def stop_bots(self) -> None:
        self.workers.cancel_group(self, "ws-bots")

    def _json_frame(self, button_id: str) -> str:
        text = self.query_one("#json-text", Input).value or "hello"
        frames = {
            "json-ping": json.dumps({"type": "ping", "id": 1}),
            "json-send": json.dumps({"type": "message", "text": text}),
            "json-bad": '{"type": "ping"',
            "json-unknown": json.dumps({"type": "shout", "text": text}),
        }
        return frames[button_id]

    # -- the frame log -----------------------------------------------------------------------

    def say(self, text: str) -> None:
        """A line in the frame log, from any worker."""
        self.post_message(self.Line(text))

    def on_ws_pane_line(self, message: Line) -> None:
        self._log.write_line(message.text)

    # -- echo, JSON, chat: one held connection each --------------------------------------------

    async def _socket(self, kind: str, path: str) -> ClientConnection:
        """The open connection for ``kind``, connecting (and starting its reader) if needed."""
        url = ws_url(str(self.context.http.base_url), path)
        conn, new = await self._sockets.get(kind, url)
        if new:
            self.read_socket(kind, conn)
        return conn

    @work(group="ws-readers")
    async def read_socket(self, kind: str, conn: ClientConnection) -> None:
        """Show every frame the server sends on this connection, then how it closed."""
        try:
            await read_frames(kind, conn, self.say)
        finally:
            self._sockets.forget(kind, conn)
            if kind == "chat":
                self.chat_joined = False

    @work(group="ws-io")
    async def send_frame(self, kind: str, path: str, text: str) -> None:
        """Send one text frame over the ``kind`` connection (its reader shows the answer)."""
        try:
            conn = await self._socket(kind, path)
            self.say(f"{kind} → {text[:300]}")
            await conn.send(text)
        except SOCKET_ERRORS as exc:
            self.say(f"{kind} ! {type(exc).__name__}: {exc}")

    def join_chat(self) -> None:
        name_input = self.query_one("#chat-name", Input)
        room_input = self.query_one("#chat-room", Input)
        # Quoted, so a bad name reaches the server and comes back as its 1008 reason.
        room, name = (quote(i.value.strip(), safe="") for i in (room_input, name_input))
        path = f"/ws/chat/{room}?name={name}"
        self.open_chat(path)

    @work(group="ws-io")
    async def open_chat(self, path: str) -> None:
        try:
            await self._socket("chat", path)
        except SOCKET_ERRORS as exc:
            self.say(f"chat ! {type(exc).__name__}: {exc}")
            return
        self.chat_joined = True

    def leave_chat(self) -> None:
        conn = self._sockets.current("chat")
        if conn is not None:
            self.close_socket(conn)

    @work(group="ws-io")
    async def close_socket(self, conn: ClientConnection) -> None:
        await conn.close()

    def watch_chat_joined(self, joined: bool) -> None:
        self._views.join_button.label = "Leave" if joined else "Join"

    # -- auth ------------------------------------------------------------------------------

    @work(group="ws-auth")
    async def try_auth(self, case: str) -> None:
        """One Auth button: get a token that way, connect to /ws/secure, say what happened."""
        await token_attempt(self.context.http, case, self.say)

    # -- bots ------------------------------------------------------------------------------

    @property
    def swarm(self) -> BotSwarm | None:
        """The bots now in the room (None when stopped)."""
        return self.room.swarm

    @property
    def stalled(self) -> StalledClient | None:
        """Our client that never reads, while it is open."""
        return self.room.stalled

    @work(group="ws-bots", exclusive=True)
    async def run_bots(self, n: int, rate: int, size: int) -> None:
        """Connect ``n`` bots, chat at ``rate``, until stopped or unmounted."""
        await self.room.run(n, rate, size)

    @on(Checkbox.Changed, "#bots-stalled")
    def _stalled_toggled(self, event: Checkbox.Changed) -> None:
        if event.value:
            self.add_stalled()
        else:
            self.room.remove_stalled()

    @work(group="ws-stalled", exclusive=True)
    async def add_stalled(self) -> None:
        """Join the bots' room with a client that never reads."""
        await self.room.add_stalled()

    def refresh_figures(self) -> None:
        """At <= 4 Hz: the room's figures, redrawn only when something changed."""
        view = self.room.view(self.context.blocking.enabled, self.figures_view)
        if view != self.figures_view:
            self.figures_view = view
            self._figures.show(view)

    # -- code view -------------------------------------------------------------------------

    def code_blocks(self, stall: Stall | None = None) -> list[SourceBlock]:
        manager = ws_manager.ConnectionManager
        naive = self.context.blocking.enabled
        if self.view == "echo":
            return [
                source_of(routes.echo, "server: /ws/echo"),
                source_of(routes.serve_frames, "server: the read loop"),
                source_of(WsPane.send_frame, "client: this pane's worker"),
            ]
        if self.view == "json":
            return [
                source_of(routes.json_answer, "server: the JSON protocol"),
                source_of(routes.parse_object, "server: parsing, with the error frames"),
            ]
        if self.view == "auth":
            return [
                source_of(routes.secure, "server: /ws/secure"),
                source_of(TokenSigner.verify, "server: checking the token"),
                source_of(token_attempt, "client: the Auth buttons"),
            ]
        fan_out = (
            source_of(manager.naive_broadcast, "server: the naive broadcast (blocking mode)")
            if naive
            else source_of(manager.enqueue_all, "server: the broadcast, right")
        )
        blocks = [
            source_of(manager.broadcast, "server: ConnectionManager.broadcast"),
            fan_out,
            source_of(manager._write_loop, "server: each member's writer"),
            source_of(routes.chat_read_loop, "server: the handler's read loop"),
        ]
        if self.view == "bots":
            blocks.append(source_of(BotSwarm._chat, "client: the bots' sender"))
            blocks.append(
                source_of(Undelivered.oldest_age_s, "client: the oldest undelivered message")
            )
        return blocks
