"""WebSockets over real loopback connections: echo, JSON, token auth, chat rooms, the
stalled-client lesson (right and naive), churn, bad input, and the pane (Pilot)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import re
import socket
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from textual.pilot import Pilot
from textual.widgets import Checkbox, Input, Static
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin, Subprotocol

from explorer.app import ExplorerApp
from explorer.patterns.ws.bots import BotSwarm, StalledClient, ws_url
from explorer.patterns.ws.delivery import Undelivered
from explorer.patterns.ws.figures import BotFigures, BotFiguresView
from explorer.patterns.ws.frames import FramesLog
from explorer.patterns.ws.pane import WsPane
from explorer.patterns.ws.room import BOTS_ROOM
from explorer.patterns.ws.views import DEFAULT_BOTS, DEFAULT_RATE, DEFAULT_SIZE, VIEWS
from server import state as app_state
from server.patterns.ws.manager import WsLimits
from server.patterns.ws.router import WsState
from server.patterns.ws.tokens import SUBPROTOCOL, TokenError, TokenSigner, redact
from server.runner import ServerHandle
from server.settings import Settings
from tests import pilots
from tests.conftest import FrozenSnapshot, eventually
from tests.layout import problems_of

MESSAGES = 2000
MESSAGE_SIZE = 4096
HEALTHY = 100


def state_of(server: ServerHandle) -> WsState:
    state: WsState = app_state.state_of(server.app).need(WsState)
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
    app_state.state_of(handle.app).provide(WsLimits, request.param)
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
    noisy = [
        logging.getLogger(n) for n in ("uvicorn", "uvicorn.error", "uvicorn.access", "websockets")
    ]
    levels = [(logger.level, logger.propagate) for logger in noisy]
    root.addHandler(recorder)
    root.setLevel(logging.DEBUG)
    for logger in noisy:
        logger.setLevel(logging.DEBUG)
        # uvicorn stops its access logger propagating whenever a server runs without the
        # access log (every other test's), and its own log config stops "uvicorn"
        # propagating; neither is undone.
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
    app_state.state_of(server.app).blocking.set(True)
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


# -- the oldest undelivered message (in process) -----------------------------------------


def test_undelivered_tracks_the_oldest_message_each_bot_still_waits_for() -> None:
    waits = Undelivered()
    waits.join("a")
    waits.join("b")
    first, i0 = waits.stamp()
    second, i1 = waits.stamp()
    third, i2 = waits.stamp()
    assert first < second < third
    assert (i0, i1, i2) == (0, 1, 2)
    # b gets them out of send order (other bots' sockets race); a gets only the last two
    waits.received("b", third)
    waits.received("b", first)
    waits.received("a", second)
    waits.received("a", third)
    assert waits.oldest_age_s(["b"], now=first + 1.0) == pytest.approx(1.0 - (second - first))
    assert waits.oldest_age_s(["a", "b"], now=first + 10.0) == pytest.approx(10.0)
    waits.received("b", second)
    assert waits.oldest_age_s(["b"], now=first + 10.0) == 0.0
    # a message whose send failed is waited for by nobody
    waits.failed(i0)
    assert waits.oldest_age_s(["a", "b"], now=first + 10.0) == 0.0
    # a bot that joins later waits only for what is sent after it joined
    waits.join("c")
    assert waits.oldest_age_s(["c"]) == 0.0
    late, _ = waits.stamp()
    waits.received("a", late)
    waits.received("b", late)
    assert waits.oldest_age_s(["a", "b", "c"], now=late + 2.0) == pytest.approx(2.0)
    waits.leave("c")
    assert waits.oldest_age_s(["a", "b"], now=late + 2.0) == 0.0
    waits.received("a", 12345.678)  # not one of ours: ignored
    assert waits.oldest_age_s(["a"], now=late + 2.0) == 0.0


def test_undelivered_is_bounded() -> None:
    waits = Undelivered(max_pending=100)
    waits.join("never-reads")
    stamps = [waits.stamp()[0] for _ in range(1000)]
    assert waits.sent == 1000
    # only the newest 100 are remembered: the age is of the oldest of those
    age = waits.oldest_age_s(["never-reads"], now=stamps[-1] + 5.0)
    assert age == pytest.approx(5.0 + stamps[-1] - stamps[900])
    assert len(waits._stamps) <= 100


#: the naive room at defaults, 12 s after the stalled client joined: nothing delivered,
#: the oldest message waiting 7 s, delivered p50/p99 still those of what got through
FROZEN_BOTS = BotFiguresView(
    target=20,
    connected=20,
    msgs_in_per_s=0.0,
    msgs_out_per_s=0.0,
    p50_ms=7.5,
    p99_ms=12.1,
    oldest_undelivered_s=7.04,
    undelivered_growing=True,
    drops=1,
    closed_by_server=0,
    stalled=True,
    stalled_for_s=12.0,
    mode="naive",
    queued_kib=0.0,
    naive_waiting_s=6.9,
    last_drop="stalled: send timeout: one send waited over 2 s",
)
#: the right form at defaults after the drop: the same room, but it never stopped
FROZEN_BOTS_RIGHT = replace(
    FROZEN_BOTS,
    msgs_in_per_s=40.0,
    msgs_out_per_s=800.0,
    oldest_undelivered_s=0.0213,
    undelivered_growing=False,
    stalled=False,
    stalled_dropped=True,
    stalled_for_s=0.0,
    mode="right",
    naive_waiting_s=0.0,
)


@pytest.mark.parametrize(
    "view",
    [
        BotFiguresView(),
        # the naive room's stalled view, every figure at its widest
        replace(
            FROZEN_BOTS,
            target=1000,
            connected=1000,
            connecting=True,
            msgs_in_per_s=5000,
            msgs_out_per_s=5_000_000,
            p50_ms=123_456.7,
            p99_ms=9_999_999.0,
            oldest_undelivered_s=12_345.6,
            drops=9999,
            closed_by_server=1000,
            stalled_for_s=999,
            queued_kib=999_999,
            naive_waiting_s=9999.9,
            last_drop="stalled: outbox full: 512 messages, 2097152 bytes waiting (a slow reader)",
        ),
    ],
    ids=["empty", "widest"],
)
def test_bot_figures_fit_the_pane_at_100x30(view: BotFiguresView) -> None:
    lines = BotFigures.render_view(view).plain.split("\n")
    assert len(lines) == 5
    # every line but the last drop (which ends in an ellipsis) fits 69 cells
    assert max(len(line) for line in lines[:-1]) <= 69, lines


# -- the pane (Pilot) ------------------------------------------------------------------------------


async def open_ws(app: ExplorerApp, pilot: Pilot[Any]) -> WsPane:
    return await pilots.open_live(app, pilot, WsPane)


#: what the frame log says when the auth tab's button for each refused token is pressed
AUTH_REFUSALS = {
    "missing": "closed 1008 token missing",
    "bad": "closed 1008 token refused: bad signature",
    "expired": "closed 1008 token expired",
}


def log_text(app: ExplorerApp) -> str:
    return "\n".join(app.query_one("#pane-ws #frames", FramesLog).texts)


async def test_pane_echo_and_json(tmp_path: Path) -> None:
    async with pilots.live_pane(tmp_path, (120, 40), open_ws) as (app, pilot, _):
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
    async with pilots.live_pane(tmp_path, (120, 40), open_ws) as (app, pilot, _):
        await pilot.click("#pane-ws #tab-auth")
        await pilot.pause(0.1)
        expected = {"valid": '"type":"echo"', **AUTH_REFUSALS}
        for case, text in expected.items():
            await pilot.click(f"#pane-ws #auth-{case}")
            await eventually(lambda text=text: text in log_text(app), within=10)  # type: ignore[misc]


async def test_pane_chat_join_say_leave(tmp_path: Path) -> None:
    async with pilots.live_pane(tmp_path, (120, 40), open_ws) as (app, pilot, pane):
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


#: the pane's defaults with fewer bots, so the readers keep up on a busy 2-core machine:
#: 40 msg/s of 16 KiB fill the stalled client's socket in a few seconds, and its 2 MiB
#: outbox would take over 3 s more, so the 2 s send timeout drops it first
LESSON_BOTS, LESSON_RATE, LESSON_SIZE = 5, DEFAULT_RATE, DEFAULT_SIZE


def young(age: float | None) -> bool:
    """An age the figures show, under the bound a busy machine still meets (None: none)."""
    return age is not None and age < 1.5


def shown_oldest_undelivered_s(pane: WsPane) -> float | None:
    """The oldest undelivered message's age as the figures block shows it, in seconds."""
    text = str(pane.query_one(BotFigures).content)
    found = re.search(r"undelivered\s+oldest\s+([\d,.]+) (ms|s)", text)
    if found is None:
        return None
    value = float(found.group(1).replace(",", ""))
    return value / 1000 if found.group(2) == "ms" else value


async def start_pane_bots(
    app: ExplorerApp, pilot: Pilot[Any], n: int, rate: int, size: int
) -> None:
    await pilot.click("#pane-ws #tab-bots")
    await pilot.pause(0.1)
    for field, value in (("n", n), ("rate", rate), ("size", size)):
        app.query_one(f"#pane-ws #bots-{field}", Input).value = str(value)
    await pilot.click("#pane-ws #bots-start")


async def test_pane_bots_stalled_client_right_vs_naive_oldest_undelivered(tmp_path: Path) -> None:
    """The lesson as the figures show it: right, the stalled client is dropped and nothing
    waits long; naive, every message waits on it and the oldest one's age keeps growing
    while delivered p50/p99 stand still."""
    async with pilots.live_pane(tmp_path, (100, 30), open_ws) as (app, pilot, pane):
        state: WsState = app_state.state_of(app.server.app).need(WsState)
        await start_pane_bots(app, pilot, LESSON_BOTS, LESSON_RATE, LESSON_SIZE)
        await eventually(lambda: pane.figures_view.connected == LESSON_BOTS, within=30)
        await eventually(lambda: pane.figures_view.msgs_out_per_s > 0, within=30)
        # Right: the stalled client is dropped by its send timeout, the room keeps flowing.
        app.query_one("#pane-ws #bots-stalled", Checkbox).value = True
        await eventually(lambda: pane.stalled is not None, within=10)
        await eventually(lambda: pane.figures_view.drops >= 1, within=90)
        assert "stalled: send timeout" in pane.figures_view.last_drop
        assert pane.figures_view.stalled_dropped
        assert pane.figures_view.connected == LESSON_BOTS
        ages = []
        for _ in range(12):  # 3 s of the 4 Hz figures after the drop
            await asyncio.sleep(0.25)
            ages.append(shown_oldest_undelivered_s(pane))
        assert None not in ages
        assert max(a for a in ages if a is not None) < 1.5, ages
        assert pane.figures_view.msgs_out_per_s > 0

        # Naive: a new stalled client stops the room, and the figures say so.
        await pilot.press("b")
        app.query_one("#pane-ws #bots-stalled", Checkbox).value = False
        await pilot.pause(0.1)
        app.query_one("#pane-ws #bots-stalled", Checkbox).value = True
        await eventually(lambda: (shown_oldest_undelivered_s(pane) or 0) > 3, within=90)
        stuck = pane.figures_view
        assert stuck.mode == "naive"
        assert stuck.stalled
        assert not stuck.stalled_dropped
        assert stuck.drops == 1  # nothing ever drops the stalled client
        await eventually(lambda: pane.figures_view.msgs_out_per_s == 0, within=10)
        first = shown_oldest_undelivered_s(pane)
        await asyncio.sleep(1.0)
        later = shown_oldest_undelivered_s(pane)
        assert first is not None
        assert later is not None
        assert later >= first + 0.5  # still growing, while the stalled client stays
        assert pane.figures_view.undelivered_growing
        assert pane.stalled is not None
        # Delivered p99 stands still at what got through: it cannot show the stall.
        assert pane.figures_view.p99_ms is not None
        assert pane.figures_view.p99_ms < 1000 * later
        await eventually(lambda: pane.figures_view.naive_waiting_s > 3, within=10)
        await pilot.click("#pane-ws #bots-stop")
        await eventually(lambda: pane.swarm is None and not bot_tasks(), within=15)
        # The bots are gone, but their handlers on the server are still stuck in the naive
        # broadcast, waiting on the stalled socket: they cannot even notice they left.
        await asyncio.sleep(0.5)
        assert state.manager.member_count > 1
        app.query_one("#pane-ws #bots-stalled", Checkbox).value = False
        await eventually(lambda: state.manager.member_count == 0, within=30)
        await pilot.press("b")


async def test_pane_naive_room_flows_again_once_the_stalled_client_goes(tmp_path: Path) -> None:
    """Ending the stalled client (the only thing that moves a naive room on) brings the
    oldest undelivered message back to a young age."""
    async with pilots.live_pane(tmp_path, (100, 30), open_ws) as (app, pilot, pane):
        await pilot.press("b")
        await start_pane_bots(app, pilot, LESSON_BOTS, LESSON_RATE, LESSON_SIZE)
        await eventually(lambda: pane.figures_view.connected == LESSON_BOTS, within=30)
        app.query_one("#pane-ws #bots-stalled", Checkbox).value = True
        await eventually(lambda: (shown_oldest_undelivered_s(pane) or 0) > 2, within=90)
        app.query_one("#pane-ws #bots-stalled", Checkbox).value = False
        try:
            await eventually(lambda: young(shown_oldest_undelivered_s(pane)), within=30)
        except AssertionError:
            raise AssertionError(f"{pane.figures_view} {pane.room.server_stats}") from None
        assert pane.figures_view.msgs_out_per_s > 0
        await pilot.click("#pane-ws #bots-stop")
        await eventually(lambda: pane.swarm is None and not bot_tasks(), within=15)
        await pilot.press("b")


async def test_pane_closes_every_bot_when_the_app_quits(tmp_path: Path) -> None:
    async with pilots.live_pane(tmp_path, (120, 40), open_ws) as (app, pilot, pane):
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
    async with pilots.live_pane(tmp_path, (120, 40), open_ws) as (app, pilot, pane):
        await pilot.click("#pane-ws #tab-bots")
        await pilots.enter_and_click(pilot, "#pane-ws #bots-n", "1001", "#pane-ws #bots-start")
        await pilot.pause(0.3)
        assert pane.swarm is None
        assert pilots.told_invalid_input(app)


async def test_pane_says_what_blocking_mode_does_on_each_tab(tmp_path: Path) -> None:
    async with pilots.live_pane(tmp_path, (100, 30), open_ws) as (_, pilot, pane):

        def lesson() -> str:
            return str(pane.query_one("#lesson", Static).content)

        await pilot.press("b")
        shown = {}
        for view in VIEWS:
            await pilot.click(f"#pane-ws #tab-{view}")
            await pilot.pause(0.05)
            shown[view] = lesson()
        assert "stalled client's socket is full" in shown["bots"]
        assert "No stall in the monitor" in shown["bots"]
        assert "one member that stops reading stops the whole room" in shown["chat"]
        assert shown["echo"].startswith("Each line you send")
        await pilot.press("b")
        assert "Blocking mode" not in lesson()
        assert "the server drops it (1008)" in lesson()


async def test_pane_code_view_shows_the_broadcast_that_runs(tmp_path: Path) -> None:
    async with pilots.live_pane(tmp_path, (120, 40), open_ws) as (_, pilot, pane):
        pane.view = "bots"
        titles = [b.title for b in pane.code_blocks()]
        assert "server: the broadcast, right" in titles
        assert "enqueue_all" in pane.code_blocks()[1].text
        await pilot.press("b")
        naive = pane.code_blocks()[1]
        assert "await connection.websocket.send_text(text)" in naive.text
        assert BOTS_ROOM == "bots"


# -- the pane at 100x30 and up: whole, keys, the frame log ----------------------------------


SIZES = [(100, 30), (140, 45), (200, 60)]


def results_of(pane: WsPane) -> tuple[str, ...]:
    return ("#frames", "#figures") if pane.view == "bots" else ("#frames",)


async def visit_every_tab(pilot: Pilot[Any], pane: WsPane) -> dict[str, list[str]]:
    """Each tab chosen in turn: what :func:`problems_of` finds on it."""
    found = {}
    for view in VIEWS:
        await pilot.click(f"#pane-ws #tab-{view}")
        await pilot.pause(0.1)
        assert pane.view == view
        found[view] = problems_of(pane, results=results_of(pane))
    return found


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_pane_is_whole_on_every_tab_before_and_after_a_run(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    async with pilots.live_pane(tmp_path, size, open_ws) as (app, pilot, pane):
        assert await visit_every_tab(pilot, pane) == {view: [] for view in VIEWS}
        # a run on every tab: an echo, a ping, a join, a token, three bots
        for view in VIEWS:
            await pilot.click(f"#pane-ws #tab-{view}")
            if view == "bots":
                app.query_one("#pane-ws #bots-n", Input).value = "3"
            await pilot.press("r")
        await eventually(lambda: pane.figures_view.connected == 3, within=30)
        await eventually(lambda: "auth ← " in log_text(app), within=10)
        assert problems_of(pane, results=results_of(pane)) == []
        assert await visit_every_tab(pilot, pane) == {view: [] for view in VIEWS}
        figures = pane.query_one(BotFigures)
        if size == (200, 60):  # the frame log takes the room; the controls stay compact
            assert pane.query_one(FramesLog).outer_size.height >= 25
            assert figures.outer_size.height == 5
        await pilot.click("#pane-ws #bots-stop")
        await eventually(lambda: pane.swarm is None and not bot_tasks(), within=15)


async def test_enter_in_each_field_runs_it_and_escape_leaves_it(tmp_path: Path) -> None:
    async with pilots.live_pane(tmp_path, (100, 30), open_ws) as (app, pilot, pane):

        async def enter_in(view: str, field: str, text: str | None = None) -> None:
            await pilot.click(f"#pane-ws #tab-{view}")
            await pilot.pause(0.05)
            widget = app.query_one(f"#pane-ws #{field}", Input)
            widget.focus()
            if text is not None:
                widget.value = ""
                await pilot.press(*text)
            await pilot.press("enter")

        await enter_in("echo", "echo-text", "hi")
        await eventually(lambda: "echo ← hi" in log_text(app), within=10)
        await enter_in("json", "json-text", "yo")
        await eventually(lambda: '"type":"ack","text":"yo"' in log_text(app), within=10)
        await enter_in("chat", "chat-name")
        await eventually(lambda: pane.chat_joined, within=10)
        await enter_in("chat", "chat-text", "hey")
        await eventually(lambda: '"text":"hey"' in log_text(app), within=10)
        await pilot.click("#pane-ws #chat-join")  # Leave
        await eventually(lambda: not pane.chat_joined, within=10)
        await enter_in("chat", "chat-room")
        await eventually(lambda: pane.chat_joined, within=10)
        swarms = []
        for field, value in (("bots-n", "2"), ("bots-rate", "5"), ("bots-size", "64")):
            await enter_in("bots", field, value)
            await eventually(lambda: pane.swarm is not None and pane.swarm not in swarms, within=10)
            assert pane.swarm is not None
            swarms.append(pane.swarm)
            await eventually(lambda: pane.figures_view.connected == 2, within=30)
        # Escape leaves the field; the app's keys work again, q quits.
        await pilots.escape_leaves_the_field(pilot, app.query_one("#pane-ws #bots-size", Input))
        await pilots.quit_with_q(pilot)
    assert app.return_code == 0
    await eventually(lambda: not bot_tasks(), within=15)


def visible_log_text(log: FramesLog) -> str:
    """The rows of the frame log as drawn now."""
    rows = log.scrollable_content_region.height
    return "\n".join("".join(s.text for s in log.render_line(y)) for y in range(rows))


async def test_frames_log_follows_the_tail_across_tabs_and_keeps_a_scrolled_place(
    tmp_path: Path,
) -> None:
    async with pilots.live_pane(tmp_path, (100, 30), open_ws) as (app, pilot, pane):
        log = app.query_one("#pane-ws #frames", FramesLog)
        await pilot.click("#pane-ws #tab-bots")  # the shortest log
        for i in range(8):  # one at a time past its height: the scrollbar comes mid-way
            pane.say(f"line {i}")
            await pilot.pause(0.1)
            assert f"line {i}" in visible_log_text(log), visible_log_text(log)
        await pilot.click("#pane-ws #tab-echo")  # the tallest log
        for i in range(8, 20):
            pane.say(f"line {i}")
        await pilot.pause(0.1)
        # Switch tabs the way a user does; each changes the log's height.
        for view in ("bots", "json", "chat", "auth"):
            await pilot.click(f"#pane-ws #tab-{view}")
            await pilot.pause(0.1)
        for case, text in AUTH_REFUSALS.items():
            await pilot.click(f"#pane-ws #auth-{case}")
            await eventually(lambda text=text: text in log_text(app), within=10)  # type: ignore[misc]
            await pilot.pause(0.1)
            assert text in visible_log_text(log), visible_log_text(log)
        # A reader who scrolls up keeps their place while lines keep coming ...
        log.scroll_home(animate=False)
        await pilot.pause(0.1)
        assert not log.following
        pane.say("while you read")
        await pilot.pause(0.1)
        assert log.scroll_offset.y == 0
        assert "while you read" not in visible_log_text(log)
        # ... and follows again once back at the bottom.
        log.scroll_end(animate=False)
        await pilot.pause(0.1)
        pane.say("newest")
        await pilot.click("#pane-ws #tab-bots")
        await pilot.pause(0.2)
        assert "newest" in visible_log_text(log)


# -- snapshot (every live number frozen) ------------------------------------------------


BOT_LINES = (
    f"bots: connecting {DEFAULT_BOTS} to /ws/chat/bots",
    f"bots: {DEFAULT_BOTS} connected, chatting at {DEFAULT_RATE} msg/s of {DEFAULT_SIZE} chars",
    "stalled client: joined, and will never read",
)
AUTH_LINES = (
    "auth (valid): connecting with 2 subprotocol(s)",
    'auth ← {"type":"welcome","name":"pane","expires_in_s":30.0}',
    'auth ← {"type":"echo","from":"pane","text":"hello from the pane"}',
    "auth (valid) × closed 1000",
    "auth (missing): connecting with 1 subprotocol(s)",
    "auth (missing) × closed 1008 token missing",
    "auth (bad): connecting with 2 subprotocol(s)",
    "auth (bad) × closed 1008 token refused: bad signature",
    "auth (expired): connecting with 2 subprotocol(s)",
    "auth (expired) × closed 1008 token expired 5.0 s ago",
)


def frozen_ws_pane(
    view: str, lines: tuple[str, ...], figures: BotFiguresView | None, blocking: bool
) -> Any:
    """A ``run_before`` that opens the pane on ``view`` with every live number frozen."""

    async def run_before(pilot: Pilot[Any]) -> None:
        app, pane = await pilots.open_frozen(pilot, WsPane)
        await pilot.click(f"#pane-ws #tab-{view}")
        app.blocking_switch.set(blocking)
        pane.figures_timer.pause()
        if figures is not None:
            pane.figures_view = figures
            pane.query_one(BotFigures).show(figures)
            box = pane.query_one("#bots-stalled", Checkbox)
            with box.prevent(Checkbox.Changed):  # ticked, without a real stalled client
                box.value = figures.stalled or figures.stalled_dropped
        for line in lines:
            pane.say(line)
        await pilot.pause(0.2)
        app.clear_notifications()
        await pilot.pause(0.1)

    return run_before


def test_ws_pane_bots_stalled_by_the_naive_broadcast(frozen_snapshot: FrozenSnapshot) -> None:
    assert frozen_snapshot((120, 40), frozen_ws_pane("bots", BOT_LINES, FROZEN_BOTS, blocking=True))


def test_ws_pane_bots_naive_at_100x30(frozen_snapshot: FrozenSnapshot) -> None:
    assert frozen_snapshot((100, 30), frozen_ws_pane("bots", BOT_LINES, FROZEN_BOTS, blocking=True))


def test_ws_pane_bots_right_after_the_drop_at_100x30(frozen_snapshot: FrozenSnapshot) -> None:
    lines = (*BOT_LINES, "stalled client: dropped by the server (send timeout)")
    run_before = frozen_ws_pane("bots", lines, FROZEN_BOTS_RIGHT, blocking=False)
    assert frozen_snapshot((100, 30), run_before)


def test_ws_pane_auth_refusals_at_140x45(frozen_snapshot: FrozenSnapshot) -> None:
    assert frozen_snapshot((140, 45), frozen_ws_pane("auth", AUTH_LINES, None, blocking=False))
