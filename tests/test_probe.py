"""The probe inside a user's app: culprit line, route and victims, on asyncio and uvloop.

The app is a real FastAPI app file run by real uvicorn in a child process, as a user's
would be; requests are real HTTP over loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from fastasync_probe import PREFIX, PROTOCOL, ProbeMiddleware, install
from fastasync_probe.monitor import LoopMonitor, MonitorConfig, Stall

APP = """
import asyncio, time
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from fastasync_probe import install

app = FastAPI()


def look_up_stock():
    time.sleep(0.08)  # culprit: block


def find_product():
    look_up_stock()


@app.get("/block")
async def block():
    find_product()
    return {"ok": True}


@app.get("/wait")
async def wait(delay: float = 0.4):
    await asyncio.sleep(delay)
    return {"ok": True}


@app.get("/export")
async def export():
    async def rows():
        for n in range(6):
            if n == 3:
                time.sleep(0.06)  # culprit: mid-stream
            yield f"{n}\\n"
            await asyncio.sleep(0.005)
    return StreamingResponse(rows())


app = install(app)
"""


def line_of(marker: str) -> int:
    """The line of ``APP`` that carries ``# culprit: <marker>`` (1-based, as a file)."""
    lines = textwrap.dedent(APP).splitlines()
    return next(n for n, text in enumerate(lines, 1) if text.endswith(f"# culprit: {marker}"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def served(folder: Path, loop: str) -> Iterator[str]:
    """The sample app under ``python -m uvicorn`` with ``loop``; its base URL."""
    (folder / "shopapp.py").write_text(textwrap.dedent(APP))
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "shopapp:app", "--app-dir", str(folder)]
    command += ["--port", str(port), "--loop", loop, "--log-level", "warning"]
    log = folder / "uvicorn.log"
    with log.open("wb") as output:
        proc = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, log.read_text()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + PREFIX, timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, "the sample app did not start"
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def stalls_after(client: httpx.Client, seq: int) -> list[Stall]:
    body = client.get(PREFIX + "/monitor", params={"after": seq}).json()
    return [Stall.from_dict(s) for s in body["stalls"]]


def newest_seq(client: httpx.Client) -> int:
    stalls = client.get(PREFIX + "/monitor").json()["stalls"]
    return max((int(s["seq"]) for s in stalls), default=0)


def wait_for_stall(client: httpx.Client, after: int, route: str) -> Stall:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        found = [s for s in stalls_after(client, after) if s.route == route]
        if found:
            return found[-1]
        time.sleep(0.05)
    raise AssertionError(f"no stall on {route}: {stalls_after(client, after)}")


@pytest.fixture(scope="module", params=["asyncio", "uvloop"])
def sample_app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    with served(tmp_path_factory.mktemp(request.param), request.param) as url:
        yield request.param, url


def test_the_probe_says_who_it_is_and_how_it_measures(sample_app: Any) -> None:
    loop, url = sample_app
    info = httpx.get(url + PREFIX).json()
    assert info["probe"] == "fastasync_probe"
    assert info["protocol"] == PROTOCOL
    if loop == "uvloop":
        assert info["loop"] == "uvloop.Loop"
        assert info["method"] == "heartbeat"
        assert 0 < info["precision_ms"] <= 5
    else:
        assert info["method"] == "selector"
        assert info["precision_ms"] == 0


def test_a_stall_names_the_users_line_its_route_and_exactly_the_requests_it_held(
    sample_app: Any,
) -> None:
    _, url = sample_app
    with httpx.Client(base_url=url, timeout=10) as client:
        after = newest_seq(client)

        async def at_once() -> None:
            async with httpx.AsyncClient(base_url=url, timeout=10) as aclient:
                waiting = [asyncio.create_task(aclient.get("/wait")) for _ in range(3)]
                await asyncio.sleep(0.15)  # all three are inside the app, sleeping
                assert (await aclient.get("/block")).status_code == 200
                for response in await asyncio.gather(*waiting):
                    assert response.status_code == 200

        asyncio.run(at_once())
        stall = wait_for_stall(client, after, "GET /block")
    assert stall.location is not None
    assert stall.location.startswith(f"shopapp.py:{line_of('block')} in look_up_stock")
    own = [f for f in stall.frames if f.own]
    assert [f.function for f in own[:3]] == ["look_up_stock", "find_product", "block"]
    assert any(not f.own for f in stall.frames), "the library frames are kept too"
    # the three /wait requests were in flight for the whole stall: they waited all of it
    assert sorted(v.route for v in stall.victims) == ["GET /wait"] * 3
    assert all(v.waited_ms == pytest.approx(stall.duration_ms, abs=0.01) for v in stall.victims)
    assert stall.request_id not in {v.request_id for v in stall.victims}
    assert 70 <= stall.duration_ms <= 80 + 30


def test_a_stall_in_the_middle_of_a_stream_names_the_generator_line_and_route(
    sample_app: Any,
) -> None:
    _, url = sample_app
    with httpx.Client(base_url=url, timeout=10) as client:
        after = newest_seq(client)
        body = client.get("/export").text
        assert body.split() == [str(n) for n in range(6)]
        stall = wait_for_stall(client, after, "GET /export")
    assert stall.location is not None
    assert stall.location.startswith(f"shopapp.py:{line_of('mid-stream')} in rows")
    assert stall.victims == (), "the stream's own request is the culprit, not a victim"


def test_source_lines_come_only_from_the_apps_own_files(sample_app: Any) -> None:
    _, url = sample_app
    with (
        httpx.Client(base_url=url + PREFIX, timeout=10) as client,
        httpx.Client(base_url=url, timeout=10) as root,
    ):
        after = newest_seq(root)
        root.get("/block")
        stall = wait_for_stall(root, after, "GET /block")
        assert stall.filename is not None
        assert stall.lineno is not None
        shown = client.get("/source", params={"file": stall.filename, "line": stall.lineno})
        assert shown.status_code == 200
        body = shown.json()
        assert "time.sleep(0.08)" in body["lines"][stall.lineno - body["first_line"]]
        for elsewhere in ("/etc/passwd", httpx.__file__, asyncio.__file__):
            assert client.get("/source", params={"file": elsewhere}).status_code == 404
        assert client.get("/source", params={"file": "shopapp.py"}).status_code == 422


def test_the_task_list_and_the_stream_answer(sample_app: Any) -> None:
    _, url = sample_app
    tasks = httpx.get(url + PREFIX + "/tasks", params={"limit": 5}).json()
    assert tasks["tasks"]
    assert all("where_short" in t for t in tasks["tasks"])
    events: list[str] = []
    with httpx.stream("GET", url + PREFIX + "/monitor/stream", timeout=10) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("event: "):
                events.append(line[7:])
            if "lag" in events:
                break
    assert events[:2] == ["hello", "lag"]


# -- in-process: who may read the probe ------------------------------------------------


def probed_app(token: str | None = None) -> Any:
    app = FastAPI()

    @app.get("/hello")
    async def hello() -> dict[str, str]:
        return {"hello": "world"}

    return install(app, token=token)


async def ask(app: Any, path: str, client: tuple[str, int], **kwargs: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, client=client)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
        return await http.get(path, **kwargs)


@pytest.mark.parametrize(
    "path", [PREFIX, PREFIX + "/monitor", PREFIX + "/tasks", PREFIX + "/source?file=/x.py"]
)
async def test_a_client_from_elsewhere_without_the_token_gets_403_and_no_data(path: str) -> None:
    for app in (probed_app(), probed_app(token="s3cret")):
        response = await ask(app, path, ("203.0.113.7", 5000))
        assert response.status_code == 403
        assert set(response.json()) == {"detail"}
        wrong = await ask(app, path, ("203.0.113.7", 5000), headers={"authorization": "Bearer no"})
        assert wrong.status_code == 403
    # the app itself still answers everyone
    assert (await ask(probed_app(), "/hello", ("203.0.113.7", 5000))).json() == {"hello": "world"}


async def test_the_token_opens_the_probe_to_other_clients() -> None:
    app = probed_app(token="s3cret")
    bearer = await ask(
        app, PREFIX, ("203.0.113.7", 5000), headers={"authorization": "Bearer s3cret"}
    )
    assert bearer.status_code == 200
    assert (await ask(app, PREFIX + "?token=s3cret", ("203.0.113.7", 5000))).status_code == 200
    for loopback in ("127.0.0.1", "::1", "::ffff:127.0.0.1"):
        assert (await ask(probed_app(), PREFIX, (loopback, 5000))).status_code == 200


async def test_bad_requests_to_the_probe_get_a_sentence_not_a_500() -> None:
    app = probed_app()
    local = ("127.0.0.1", 5000)
    for path, status in [
        (PREFIX + "/monitor?window=abc", 422),
        (PREFIX + "/monitor?after=-1", 422),
        (PREFIX + "/tasks?limit=0", 422),
        (PREFIX + "/nothing", 404),
    ]:
        response = await ask(app, path, local)
        assert response.status_code == status, (path, response.text)
        assert response.json()["detail"]
    transport = httpx.ASGITransport(app=app, client=local)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
        assert (await http.post(PREFIX + "/monitor")).status_code == 405


def test_install_keeps_a_starlette_app_and_wraps_any_other() -> None:
    app = FastAPI()
    assert install(app) is app
    assert any(m.cls is ProbeMiddleware for m in app.user_middleware)

    async def bare(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("not called")

    assert isinstance(install(bare), ProbeMiddleware)
    with pytest.raises(TypeError, match="needs an ASGI app"):
        install(42)


def test_heartbeats_time_a_stall_within_their_precision_on_uvloop() -> None:
    uvloop = pytest.importorskip("uvloop")

    async def measure() -> tuple[float, list[float], list[Stall]]:
        monitor = LoopMonitor.for_loop(config=MonitorConfig())
        monitor.start()
        slept: list[float] = []
        try:
            await asyncio.sleep(0.1)
            for _ in range(3):
                began = time.perf_counter()
                time.sleep(0.08)  # noqa: ASYNC251  (the stall to time)
                # as long as the loop really was held: the sleep, and getting the GIL back
                slept.append((time.perf_counter() - began) * 1000.0)
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.1)
            return monitor.precision_ms, slept, list(monitor.stalls)
        finally:
            monitor.stop()

    precision_ms, slept, stalls = uvloop.run(measure())
    blocking = [s for s in stalls if s.location and "test_probe.py" in s.location]
    assert len(blocking) == 3
    for stall, held_ms in zip(blocking, slept, strict=True):
        # within the method's precision of how long the loop was held, and a little more
        # for the loop's own work around the sleep on a loaded machine
        assert held_ms - precision_ms - 1 <= stall.duration_ms <= held_ms + precision_ms + 5


def test_an_app_driven_without_its_lifespan_leaves_nothing_behind_its_loop() -> None:
    """httpx's ASGITransport sends no lifespan: the monitor undoes itself when the loop
    closes (the lock property, the task factory and the watchdog thread)."""
    app = probed_app()

    def watchdogs() -> int:
        return sum(t.name == "fastasync-loop-watchdog" for t in threading.enumerate())

    before = watchdogs()

    async def one_request() -> asyncio.AbstractEventLoop:
        assert (await ask(app, "/hello", ("127.0.0.1", 5000))).status_code == 200
        assert "_locked" in asyncio.Lock.__dict__  # the probe records lock owners
        return asyncio.get_running_loop()

    for _ in range(2):  # a second loop starts (and ends) a monitor of its own
        loop = asyncio.run(one_request())

        def undone() -> bool:
            return "_locked" not in asyncio.Lock.__dict__ and watchdogs() == before

        deadline = time.monotonic() + 5
        while not undone() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert undone()
        assert loop.get_task_factory() is None
