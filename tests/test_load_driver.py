"""The load driver against a real uvicorn over loopback: counts, statuses, streams, errors."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping
from typing import Any

import httpx
import pytest
import uvicorn

from explorer.yourapp import load_driver
from explorer.yourapp.load_driver import LoadSpec, RouteFigures, drive
from tests.conftest import eventually

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

#: the streaming route sends this many chunks, this far apart
CHUNKS, CHUNK_GAP_S = 3, 0.03


class TinyApp:
    """A bare ASGI app: /ok, /fail (500), /stream (chunks apart), /slow (never answers soon),
    /echo (the query and body back). It counts requests that are in flight."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.seen_queries: list[str] = []
        self.seen_bodies: list[bytes] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        self.in_flight += 1
        try:
            await self.handle(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        status = 500 if path == "/fail" else 200
        await send({"type": "http.response.start", "status": status, "headers": []})
        if path == "/stream":
            for _ in range(CHUNKS):
                await send({"type": "http.response.body", "body": b"x", "more_body": True})
                await asyncio.sleep(CHUNK_GAP_S)
        if path == "/slow":
            # an ASGI app learns that its client left from receive(), not by being cancelled
            async with asyncio.timeout(30):
                while (await receive())["type"] != "http.disconnect":
                    pass
            return
        if path == "/echo":
            self.seen_queries.append(scope["query_string"].decode())
            self.seen_bodies.append(body)
        await send({"type": "http.response.body", "body": b"done"})


@pytest.fixture
async def tiny() -> AsyncIterator[tuple[TinyApp, httpx.AsyncClient]]:
    app = TinyApp()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # log_config=None: uvicorn's own config would stop its loggers propagating for the
    # rest of the session (test_ws reads every record)
    config = uvicorn.Config(app, lifespan="off", log_config=None, ws="none")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    await eventually(lambda: server.started)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5.0) as client:
        yield app, client
    server.should_exit = True
    await asyncio.wait_for(serving, 10)
    sock.close()


async def test_every_spec_runs_at_once_with_its_own_figures(
    tiny: tuple[TinyApp, httpx.AsyncClient],
) -> None:
    _, client = tiny
    specs = [
        LoadSpec("GET", "/ok", concurrency=3, duration_s=0.6),
        LoadSpec("GET", "/fail", concurrency=1, duration_s=0.6),
    ]
    started = time.perf_counter()
    figures = await drive(client, specs)
    elapsed = time.perf_counter() - started
    # at once, not one after the other
    assert elapsed < 0.6 * 2 + load_driver.DRAIN_S
    ok, fail = figures["GET /ok"], figures["GET /fail"]
    assert ok.requests > 0
    assert ok.statuses == {200: ok.requests}
    assert ok.errors == 0
    assert 0 < ok.p50_ms <= ok.p99_ms <= ok.max_ms
    assert ok.rps > 0
    assert fail.requests > 0
    assert fail.statuses == {500: fail.requests}
    assert fail.errors == fail.requests


async def test_a_stream_is_read_to_its_end(tiny: tuple[TinyApp, httpx.AsyncClient]) -> None:
    _, client = tiny
    figures = await drive(client, [LoadSpec("GET", "/stream", concurrency=2, duration_s=0.3)])
    stream = figures["GET /stream"]
    assert stream.requests > 0
    assert stream.statuses == {200: stream.requests}
    # the latency covers every gap between the chunks, not just the response head
    assert stream.p50_ms >= CHUNKS * CHUNK_GAP_S * 1000 * 0.9


async def test_query_and_json_body_are_sent(tiny: tuple[TinyApp, httpx.AsyncClient]) -> None:
    app, client = tiny
    spec = LoadSpec("POST", "/echo?a=1", query={"b": "2"}, json_body={"k": "v"}, duration_s=0.2)
    assert spec.route == "POST /echo?a=1"
    figures = await drive(client, [spec])
    assert figures["POST /echo?a=1"].statuses[200] > 0
    assert set(app.seen_queries) == {"a=1&b=2"}
    assert set(app.seen_bodies) == {b'{"k":"v"}'}


async def test_nothing_listening_is_errors_not_an_exception() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # bound then closed: nothing listens there
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=1.0) as client:
        figures = await drive(client, [LoadSpec("GET", "/ok", concurrency=2, duration_s=0.2)])
    dead = figures["GET /ok"]
    assert dead.requests > 0
    assert dead.errors == dead.requests
    assert dead.statuses == {}


async def test_a_request_stuck_past_the_duration_is_cut_off(
    tiny: tuple[TinyApp, httpx.AsyncClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, client = tiny
    monkeypatch.setattr(load_driver, "DRAIN_S", 0.3)
    started = time.perf_counter()
    figures = await drive(client, [LoadSpec("GET", "/slow", concurrency=2, duration_s=0.2)])
    # bounded by duration + drain (and far from the route's 30 s)
    assert time.perf_counter() - started < 5
    assert figures["GET /slow"].errors == 2 == figures["GET /slow"].requests


async def test_cancelling_stops_every_worker(tiny: tuple[TinyApp, httpx.AsyncClient]) -> None:
    app, client = tiny
    driving = asyncio.create_task(
        drive(client, [LoadSpec("GET", "/slow", concurrency=3, duration_s=60)])
    )
    await eventually(lambda: app.in_flight == 3)
    driving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(driving, 5)
    # the connections were closed: the server sees its requests go away
    await eventually(lambda: app.in_flight == 0)


async def test_progress_comes_while_driving_and_once_at_the_end(
    tiny: tuple[TinyApp, httpx.AsyncClient],
) -> None:
    _, client = tiny
    seen: list[Mapping[str, RouteFigures]] = []
    figures = await drive(
        client,
        [LoadSpec("GET", "/ok", duration_s=0.5)],
        on_progress=seen.append,
        progress_every_s=0.1,
    )
    assert len(seen) >= 3
    assert seen[-1] == figures
    counts = [progress["GET /ok"].requests for progress in seen]
    assert counts == sorted(counts)


async def test_the_same_route_twice_is_refused(tiny: tuple[TinyApp, httpx.AsyncClient]) -> None:
    _, client = tiny
    with pytest.raises(ValueError, match="once"):
        await drive(client, [LoadSpec("GET", "/ok"), LoadSpec("GET", "/ok")])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"concurrency": 0}, "concurrency"),
        ({"duration_s": 0}, "duration"),
        ({"path": "ok"}, "starts with"),
    ],
)
def test_a_spec_that_makes_no_sense_is_refused(kwargs: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {"method": "GET", "path": "/ok", **kwargs}
    with pytest.raises(ValueError, match=message):
        LoadSpec(**arguments)
