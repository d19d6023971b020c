"""WebSocket pane: echo, a JSON protocol, token auth, a chat room, and a room full of bots.

Every connection is a real ``websockets`` client over loopback, opened from this very
loop. The bots are up to 1,000 of them (:class:`~explorer.ws_bots.BotSwarm`), and a
"stalled client" toggle adds one that stops reading: in blocking mode the naive broadcast
stalls the whole room; in the right mode the room keeps flowing and the stalled client is
dropped after its send timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import (
    Button,
    Checkbox,
    ContentSwitcher,
    Input,
    Label,
    Log,
    RadioButton,
    RadioSet,
    Static,
)
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.typing import Subprotocol

from server import ws_manager
from server.monitor import Stall
from server.routes import ws as routes
from server.ws_tokens import SUBPROTOCOL, TokenSigner

from ..code_source import SourceBlock, source_of
from ..widgets.number_field import invalid_fields, number_input
from ..widgets.ws_figures import BotFigures, BotFiguresView
from ..ws_bots import BotSwarm, StalledClient, ws_url
from .base import PatternPane

VIEWS = ("echo", "json", "chat", "auth", "bots")
VIEW_LABELS = {"echo": "Echo", "json": "JSON", "chat": "Chat", "auth": "Auth", "bots": "Bots"}
BOTS_ROOM = "bots"
#: figures refresh rate (counters are read, never one redraw per message)
FIGURES_HZ = 4.0
STATS_EVERY_S = 0.5
OPEN_TIMEOUT_S = 5.0

LESSONS = {
    "echo": "Each line you send comes straight back over a real WebSocket on this loop.",
    "json": "A typed JSON protocol: ping gets pong, message gets ack; malformed JSON or an "
    "unknown type gets an error frame and the socket stays open.",
    "chat": "Join a room under a name: presence notices and every member's messages, "
    "delivered through one bounded outbox and one writer task per member.",
    "auth": "POST /ws/token, then connect offering the subprotocol bearer.<token> (never "
    "the query string: that lands in logs). Missing, bad or expired: closed with 1008.",
    "bots": "Real websockets clients in this process. Add the stalled client: once its "
    "socket buffers are full (a few MB: ~20 s at 50 msg/s of 4 KiB) the room keeps flowing "
    "and it is dropped after its 2 s send timeout (1008). Then press b.",
}
BOTS_PITFALL = (
    "Blocking mode: the guide's `for connection in active: await connection.send_text(...)`. "
    "With the stalled client in the room, once its socket is full every broadcast waits "
    "on it: msg/s fall to zero and latency climbs, for everyone, until it goes."
)


@dataclass(frozen=True)
class AuthCase:
    key: str
    label: str


AUTH_CASES = (
    AuthCase("valid", "valid token"),
    AuthCase("missing", "missing token"),
    AuthCase("bad", "bad signature"),
    AuthCase("expired", "expired token"),
)


class WsPane(PatternPane):
    """Tabs for each socket; the bots tab has live figures."""

    SLUG: ClassVar[str] = "ws"
    TITLE: ClassVar[str] = "WebSocket"
    SUMMARY: ClassVar[str] = "echo, JSON, token auth, chat; naive broadcast vs outboxes"

    DEFAULT_CSS = """
    WsPane #ws-tabs { layout: horizontal; height: auto; width: 100%; border: none; }
    WsPane #ws-tabs RadioButton { margin-right: 2; }
    WsPane #ws-views { height: auto; }
    WsPane #ws-views > * { height: auto; }
    WsPane .row { height: auto; }
    WsPane .row Button { margin-right: 1; min-width: 8; }
    WsPane .row Label { padding: 1 1 0 1; }
    WsPane .row Input { width: 1fr; }
    WsPane #chat-name, WsPane #chat-room { width: 14; }
    WsPane #bots-n, WsPane #bots-rate, WsPane #bots-size { width: 12; }
    WsPane #bots-stalled { margin-left: 1; }
    WsPane #lesson { height: auto; color: $text-muted; }
    WsPane #lesson.-blocking { color: $error; }
    WsPane #frames { height: 1fr; border: round $primary 40%; }
    """

    class Line(Message):
        """A line for the frame log."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class ServerStats(Message):
        """``GET /ws/stats`` while the bots run."""

        def __init__(self, stats: dict[str, Any]) -> None:
            super().__init__()
            self.stats = stats

    view: reactive[str] = reactive("echo", init=False)
    chat_joined: reactive[bool] = reactive(False, init=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Held, not queried: timer- and worker-driven updates reach them during teardown.
        self._figures = BotFigures(id="figures")
        self._log = Log(id="frames", max_lines=500)
        self._lesson = Static(id="lesson")
        self._join_button = Button("Join", id="chat-join", variant="primary")
        self._sockets: dict[str, ClientConnection] = {}
        self._socket_lock = asyncio.Lock()
        self.swarm: BotSwarm | None = None
        self.stalled: StalledClient | None = None
        self.connecting_bots = False
        self.server_stats: dict[str, Any] = {}
        self._last_counts = (0, 0)
        self._last_tick = 0.0
        self.figures_view = BotFiguresView()
        self._unsubscribe: Callable[[], None] | None = None

    # -- layout --------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with RadioSet(id="ws-tabs"):
            for key in VIEWS:
                yield RadioButton(VIEW_LABELS[key], value=key == "echo", id=f"tab-{key}")
        with ContentSwitcher(id="ws-views", initial="view-echo"):
            with Horizontal(id="view-echo", classes="row"):
                yield Input(placeholder="text to echo", id="echo-text")
                yield Button("Send", id="echo-send", variant="primary")
            with Horizontal(id="view-json", classes="row"):
                yield Button("ping", id="json-ping", variant="primary")
                yield Input(placeholder="message text", id="json-text")
                yield Button("message", id="json-send")
                yield Button("malformed", id="json-bad")
                yield Button("unknown type", id="json-unknown")
            with Vertical(id="view-chat"):
                with Horizontal(classes="row"):
                    yield Label("name")
                    yield Input("you", id="chat-name")
                    yield Label("room")
                    yield Input("lobby", id="chat-room")
                    yield self._join_button
                with Horizontal(classes="row"):
                    yield Input(placeholder="say something", id="chat-text")
                    yield Button("Send", id="chat-send")
            with Horizontal(id="view-auth", classes="row"):
                for case in AUTH_CASES:
                    yield Button(
                        case.label,
                        id=f"auth-{case.key}",
                        variant="primary" if case.key == "valid" else "default",
                    )
            with Vertical(id="view-bots"):
                with Horizontal(classes="row"):
                    yield Label("bots")
                    yield number_input("bots-n", "100", 1, 1000, "Bots")
                    yield Label("msg/s")
                    yield number_input("bots-rate", "50", 0, 5000, "Messages per second")
                    yield Label("size")
                    yield number_input("bots-size", "4096", 16, 16384, "Message size (chars)")
                    yield Button("Start", id="bots-start", variant="primary")
                    yield Button("Stop", id="bots-stop")
                    yield Checkbox("stalled client", id="bots-stalled")
                yield self._figures
        yield self._lesson
        yield self._log

    def on_mount(self) -> None:
        self._unsubscribe = self.context.blocking.subscribe(lambda _: self._show_lesson())
        self._show_lesson()
        self._figures.show(self.figures_view)
        #: the 4 Hz figures refresh (a snapshot test pauses it to freeze the figures)
        self.figures_timer = self.set_interval(1 / FIGURES_HZ, self.refresh_figures)

    def on_unmount(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        # The stalled socket is ours, not a task: close it here. The bot and socket
        # workers are cancelled with the pane; their finally blocks close the rest.
        if self.stalled is not None:
            self.stalled.close()
            self.stalled = None

    # -- tabs ------------------------------------------------------------------------------

    def on_show(self) -> None:
        """Opened with its number key: focus the tabs, so arrows and Enter work at once."""
        self.query_one("#ws-tabs", RadioSet).focus()

    @on(RadioSet.Changed, "#ws-tabs")
    def _tab(self, event: RadioSet.Changed) -> None:
        self.view = VIEWS[event.radio_set.pressed_index]

    def watch_view(self, view: str) -> None:
        self.query_one("#ws-views", ContentSwitcher).current = f"view-{view}"
        self._show_lesson()

    def _show_lesson(self) -> None:
        pitfall = self.context.blocking.enabled and self.view in ("bots", "chat")
        self._lesson.update(BOTS_PITFALL if pitfall else LESSONS[self.view])
        self._lesson.set_class(pitfall, "-blocking")

    def action_run(self) -> None:
        """The ``r`` key: the current tab's main button."""
        main = {
            "echo": "echo-send",
            "json": "json-ping",
            "chat": "chat-join",
            "auth": "auth-valid",
            "bots": "bots-start",
        }
        self.do_button(main[self.view])

    def do_button(self, button_id: str) -> None:
        """What a click on ``button_id`` does."""
        if button_id == "echo-send":
            text = self.query_one("#echo-text", Input).value or "hello"
            self.send_frame("echo", "/ws/echo", text)
        elif button_id.startswith("json-"):
            self.send_frame("json", "/ws/json", self._json_frame(button_id))
        elif button_id == "chat-join":
            if self.chat_joined:
                self.leave_chat()
            else:
                self.join_chat()
        elif button_id == "chat-send":
            self._chat_send()
        elif button_id.startswith("auth-"):
            self.try_auth(button_id.removeprefix("auth-"))
        elif button_id == "bots-start":
            self._start_bots()
        elif button_id == "bots-stop":
            self.stop_bots()

    @on(Button.Pressed)
    def _button(self, event: Button.Pressed) -> None:
        if event.button.id:
            self.do_button(event.button.id)

    def submit(self, field: Input) -> None:
        """Enter sends what the field holds; in the bots' fields it runs the tab."""
        targets = {"echo-text": "echo-send", "json-text": "json-send", "chat-text": "chat-send"}
        if field.id in targets:
            self.do_button(targets[field.id])
        else:
            self.action_run()

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
        async with self._socket_lock:
            conn = self._sockets.get(kind)
            if conn is not None and conn.close_code is None:
                return conn
            url = ws_url(str(self.context.http.base_url), path)
            conn = await connect(url, open_timeout=OPEN_TIMEOUT_S, close_timeout=1.0)
            self._sockets[kind] = conn
            self.read_socket(kind, conn)
            return conn

    @work(group="ws-readers")
    async def read_socket(self, kind: str, conn: ClientConnection) -> None:
        """Show every frame the server sends on this connection, then how it closed."""
        try:
            async for frame in conn:
                self.say(f"{kind} ← {str(frame)[:300]}")
        except ConnectionClosed:
            pass
        finally:
            if self._sockets.get(kind) is conn:
                del self._sockets[kind]
            if kind == "chat":
                self.chat_joined = False
            with contextlib.suppress(Exception):
                await conn.close()
        self.say(f"{kind} × closed {conn.close_code} {conn.close_reason or ''}".rstrip())

    @work(group="ws-io")
    async def send_frame(self, kind: str, path: str, text: str) -> None:
        """Send one text frame over the ``kind`` connection (its reader shows the answer)."""
        try:
            conn = await self._socket(kind, path)
            self.say(f"{kind} → {text[:300]}")
            await conn.send(text)
        except (OSError, InvalidHandshake, ConnectionClosed, TimeoutError) as exc:
            self.say(f"{kind} ! {type(exc).__name__}: {exc}")

    def join_chat(self) -> None:
        name_input = self.query_one("#chat-name", Input)
        room_input = self.query_one("#chat-room", Input)
        path = f"/ws/chat/{room_input.value.strip()}?name={name_input.value.strip()}"
        self.open_chat(path)

    @work(group="ws-io")
    async def open_chat(self, path: str) -> None:
        try:
            await self._socket("chat", path)
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            self.say(f"chat ! {type(exc).__name__}: {exc}")
            return
        self.chat_joined = True

    def leave_chat(self) -> None:
        conn = self._sockets.get("chat")
        if conn is not None:
            self.close_socket(conn)

    @work(group="ws-io")
    async def close_socket(self, conn: ClientConnection) -> None:
        await conn.close()

    def watch_chat_joined(self, joined: bool) -> None:
        self._join_button.label = "Leave" if joined else "Join"

    def _chat_send(self) -> None:
        if not self.chat_joined:
            self.notify("Join a room first.", severity="warning")
            return
        text_input = self.query_one("#chat-text", Input)
        frame = json.dumps({"type": "message", "text": text_input.value or "hi"})
        text_input.value = ""
        self.send_frame("chat", "/ws/chat", frame)

    # -- auth ------------------------------------------------------------------------------

    @work(group="ws-auth")
    async def try_auth(self, case: str) -> None:
        """Get a token the way the case says, connect to /ws/secure with it, report."""
        http = self.context.http
        try:
            subprotocols = [Subprotocol(SUBPROTOCOL)]
            if case in ("valid", "bad", "expired"):
                endpoint = "/ws/token/expired" if case == "expired" else "/ws/token"
                body: dict[str, Any] = {"name": "pane"}
                if case != "expired":
                    body["ttl_s"] = 30
                response = await http.post(endpoint, json=body)
                response.raise_for_status()
                token = response.json()["token"]
                if case == "bad":
                    # Signed by another secret: right shape, wrong signature.
                    token = TokenSigner().issue("pane", 30)[0]
                subprotocols.append(Subprotocol(f"bearer.{token}"))
            url = ws_url(str(http.base_url), "/ws/secure")
            self.say(f"auth ({case}): connecting with {len(subprotocols)} subprotocol(s)")
            async with connect(
                url, subprotocols=subprotocols, open_timeout=OPEN_TIMEOUT_S, close_timeout=1.0
            ) as conn:
                try:
                    first = await asyncio.wait_for(conn.recv(), OPEN_TIMEOUT_S)
                    self.say(f"auth ← {first!s}")
                    await conn.send("hello from the pane")
                    self.say(f"auth ← {await asyncio.wait_for(conn.recv(), OPEN_TIMEOUT_S)}")
                except ConnectionClosed:
                    pass
            self.say(f"auth ({case}) × closed {conn.close_code} {conn.close_reason}".rstrip())
        except (httpx.HTTPError, OSError, InvalidHandshake, TimeoutError, ValueError) as exc:
            self.say(f"auth ! {type(exc).__name__}: {exc}")

    # -- bots ------------------------------------------------------------------------------

    def _start_bots(self) -> None:
        fields = [self.query_one(f"#bots-{k}", Input) for k in ("n", "rate", "size")]
        problems = invalid_fields(*fields)
        if problems:
            self.notify(problems[0][1], title="Invalid input", severity="error")
            problems[0][0].focus()
            return
        n, rate, size = (int(f.value) for f in fields)
        self.run_bots(n, rate, size)

    @work(group="ws-bots", exclusive=True)
    async def run_bots(self, n: int, rate: int, size: int) -> None:
        """Connect ``n`` bots (progress shown), chat at ``rate``, until stopped or unmounted."""
        swarm = BotSwarm(str(self.context.http.base_url), BOTS_ROOM)
        self.swarm = swarm
        self.connecting_bots = True
        try:
            self.say(f"bots: connecting {n} to /ws/chat/{BOTS_ROOM}")
            opened = await swarm.connect(n)
            self.connecting_bots = False
            self.say(f"bots: {opened} connected, chatting at {rate} msg/s of {size} chars")
            swarm.start_chatting(rate, size)
            while True:
                await self._fetch_stats()
                await asyncio.sleep(STATS_EVERY_S)
        finally:
            self.connecting_bots = False
            # Cancelled (Stop, a new Start, the pane or the app closing): close every bot
            # and await every task before this worker ends.
            await swarm.close()
            if self.swarm is swarm:
                self.swarm = None
            self.say("bots: all closed")

    async def _fetch_stats(self) -> None:
        try:
            response = await self.context.http.get("/ws/stats")
            self.post_message(self.ServerStats(response.json()))
        except (httpx.HTTPError, ValueError):
            pass  # the figures keep their last server values

    def on_ws_pane_server_stats(self, message: ServerStats) -> None:
        self.server_stats = message.stats

    def stop_bots(self) -> None:
        self.workers.cancel_group(self, "ws-bots")

    @on(Checkbox.Changed, "#bots-stalled")
    def _stalled_toggled(self, event: Checkbox.Changed) -> None:
        if event.value:
            self.add_stalled()
        elif self.stalled is not None:
            self.stalled.close()
            self.stalled = None
            self.say("stalled client: socket closed (no close frame)")

    @work(group="ws-stalled", exclusive=True)
    async def add_stalled(self) -> None:
        """Join the bots' room with a client that never reads."""
        url = ws_url(str(self.context.http.base_url), f"/ws/chat/{BOTS_ROOM}?name=stalled")
        client = StalledClient(url)
        try:
            await client.connect()
        except (OSError, TimeoutError) as exc:
            self.say(f"stalled client ! {type(exc).__name__}: {exc}")
            return
        if self.stalled is not None:
            self.stalled.close()
        self.stalled = client
        self.say("stalled client: joined, and will never read")

    def refresh_figures(self) -> None:
        """At <= 4 Hz: rates from counter deltas, latency percentiles, server figures."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        swarm = self.swarm
        stats = self.server_stats
        if swarm is None:
            view = BotFiguresView(
                stalled=self.stalled is not None,
                mode="naive" if self.context.blocking.enabled else "right",
            )
        else:
            figures = swarm.figures
            sent, received = figures.sent, figures.received
            elapsed = now - self._last_tick if self._last_tick else 0.0
            last_sent, last_received = self._last_counts
            self._last_counts = (sent, received)
            in_rate = (sent - last_sent) / elapsed if elapsed > 0 else 0.0
            out_rate = (received - last_received) / elapsed if elapsed > 0 else 0.0
            p50, p99 = swarm.latency_ms()
            drops = stats.get("recent_drops") or []
            view = BotFiguresView(
                target=figures.target,
                connected=figures.connected,
                connecting=self.connecting_bots,
                msgs_in_per_s=in_rate,
                msgs_out_per_s=out_rate,
                p50_ms=p50,
                p99_ms=p99,
                drops=int(stats.get("drops", 0)),
                closed_by_server=figures.closed_by_server,
                stalled=self.stalled is not None,
                mode="naive" if self.context.blocking.enabled else "right",
                queued_kib=stats.get("queued_bytes", 0) / 1024,
                naive_waiting_s=float(stats.get("naive_waiting_s", 0.0)),
                last_drop=f"{drops[-1]['name']}: {drops[-1]['reason']}" if drops else "",
            )
        self._last_tick = now
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
                source_of(WsPane.try_auth, "client: this pane's worker"),
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
        return blocks
