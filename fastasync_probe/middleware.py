"""Pure ASGI middleware (no Starlette needed): lets the watchdog name the request that stalled."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .monitor import request_tasks

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class RequestAttribution:
    """Registers the request's task with its scope while the request runs.

    When the loop stalls, the watchdog thread asks which task the loop is running and
    finds the route without touching the loop. Pure ASGI (no BaseHTTPMiddleware): it adds
    no task and no copy of the body.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        task = asyncio.current_task()
        if task is None:  # not in a task (a test calling the app directly): nothing to name
            await self.app(scope, receive, send)
            return
        request_tasks.enter(task, scope)
        try:
            await self.app(scope, receive, send)
        finally:
            request_tasks.leave(task)
