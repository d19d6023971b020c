"""Shared fixtures: a real server on a free loopback port, and a client for it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from server.monitor import LoopMonitor
from server.runner import ServerHandle
from server.settings import Settings


@pytest.fixture
async def server() -> AsyncIterator[ServerHandle]:
    """The app under uvicorn on this test's loop, on port 0."""
    handle = ServerHandle(Settings(port=0))
    await handle.start()
    try:
        yield handle
    finally:
        await handle.stop()


@pytest.fixture
async def client(server: ServerHandle) -> AsyncIterator[httpx.AsyncClient]:
    """Real HTTP over loopback to :func:`server`."""
    async with httpx.AsyncClient(base_url=server.url, timeout=30.0) as http:
        yield http


@pytest.fixture
def monitor(server: ServerHandle) -> LoopMonitor:
    """The loop monitor the server's lifespan started."""
    loop_monitor: LoopMonitor = server.app.state.monitor
    return loop_monitor


async def eventually(
    condition: Callable[[], bool], within: float = 5.0, interval: float = 0.02
) -> None:
    """Wait until ``condition()`` holds; fail with a clear message after ``within`` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(interval)
