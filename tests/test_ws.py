"""WebSockets over real loopback connections: echo, JSON, token auth, chat rooms, the
stalled-client lesson (right and naive), churn, bad input, and the pane (Pilot)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import socket
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from textual.pilot import Pilot
from textual.widgets import Checkbox, Input, Log
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin, Subprotocol

from explorer.app import ExplorerApp
from explorer.panes.ws import BOTS_ROOM, WsPane
from explorer.registry import PANES
from explorer.widgets.top_bar import TopBar
from explorer.widgets.ws_figures import BotFigures, BotFiguresView
from explorer.ws_bots import BotSwarm, StalledClient, ws_url
from server.routes.ws import WsState
from server.runner import ServerHandle
from server.settings import Settings
from server.ws_manager import WsLimits
from server.ws_tokens import SUBPROTOCOL, TokenError, TokenSigner, redact
from tests.conftest import eventually

from .frozen import FrozenMonitor, key_of

MESSAGES = 2000
MESSAGE_SIZE = 4096
HEALTHY = 100


def state_of(server: ServerHandle) -> WsState:
    state: WsState = server.app.state.ws
    return state


def url(server: ServerHandle, path: str) -> str:
    return ws_url(server.url, path)


async def recv_json(conn: ClientConnection, within: float = 10.0) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(await asyncio.wait_for(conn.recv(), within))
    return data


async def close_of(conn: ClientConnection, within: float = 10.0) -> tuple[int | None, str]:
    """Read until the server closes; its close code and reason."""
    async with asyncio.timeout(within):
        try:
            while True:
                await conn.recv()
        except ConnectionClosed:
            pass
    return conn.close_code, conn.close_reason or ""


async def until_type(conn: ClientConnection, kind: str, within: float = 10.0) -> dict[str, Any]:
    async with asyncio.timeout(within):
        while True:
            frame = await recv_json(conn)
            if frame.get("type") == kind:
                return frame


async def abort(conn: ClientConnection) -> None:
    """Drop the TCP connection without a close frame."""
    conn.transport.abort()
    await asyncio.wait_for(conn.wait_closed(), 10)


@pytest.fixture
async def limited(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[ServerHandle]:
    """A server with the WsLimits given by ``@pytest.mark.parametrize(..., indirect=True)``."""
    handle = ServerHandle(Settings(port=0, data_dir=tmp_path / "data"))
    handle.app.state.ws_limits = request.param
    await handle.start()
    try:
        yield handle
    finally:
        await handle.stop()


# -- echo and JSON -----------------------------------------------------------------------------


async def test_echo_returns_each_text_message(server: ServerHandle) -> None:
    async with connect(url(server, "/ws/echo")) as conn:
        for text in ("hello", "", "ünïcode ✓", "x" * 10_000):
            await conn.send(text)
            assert await asyncio.wait_for(conn.recv(), 10) == text


async def test_json_ping_gets_pong_and_message_gets_ack(server: ServerHandle) -> None:
    async with connect(url(server, "/ws/json")) as conn:
        await conn.send(json.dumps({"type": "ping", "id": 7}))
        pong = await recv_json(conn)
        assert pong["type"] == "pong"
        assert pong["id"] == 7
        await conn.send(json.dumps({"type": "message", "text": "hi"}))
        ack = await recv_json(conn)
        assert ack == {**ack, "type": "ack", "text": "hi", "length": 2}


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        ('{"type": "ping"', "malformed JSON"),
        ("not json at all", "malformed JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"type": "shout"}', "unknown type 'shout'"),
        ('{"no": "type"}', "unknown type"),
        ('{"type": "message"}', "needs a string field 'text'"),
        ('{"type": "message", "text": 5}', "needs a string field 'text'"),
    ],
)
async def test_json_bad_input_gets_an_error_frame_and_the_socket_stays_open(
    server: ServerHandle, caplog: pytest.LogCaptureFixture, frame: str, error: str
) -> None:
    caplog.set_level(logging.INFO, logger="fastasync.ws")
    async with connect(url(server, "/ws/json")) as conn:
        await conn.send(frame)
        answer = await recv_json(conn)
        assert answer["type"] == "error"
        assert error in answer["error"]
        await conn.send(json.dumps({"type": "ping"}))
        assert (await recv_json(conn))["type"] == "pong"
    lines = [r for r in caplog.records if r.name == "fastasync.ws"]
    assert len(lines) == 1
    assert lines[0].exc_info is None
    assert error.split("'")[0] in lines[0].getMessage()


@pytest.mark.parametrize("path", ["/ws/echo", "/ws/json", "/ws/chat/lobby?name=ann"])
async def test_binary_on_a_text_socket_closes_1003(
    server: ServerHandle, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    caplog.set_level(logging.INFO)
    async with connect(url(server, path)) as conn:
        await conn.send(b"\x00\x01binary")
        code, reason = await close_of(conn)
    assert code == 1003
    assert "binary frames are not accepted" in reason
    assert not [r for r in caplog.records if r.exc_info]


@pytest.mark.parametrize("path", ["/ws/echo", "/ws/json", "/ws/chat/lobby?name=ann"])
async def test_a_message_over_the_app_limit_closes_1009(server: ServerHandle, path: str) -> None:
    limit = state_of(server).limits.max_message_chars
    async with connect(url(server, path)) as conn:
        await conn.send("y" * (limit + 1))
        code, reason = await close_of(conn)
    assert code == 1009
    assert f"{limit + 1} characters" in reason


async def test_a_frame_over_uvicorns_limit_closes_1009_before_the_app_reads_it(
    server: ServerHandle,
) -> None:
    async with connect(url(server, "/ws/echo"), max_size=None) as conn:
        await conn.send(b"z" * (16 * 1024 * 1024 + 1))
        code, _ = await close_of(conn)
    assert code == 1009
    # ... and everyone else is still served
    async with connect(url(server, "/ws/echo")) as other:
        await other.send("still here")
        assert await asyncio.wait_for(other.recv(), 10) == "still here"


# -- chat ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/ws/chat", "room missing"),
        ("/ws/chat/", "room missing"),
        ("/ws/chat/Not%20A%20Room", "bad room name"),
        ("/ws/chat/" + "r" * 33, "bad room name"),
        ("/ws/chat/lobby?name=bad%20name!", "bad name"),
    ],
)
async def test_missing_or_bad_room_names_close_1008_with_the_reason(
    server: ServerHandle, path: str, reason: str
) -> None:
    async with connect(url(server, path)) as conn:
        code, said = await close_of(conn)
    assert code == 1008
    assert reason in said
    assert state_of(server).manager.member_count == 0


async def test_chat_members_see_presence_and_each_others_messages(server: ServerHandle) -> None:
    async with connect(url(server, "/ws/chat/lobby?name=ann")) as ann:
        welcome = await until_type(ann, "welcome")
        assert welcome["members"] == 1
        async with connect(url(server, "/ws/chat/lobby?name=bob")) as bob:
            presence = await until_type(ann, "presence")
            assert "bob" in presence["joined"]
            assert presence["members"] == 2
            await bob.send(json.dumps({"type": "message", "text": "hi ann"}))
            for conn in (ann, bob):
                message = await until_type(conn, "message")
                assert message["from"] == "bob"
                assert message["text"] == "hi ann"
            await ann.send(json.dumps({"type": "dance"}))
            error = await until_type(ann, "error")
            assert "unknown type 'dance'" in error["error"]
        left = await until_type(ann, "presence")
        assert left["left"] == ["bob"]
        assert left["members"] == 1
        async with httpx.AsyncClient(base_url=server.url) as http:
            stats = (await http.get("/ws/stats")).json()
        assert stats["members"] == 1
        assert stats["writer_tasks"] == 1
    await eventually(lambda: state_of(server).manager.member_count == 0)
    assert state_of(server).manager.rooms == {}


@pytest.mark.parametrize(
    "limited",
    [WsLimits(max_room_members=2, max_rooms=1, max_other_sockets=1)],
    indirect=True,
)
async def test_room_client_and_socket_limits_close_1013(limited: ServerHandle) -> None:
    async with (
        connect(url(limited, "/ws/chat/one?name=a")) as a,
        connect(url(limited, "/ws/chat/one?name=b")) as b,
    ):
        await until_type(a, "welcome")
        await until_type(b, "welcome")
        async with connect(url(limited, "/ws/chat/one?name=c")) as c:
            assert await close_of(c) == (1013, "room 'one' is full (2)")
        async with connect(url(limited, "/ws/chat/two?name=d")) as d:
            assert await close_of(d) == (1013, "too many rooms (1)")
    async with connect(url(limited, "/ws/echo")) as first:
        await first.send("x")
        await first.recv()
        async with connect(url(limited, "/ws/json")) as second:
            code, reason = await close_of(second)
            assert code == 1013
            assert "too many open sockets" in reason


# -- origin and tokens -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "limited", [WsLimits(extra_origins=frozenset({"https://app.example"}))], indirect=True
)
async def test_origin_allow_list(limited: ServerHandle) -> None:
    own = Origin(f"http://127.0.0.1:{limited.port}")
    for origin in (None, own, Origin(f"http://localhost:{limited.port}"), "https://app.example"):
        async with connect(
            url(limited, "/ws/echo"), origin=Origin(origin) if origin else None
        ) as ok:
            await ok.send("hi")
            assert await asyncio.wait_for(ok.recv(), 10) == "hi"
    for path in ("/ws/echo", "/ws/json", "/ws/secure", "/ws/chat/lobby"):
        async with connect(url(limited, path), origin=Origin("http://evil.example")) as bad:
            code, reason = await close_of(bad)
        assert code == 1008
        assert reason == "origin not allowed: http://evil.example"


async def token_for(client: httpx.AsyncClient, name: str = "ann", ttl_s: float = 60) -> str:
    response = await client.post("/ws/token", json={"name": name, "ttl_s": ttl_s})
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


def offer(token: str | None) -> list[Subprotocol]:
    offered = [Subprotocol(SUBPROTOCOL)]
    if token is not None:
        offered.append(Subprotocol(f"bearer.{token}"))
    return offered


async def test_a_valid_token_connects_and_says_who(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    token = await token_for(client)
    async with connect(url(server, "/ws/secure"), subprotocols=offer(token)) as conn:
        assert conn.subprotocol == SUBPROTOCOL
        welcome = await recv_json(conn)
        assert welcome["type"] == "welcome"
        assert welcome["name"] == "ann"
        await conn.send("hello")
        assert await recv_json(conn) == {"type": "echo", "from": "ann", "text": "hello"}


async def tampered(client: httpx.AsyncClient) -> str:
    prefix, payload, signature = (await token_for(client)).split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    return f"{prefix}.{payload}.{flipped}"


async def forged_name(client: httpx.AsyncClient) -> str:
    _, _, signature = (await token_for(client, "ann")).split(".")
    prefix, payload, _ = (await token_for(client, "root")).split(".")
    return f"{prefix}.{payload}.{signature}"


async def expired(client: httpx.AsyncClient) -> str:
    response = await client.post("/ws/token/expired", json={"name": "ann"})
    token: str = response.json()["token"]
    return token


async def missing(client: httpx.AsyncClient) -> None:
    return None


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (missing, "token missing"),
        (tampered, "token refused: bad signature"),
        (forged_name, "token refused: bad signature"),
        (expired, "token expired 5."),
    ],
)
async def test_missing_bad_or_expired_tokens_close_1008_with_the_reason(
    server: ServerHandle, client: httpx.AsyncClient, make: Any, reason: str
) -> None:
    token = await make(client)
    async with connect(url(server, "/ws/secure"), subprotocols=offer(token)) as conn:
        code, said = await close_of(conn)
    assert code == 1008
    assert said.startswith(reason)


async def test_a_token_from_another_server_is_refused(server: ServerHandle) -> None:
    token = TokenSigner().issue("ann", 60)[0]  # same format, another secret
    async with connect(url(server, "/ws/secure"), subprotocols=offer(token)) as conn:
        assert await close_of(conn) == (1008, "token refused: bad signature")


async def test_the_socket_closes_1008_when_its_token_expires(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    token = await token_for(client, ttl_s=1)
    async with connect(url(server, "/ws/secure"), subprotocols=offer(token)) as conn:
        assert (await recv_json(conn))["type"] == "welcome"
        assert await close_of(conn, within=10) == (1008, "token expired")


def test_token_checks_in_process() -> None:
    now = [1000.0]
    signer = TokenSigner(b"k" * 32, clock=lambda: now[0])
    token, expires_at = signer.issue("ann", 30)
    assert signer.verify(token).name == "ann"
    assert expires_at == 1030.0
    now[0] = 1030.0
    with pytest.raises(TokenError, match=r"expired 0\.0 s ago"):
        signer.verify(token)
    for bad in ("", "wst1.a", "x.y.z", "wst1." + "a" * 600 + ".b"):
        with pytest.raises(TokenError):
            signer.verify(bad)
    assert redact(f"GET /ws/secure?token={token} bearer.{token}").count("<redacted>") == 2


async def test_bad_token_requests_get_a_422(client: httpx.AsyncClient) -> None:
    for body in ({"name": "bad name!"}, {"name": "a", "ttl_s": 0}, {"name": "a", "ttl_s": 1e9}):
        assert (await client.post("/ws/token", json=body)).status_code == 422


class Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(f"{record.name}: {record.getMessage()}")


@pytest.fixture
def everything_logged() -> Iterator[Recorder]:
    """Every record at DEBUG, uvicorn's and websockets' included."""
    recorder = Recorder()
    root = logging.getLogger()
    saved = root.level
    noisy = [logging.getLogger(n) for n in ("uvicorn.error", "uvicorn.access", "websockets")]
    levels = [(logger.level, logger.propagate) for logger in noisy]
    root.addHandler(recorder)
    root.setLevel(logging.DEBUG)
    for logger in noisy:
        logger.setLevel(logging.DEBUG)
        # uvicorn stops its access logger propagating whenever a server runs without the
        # access log (every other test's), and does not undo it.
        logger.propagate = True
    yield recorder
    root.removeHandler(recorder)
    root.setLevel(saved)
    for logger, (level, propagate) in zip(noisy, levels, strict=True):
        logger.setLevel(level)
        logger.propagate = propagate


async def test_tokens_never_appear_in_any_log_record(
    tmp_path: Path, everything_logged: Recorder
) -> None:
    handle = ServerHandle(Settings(port=0, data_dir=tmp_path), access_log=True)
    await handle.start()
    try:
        async with httpx.AsyncClient(base_url=handle.url) as client:
            good = await token_for(client)
            bad = await tampered(client)
            old = await expired(client)
            async with connect(url(handle, "/ws/secure"), subprotocols=offer(good)) as conn:
                assert (await recv_json(conn))["type"] == "welcome"
            for token in (bad, old):
                async with connect(url(handle, "/ws/secure"), subprotocols=offer(token)) as conn:
                    assert (await close_of(conn))[0] == 1008
            # A client that puts it in the query string anyway:
            async with connect(url(handle, f"/ws/echo?token={good}")) as conn:
                await conn.send("x")
                await conn.recv()
    finally:
        await handle.stop()
    logged = "\n".join(everything_logged.messages)
    assert "/ws/secure" in logged
    assert "POST /ws/token" in logged
    assert "Sec-WebSocket-Protocol" in logged  # headers were dumped at DEBUG...
    assert "<redacted>" in logged  # ... with the token taken out
    for token in (good, bad, old):
        assert token not in logged
        assert token.split(".")[2] not in logged


# -- the lesson: one stalled client in a room of 100 ---------------------------------------------


@pytest.fixture
async def room_with_a_stalled_client(
    server: ServerHandle,
) -> AsyncIterator[tuple[BotSwarm, StalledClient]]:
    swarm = BotSwarm(server.url, "lesson")
    stalled = StalledClient(url(server, "/ws/chat/lesson?name=stalled"))
    try:
        assert await swarm.connect(HEALTHY) == HEALTHY
        await stalled.connect()
        await eventually(lambda: state_of(server).manager.member_count == HEALTHY + 1)
        yield swarm, stalled
    finally:
        stalled.close()
        await swarm.close()


async def test_a_stalled_client_is_dropped_and_the_room_gets_every_message_in_order(
    server: ServerHandle, room_with_a_stalled_client: tuple[BotSwarm, StalledClient]
) -> None:
    swarm, _ = room_with_a_stalled_client
    state = state_of(server)
    limits = state.limits
    peak_member_bytes = peak_total_bytes = 0

    async def sample() -> None:
        nonlocal peak_member_bytes, peak_total_bytes
        while True:
            members = [m for r in state.manager.rooms.values() for m in r.members.values()]
            peak_member_bytes = max([peak_member_bytes, *(m.queued_bytes for m in members)])
            peak_total_bytes = max(peak_total_bytes, sum(m.queued_bytes for m in members))
            await asyncio.sleep(0.02)

    sampler = asyncio.create_task(sample())
    try:
        async with asyncio.timeout(180):
            await swarm.send_burst(MESSAGES, MESSAGE_SIZE, window=64)
            await eventually(lambda: all(b.received == MESSAGES for b in swarm.bots), within=120)
    finally:
        sampler.cancel()
        await asyncio.gather(sampler, return_exceptions=True)
    assert [b.received for b in swarm.bots] == [MESSAGES] * HEALTHY
    assert swarm.figures.out_of_order == 0
    assert swarm.figures.closed_by_server == 0
    stats = state.manager.stats()
    assert stats["drops"] == 1
    drop = stats["recent_drops"][0]
    assert drop["name"] == "stalled"
    assert drop["reason"].startswith(("send timeout", "outbox full"))
    if drop["reason"].startswith("send timeout"):
        assert limits.send_timeout_s <= drop["stuck_s"] <= limits.send_timeout_s + 3.0
    assert stats["members"] == HEALTHY
    # Memory stayed bounded: no outbox ever held more than its cap.
    assert 0 < peak_member_bytes <= limits.queue_max_bytes
    assert peak_total_bytes <= (HEALTHY + 1) * limits.queue_max_bytes


async def test_naive_broadcast_lets_one_stalled_client_stall_the_room(
    server: ServerHandle, room_with_a_stalled_client: tuple[BotSwarm, StalledClient]
) -> None:
    swarm, stalled = room_with_a_stalled_client
    manager = state_of(server).manager
    server.app.state.blocking.set(True)
    burst = asyncio.create_task(swarm.send_burst(MESSAGES, MESSAGE_SIZE, window=64))
    try:
        # A broadcast waits on the stalled socket for longer than the right form's send
        # timeout would ever allow, twice over ...
        timeout = manager.limits.send_timeout_s
        await eventually(lambda: manager.stats()["naive_waiting_s"] > 2 * timeout, within=120)
        # ... and meanwhile nobody gets anything new.
        stuck_at = [b.received for b in swarm.bots]
        assert max(stuck_at) < MESSAGES
        await asyncio.sleep(1.0)
        assert [b.received for b in swarm.bots] == stuck_at
        assert manager.stats()["drops"] == 0  # nothing ever drops the stalled client
        # Pull its plug: the room flows again.
        stalled.close()
        async with asyncio.timeout(180):
            await burst
            await eventually(lambda: all(b.received == MESSAGES for b in swarm.bots), within=120)
    finally:
        burst.cancel()
        await asyncio.gather(burst, return_exceptions=True)
    assert swarm.figures.out_of_order == 0
    assert manager.counters.naive_longest_s > 2 * timeout


# -- churn and abrupt disconnects -----------------------------------------------------------------


def ws_tasks() -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("ws-writer")]


async def half_handshake(server: ServerHandle) -> None:
    """A TCP connection that sends half an upgrade request and vanishes."""
    loop = asyncio.get_running_loop()
    with socket.socket() as sock:
        sock.setblocking(False)
        await loop.sock_connect(sock, (server.host, server.port))
        await loop.sock_sendall(sock, b"GET /ws/chat/churn?name=x HTTP/1.1\r\nHost: x\r\n")


CYCLES = ("clean", "abort", "abort-after-send", "abort-mid-read", "half", "stalled")


async def one_cycle(server: ServerHandle, rng: random.Random, i: int, tally: Counter[str]) -> None:
    how = rng.choice(CYCLES)
    tally[how] += 1
    if how == "half":
        await half_handshake(server)
        return
    if how == "stalled":
        stalled = StalledClient(url(server, f"/ws/chat/churn?name=s{i}"))
        await stalled.connect()
        stalled.close()
        return
    conn = await connect(url(server, f"/ws/chat/churn?name=c{i}"), close_timeout=2)
    if how == "clean":
        await conn.send(json.dumps({"type": "message", "text": "bye"}))
        await conn.close()
        return
    if how == "abort-after-send":
        await conn.send(json.dumps({"type": "message", "text": "x" * rng.randrange(1, 5000)}))
    if how == "abort-mid-read":
        # Gone while the server may be in the middle of sending it something.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(conn.recv(), rng.random() * 0.05)
    await abort(conn)


async def test_churn_with_abrupt_drops_returns_to_baseline(server: ServerHandle) -> None:
    manager = state_of(server).manager
    baseline = len(asyncio.all_tasks())
    rng = random.Random(3)
    tally: Counter[str] = Counter()
    listener = await connect(url(server, "/ws/chat/churn?name=listener"))
    heard: list[str] = []

    async def listen() -> None:
        async for frame in listener:
            heard.append(json.loads(frame).get("text", ""))

    reader = asyncio.create_task(listen())
    try:
        for first in range(0, 500, 25):
            await asyncio.gather(
                *(one_cycle(server, rng, i, tally) for i in range(first, first + 25))
            )
        await eventually(lambda: manager.member_count == 1, within=30)
        # The one member that stayed is still served.
        await listener.send(json.dumps({"type": "message", "text": "still here"}))
        await eventually(lambda: "still here" in heard, within=10)
    finally:
        await listener.close()
        await asyncio.wait_for(reader, 10)
    await eventually(lambda: manager.member_count == 0 and not manager.rooms, within=30)
    await eventually(lambda: not ws_tasks(), within=30)
    await eventually(lambda: len(asyncio.all_tasks()) <= baseline, within=30)
    assert manager.stats()["queued_bytes"] == 0
    assert sum(tally.values()) == 500
    assert min(tally[c] for c in CYCLES) > 50


async def test_stopping_the_server_closes_every_socket_and_leaves_no_task(
    tmp_path: Path,
) -> None:
    handle = ServerHandle(Settings(port=0, data_dir=tmp_path))
    await handle.start()
    swarm = BotSwarm(handle.url, "bye")
    stalled = StalledClient(url(handle, "/ws/chat/bye?name=stalled"))
    try:
        await swarm.connect(20)
        await stalled.connect()
        async with connect(url(handle, "/ws/echo")) as echo:
            await asyncio.wait_for(handle.stop(), handle.shutdown_budget_s + 5)
            code, _ = await close_of(echo)
        assert code in (1001, 1012)
        await eventually(lambda: swarm.figures.connected == 0, within=10)
        assert not ws_tasks()
    finally:
        stalled.close()
        await swarm.close()
        await handle.stop()


# -- the pane (Pilot) ------------------------------------------------------------------------------


async def open_ws(app: ExplorerApp, pilot: Pilot[Any]) -> WsPane:
    await eventually(lambda: app.context is not None and bool(app.query(WsPane)))
    await pilot.press(str([p.SLUG for p in PANES].index("ws") + 1))
    return app.query_one(WsPane)


def log_text(app: ExplorerApp) -> str:
    return "\n".join(str(line) for line in app.query_one("#pane-ws #frames", Log).lines)


async def test_pane_echo_and_json(tmp_path: Path) -> None:
    app = ExplorerApp(Settings(port=0, data_dir=tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        await open_ws(app, pilot)
        app.query_one("#pane-ws #echo-text", Input).value = "hello pane"
        await pilot.click("#pane-ws #echo-send")
        await eventually(lambda: "echo ← hello pane" in log_text(app), within=10)
        await pilot.click("#pane-ws #tab-json")
        await pilot.pause(0.1)
        await pilot.click("#pane-ws #json-ping")
        await eventually(lambda: '"type":"pong"' in log_text(app).replace(" ", ""), within=10)
        await pilot.click("#pane-ws #json-bad")
        await eventually(lambda: "malformed JSON" in log_text(app), within=10)
        await pilot.click("#pane-ws #json-unknown")
        await eventually(lambda: "unknown type 'shout'" in log_text(app), within=10)


async def test_pane_auth_shows_each_refusal_reason(tmp_path: Path) -> None:
    app = ExplorerApp(Settings(port=0, data_dir=tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        await open_ws(app, pilot)
        await pilot.click("#pane-ws #tab-auth")
        await pilot.pause(0.1)
        expected = {
            "valid": '"type":"echo"',
            "missing": "closed 1008 token missing",
            "bad": "closed 1008 token refused: bad signature",
            "expired": "closed 1008 token expired",
        }
        for case, text in expected.items():
            await pilot.click(f"#pane-ws #auth-{case}")
            await eventually(lambda text=text: text in log_text(app), within=10)  # type: ignore[misc]


async def test_pane_chat_join_say_leave(tmp_path: Path) -> None:
    app = ExplorerApp(Settings(port=0, data_dir=tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_ws(app, pilot)
        await pilot.click("#pane-ws #tab-chat")
        await pilot.pause(0.1)
        await pilot.click("#pane-ws #chat-join")
        await eventually(lambda: pane.chat_joined, within=10)
        await eventually(lambda: '"type":"welcome"' in log_text(app), within=10)
        app.query_one("#pane-ws #chat-text", Input).value = "hello room"
        await pilot.click("#pane-ws #chat-send")
        await eventually(lambda: '"text":"hello room"' in log_text(app), within=10)
        await pilot.click("#pane-ws #chat-join")  # now "Leave"
        await eventually(lambda: not pane.chat_joined, within=10)


def bot_tasks() -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("ws-bot")]


async def test_pane_bots_right_then_naive_with_a_stalled_client(tmp_path: Path) -> None:
    app = ExplorerApp(Settings(port=0, data_dir=tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_ws(app, pilot)
        state: WsState = app.server.app.state.ws
        await pilot.click("#pane-ws #tab-bots")
        await pilot.pause(0.1)
        for field, value in (("n", "20"), ("rate", "200"), ("size", "4096")):
            app.query_one(f"#pane-ws #bots-{field}", Input).value = value
        await pilot.click("#pane-ws #bots-start")
        await eventually(lambda: pane.figures_view.connected == 20, within=30)
        await eventually(lambda: pane.figures_view.msgs_out_per_s > 0, within=30)
        # Right: the stalled client is dropped, the room keeps flowing.
        app.query_one("#pane-ws #bots-stalled", Checkbox).value = True
        await eventually(lambda: pane.stalled is not None, within=10)
        await eventually(lambda: pane.figures_view.drops >= 1, within=60)
        assert "stalled: send timeout" in pane.figures_view.last_drop or (
            "stalled: outbox full" in pane.figures_view.last_drop
        )
        assert pane.figures_view.connected == 20
        # Naive: a new stalled client stalls the room; the figures say so.
        await pilot.press("b")
        app.query_one("#pane-ws #bots-stalled", Checkbox).value = False
        await pilot.pause(0.1)
        app.query_one("#pane-ws #bots-stalled", Checkbox).value = True
        await eventually(lambda: pane.figures_view.naive_waiting_s > 3, within=90)
        assert pane.figures_view.mode == "naive"
        await eventually(lambda: pane.figures_view.msgs_out_per_s == 0, within=10)
        await pilot.click("#pane-ws #bots-stop")
        await eventually(lambda: pane.swarm is None and not bot_tasks(), within=15)
        # The bots are gone, but their handlers on the server are still stuck in the naive
        # broadcast, waiting on the stalled socket: they cannot even notice they left.
        await asyncio.sleep(0.5)
        assert state.manager.member_count > 1
        app.query_one("#pane-ws #bots-stalled", Checkbox).value = False
        await eventually(lambda: state.manager.member_count == 0, within=30)
        await pilot.press("b")


async def test_pane_closes_every_bot_when_the_app_quits(tmp_path: Path) -> None:
    app = ExplorerApp(Settings(port=0, data_dir=tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_ws(app, pilot)
        await pilot.click("#pane-ws #tab-bots")
        app.query_one("#pane-ws #bots-n", Input).value = "30"
        await pilot.click("#pane-ws #bots-start")
        await eventually(lambda: pane.figures_view.connected == 30, within=30)
        app.query_one("#pane-ws #bots-stalled", Checkbox).value = True
        await eventually(lambda: pane.stalled is not None, within=10)
        assert bot_tasks()
        await pilot.press("q")
    await eventually(lambda: not bot_tasks(), within=15)
    assert pane.stalled is None


async def test_pane_refuses_a_bad_bot_count(tmp_path: Path) -> None:
    app = ExplorerApp(Settings(port=0, data_dir=tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_ws(app, pilot)
        await pilot.click("#pane-ws #tab-bots")
        app.query_one("#pane-ws #bots-n", Input).value = "1001"
        await pilot.click("#pane-ws #bots-start")
        await pilot.pause(0.3)
        assert pane.swarm is None
        assert any("Invalid input" in (n.title or "") for n in app._notifications)


async def test_pane_code_view_shows_the_broadcast_that_runs(tmp_path: Path) -> None:
    app = ExplorerApp(Settings(port=0, data_dir=tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_ws(app, pilot)
        pane.view = "bots"
        titles = [b.title for b in pane.code_blocks()]
        assert "server: the broadcast, right" in titles
        assert "enqueue_all" in pane.code_blocks()[1].text
        await pilot.press("b")
        naive = pane.code_blocks()[1]
        assert "await connection.websocket.send_text(text)" in naive.text
        assert BOTS_ROOM == "bots"


# -- snapshot (every live number frozen) ------------------------------------------------


FROZEN_BOTS = BotFiguresView(
    target=100,
    connected=100,
    msgs_in_per_s=0.0,
    msgs_out_per_s=0.0,
    p50_ms=2210.4,
    p99_ms=6120.9,
    drops=1,
    closed_by_server=0,
    stalled=True,
    mode="naive",
    queued_kib=0.0,
    naive_waiting_s=6.2,
    last_drop="stalled: send timeout: one send waited over 2 s",
)


def test_ws_pane_bots_stalled_by_the_naive_broadcast(
    snap_compare: Any, utc_clock: None, tmp_path: Path
) -> None:
    app = ExplorerApp(Settings(port=0, data_dir=tmp_path), monitor_source=FrozenMonitor())

    async def run_before(pilot: Pilot[Any]) -> None:
        assert isinstance(pilot.app, ExplorerApp)
        while not pilot.app.query(WsPane):
            await pilot.pause(0.02)
        await pilot.press(key_of(WsPane))
        pilot.app.query_one(TopBar).url = "http://127.0.0.1:8000"
        pane = pilot.app.query_one(WsPane)
        await pilot.click("#pane-ws #tab-bots")
        pilot.app.blocking_switch.set(True)
        pane.figures_timer.pause()
        pane.figures_view = FROZEN_BOTS
        pane.query_one(BotFigures).show(FROZEN_BOTS)
        for line in (
            "bots: connecting 100 to /ws/chat/bots",
            "bots: 100 connected, chatting at 50 msg/s of 4096 chars",
            "stalled client: joined, and will never read",
        ):
            pane.say(line)
        await pilot.pause(0.2)
        pilot.app.clear_notifications()
        await pilot.pause(0.1)

    assert snap_compare(app, terminal_size=(120, 40), run_before=run_before)
