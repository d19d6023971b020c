"""Noticing that an HTTP client hung up, for handlers that wait on something long."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from starlette.requests import Request

T = TypeVar("T")


async def until_disconnected(request: Request) -> None:
    """Return when the client goes away (call it once the request body has been read).

    Starlette reads the ASGI ``receive`` channel; after the body, the only message left
    is ``http.disconnect``, so this waits without polling.
    """
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def wait_unless_disconnected(request: Request, seconds: float, *, name: str) -> bool:
    """Wait ``seconds``, or less if the client hangs up first; True if it hung up.

    ``name`` names the task that listens for the hang-up (tests look for it by name).

    For a handler that stands in for a slow remote service: a remote one would wait on,
    but this one lives in our process, and a caller that gave up (a timeout, a cancelled
    race loser) must not leave a handler behind that shutdown would wait for.
    """
    watcher = asyncio.create_task(until_disconnected(request), name=name)
    try:
        done, _ = await asyncio.wait([watcher], timeout=seconds)
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
    return bool(done)


async def run_unless_disconnected(
    request: Request, work: Coroutine[Any, Any, T], *, name: str
) -> asyncio.Task[T]:
    """Run ``work`` as a task (named ``name``) until it ends or the client hangs up.

    Returns the task, done either way: ``cancelled()`` when the client left first. Even
    when the caller itself is cancelled, neither the work nor the watcher outlives this.
    """
    task = asyncio.create_task(work, name=name)
    gone = asyncio.create_task(until_disconnected(request), name=f"{name}-watch")
    try:
        await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        task.cancel()  # a no-op when the work has finished
        await asyncio.gather(task, gone, return_exceptions=True)
    return task
