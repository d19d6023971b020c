"""The WebSocket pane's tabs: one row of compact controls each (two for chat), and the tab strip.

Sized for the pane's 73 columns at 100×30: every control of the chosen tab on one line,
labels whole; compose order is reading order, so Tab walks the controls left to right.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import (
    Button,
    Checkbox,
    ContentSwitcher,
    Input,
    Label,
    RadioButton,
    RadioSet,
)

from explorer.pane import Teaching
from explorer.widgets.choice_buttons import choice_buttons
from explorer.widgets.number_field import number_input

VIEWS = ("echo", "json", "chat", "auth", "bots")
#: the Bots tab's defaults: 640 KiB/s for the stalled client fills its socket in seconds,
#: and its 2 MiB outbox takes over 3 s more, so the right form drops it by its 2 s send
#: timeout; 800 deliveries a second is light work for the bots' readers on this loop
DEFAULT_BOTS, DEFAULT_RATE, DEFAULT_SIZE = 20, 40, 16384
VIEW_LABELS = {"echo": "Echo", "json": "JSON", "chat": "Chat", "auth": "Auth", "bots": "Bots"}

#: what each tab teaches, under its controls (blocking mode has its own text for the room)
LESSONS = {
    "echo": Teaching(
        lesson="Each line you send comes straight back over a real WebSocket on this loop."
    ),
    "json": Teaching(
        lesson="A typed JSON protocol: ping gets pong, message gets ack; malformed JSON or an "
        "unknown type gets an error frame and the socket stays open."
    ),
    "chat": Teaching(
        lesson="Join a room under a name: presence notices and every member's messages, "
        "delivered through one bounded outbox and one writer task per member.",
        pitfall="Blocking mode: the broadcast awaits each member's send_text in turn, so one "
        "member that stops reading stops the whole room. See it with the Bots tab's stalled "
        "client.",
    ),
    "auth": Teaching(
        lesson="POST /ws/token, then connect offering the subprotocol bearer.<token> (never "
        "the query string: that lands in logs). Missing, bad or expired: closed with 1008."
    ),
    "bots": Teaching(
        lesson="Real websockets clients on this loop. Start, tick stalled client: once its "
        "socket is full (seconds at these defaults) the server drops it (1008) and no message "
        "waits long. Then press b and tick it again.",
        pitfall="Blocking mode: the broadcast awaits each member's send_text in turn. Once the "
        "stalled client's socket is full it waits there: out falls to 0 and the oldest "
        "undelivered message ages for everyone (p50/p99 count only what arrived). No stall in "
        "the monitor: the loop is free, the room awaits.",
    ),
}


@dataclass(frozen=True)
class AuthCase:
    """One way of connecting to ``/ws/secure``."""

    key: str
    label: str


AUTH_CASES = (
    AuthCase("valid", "valid token"),
    AuthCase("missing", "missing token"),
    AuthCase("bad", "bad signature"),
    AuthCase("expired", "expired token"),
)


class WsTabs(RadioSet):
    """Echo, JSON, Chat, Auth, Bots: arrows move, Enter or space picks."""

    DEFAULT_CSS = """
    WsTabs { layout: horizontal; height: 1; width: 100%; }
    WsTabs > RadioButton { width: auto; margin-right: 3; }
    """

    def __init__(self) -> None:
        super().__init__(
            *(RadioButton(VIEW_LABELS[k], value=k == "echo", id=f"tab-{k}") for k in VIEWS),
            id="ws-tabs",
            compact=True,
        )


class WsViews(ContentSwitcher):
    """Every tab's controls; only the chosen one is displayed."""

    DEFAULT_CSS = """
    WsViews { height: auto; }
    WsViews > * { height: auto; }
    WsViews .row { height: 1; }
    WsViews Button { margin-right: 1; min-width: 6; }
    WsViews Label { padding: 0 1 0 0; }
    WsViews Input { width: 1fr; margin-right: 1; }
    WsViews #chat-name, WsViews #chat-room { width: 14; }
    WsViews #chat-join { width: 9; }
    WsViews #bots-n, WsViews #bots-rate { width: 5; }
    WsViews #bots-size { width: 6; }
    WsViews #bots-start { margin-left: 1; }
    """

    def __init__(self, bot_figures: Widget) -> None:
        super().__init__(id="ws-views", initial="view-echo")
        self.bot_figures = bot_figures
        #: held, not queried: the chat reader's ``finally`` relabels it during teardown
        self.join_button = Button("Join", id="chat-join", variant="primary", compact=True)

    def compose(self) -> ComposeResult:
        with Horizontal(id="view-echo", classes="row"):
            yield Input(placeholder="text to echo", id="echo-text", compact=True)
            yield Button("Send", id="echo-send", variant="primary", compact=True)
        with Horizontal(id="view-json", classes="row"):
            yield Button("ping", id="json-ping", variant="primary", compact=True)
            yield Input(placeholder="message text", id="json-text", compact=True)
            yield Button("message", id="json-send", compact=True)
            yield Button("malformed", id="json-bad", compact=True)
            yield Button("unknown type", id="json-unknown", compact=True)
        with Vertical(id="view-chat"):
            with Horizontal(classes="row"):
                yield Label("name")
                yield Input("you", id="chat-name", compact=True)
                yield Label("room")
                yield Input("lobby", id="chat-room", compact=True)
                yield self.join_button
            with Horizontal(classes="row"):
                yield Input(placeholder="say something", id="chat-text", compact=True)
                yield Button("Send", id="chat-send", compact=True)
        with Horizontal(id="view-auth", classes="row"):
            yield from choice_buttons(((c.key, c.label) for c in AUTH_CASES), "auth", "valid")
        with Vertical(id="view-bots"):
            with Horizontal(classes="row"):
                yield Label("bots")
                yield number_input("bots-n", str(DEFAULT_BOTS), 1, 1000, "Bots")
                yield Label("msg/s")
                yield number_input("bots-rate", str(DEFAULT_RATE), 0, 5000, "Messages per second")
                yield Label("size")
                yield number_input(
                    "bots-size", str(DEFAULT_SIZE), 16, 16384, "Message size (chars)"
                )
                yield Button("Start", id="bots-start", variant="primary", compact=True)
                yield Button("Stop", id="bots-stop", compact=True)
                yield Checkbox("stalled client", id="bots-stalled", compact=True)
            yield self.bot_figures
