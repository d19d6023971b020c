"""ASGI middleware that lets the stall watchdog name the request that blocked the loop."""

from __future__ import annotations

import sys

from starlette.types import ASGIApp, Receive, Scope, Send

from .monitor import request_frames


class RequestAttribution:
    """Registers this coroutine's frame with the request scope while the request runs.

    A stalled handler's stack runs through this frame, so the watchdog thread finds the
    route by frame identity without touching the loop. Pure ASGI (no BaseHTTPMiddleware):
    it adds no task and no copy of the body.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        frame = sys._getframe()
        request_frames.enter(frame, scope)
        try:
            await self.app(scope, receive, send)
        finally:
            request_frames.leave(frame)
