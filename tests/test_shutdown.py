"""Quit under load: the real explorer in a terminal, with every kind of connection open."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import sys
import termios
import time
from pathlib import Path

import httpx
from httpx_sse import aconnect_sse
from websockets.asyncio.client import ClientConnection, connect

from server.settings import Settings
from tests.ptyrun import PtyProcess
from tests.test_shell import free_port, port_answers

CLIENTS = 50
SUBSCRIBERS = 50
#: uvicorn's grace for open requests, then the job store's, then one second of slack: the
#: budget ServerHandle.stop() enforces (Settings' defaults)
GRACEFUL_S = Settings().graceful_timeout_s + Settings().job_grace_s
#: What the child must never print: tracebacks, leaked tasks, unclosed resources.
FORBIDDEN = (
    b"Traceback",
    b"Task was destroyed",
    b"was never awaited",
    b"Exception ignored",
    b"ResourceWarning",
    b"unclosed",
)


async def wait_for_server(url: str, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(base_url=url, timeout=2.0) as http:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get("/db/status")).json()["state"] == "ready":
                    return
            await asyncio.sleep(0.1)
    raise AssertionError(f"{url} not ready within {within} s")


async def follow(http: httpx.AsyncClient, opened: list[int], all_open: asyncio.Event) -> str:
    async with aconnect_sse(http, "GET", "/sse/feed?topics=tick,job") as source:
        opened.append(1)
        if len(opened) == SUBSCRIBERS:
            all_open.set()
        async for _ in source.aiter_sse():
            pass
    return "ended"


async def download(http: httpx.AsyncClient, name: str, started: asyncio.Event) -> int:
    read = 0
    async with http.stream("GET", f"/stream/files/{name}") as response:
        async for chunk in response.aiter_bytes():
            read += len(chunk)
            started.set()
            await asyncio.sleep(0.05)  # a slow reader: the download is still in flight at q
    return read


async def test_quit_under_load_is_clean_and_bounded(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    data_dir = tmp_path / "data"
    tui = PtyProcess(
        [
            sys.executable,
            "-W",
            "error::ResourceWarning",
            "-m",
            "explorer.cli",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
        ]
    )
    sockets: list[ClientConnection] = []
    tasks: list[asyncio.Task[object]] = []
    try:
        await wait_for_server(url)
        limits = httpx.Limits(max_connections=SUBSCRIBERS + 20)
        async with httpx.AsyncClient(base_url=url, timeout=30.0, limits=limits) as http:
            # a download in flight
            made = await http.post("/stream/files", json={"size_bytes": 64 * 1024 * 1024})
            assert made.status_code == 201, made.text
            started = asyncio.Event()
            tasks.append(asyncio.create_task(download(http, made.json()["name"], started)))
            # jobs running and queued: long sleeps that cannot finish before quitting
            for _ in range(6):
                spec = {"kind": "sleep", "duration_s": 20}
                queued = await http.post("/tasks/queue", json=spec)
                assert queued.status_code == 202, queued.text
            # 50 chat members and 50 SSE subscribers
            for i in range(CLIENTS):
                ws_url = f"ws://127.0.0.1:{port}/ws/chat/quit?name=m{i}"
                sockets.append(await connect(ws_url))
            opened: list[int] = []
            all_open = asyncio.Event()
            for _ in range(SUBSCRIBERS):
                tasks.append(asyncio.create_task(follow(http, opened, all_open)))
            async with asyncio.timeout(20):
                await started.wait()
                await all_open.wait()
            stats = (await http.get("/ws/stats")).json()
            assert stats["members"] >= CLIENTS, stats

            pressed = time.monotonic()
            tui.send(b"q")
            code = await asyncio.to_thread(tui.wait, 15)
            took = time.monotonic() - pressed
            # every client saw its connection end (none hangs on a dead server)
            async with asyncio.timeout(10):
                await asyncio.gather(*tasks, return_exceptions=True)
                for ws in sockets:
                    await ws.wait_closed()

        print(f"quit under load took {took:.2f} s")  # shown with pytest -s
        output = tui.output
        assert code == 0, output[-3000:].decode(errors="replace")
        assert took < GRACEFUL_S + 1.0 + 1.0, took  # + 1 s of process exit (interpreter, pool)
        for needle in FORBIDDEN:
            assert needle not in output, (needle, output[-3000:].decode(errors="replace"))
        tail = output[output.rfind(b"\x1b[?1049h") :]
        assert b"\x1b[?1049l" in tail
        assert termios.tcgetattr(tui.slave) == tui.termios_before
        assert not port_answers(port)
        # nothing left pending or running in the job history
        with contextlib.closing(sqlite3.connect(data_dir / "jobs.sqlite3")) as db:
            states = dict(db.execute("SELECT state, count(*) FROM jobs GROUP BY state"))
        assert set(states) <= {"done", "failed", "cancelled", "lost"}, states
        assert states.get("cancelled", 0) >= 1, states
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for ws in sockets:
            with contextlib.suppress(Exception):
                await ws.close()
        tui.close()
