"""``install(app)``: the probe inside a user's ASGI app.

One pure ASGI middleware does three things: it starts the loop monitor on the app's loop
at the first call (the lifespan's start-up, normally) and stops it at the lifespan's end;
it registers each request's task so that a stall names its route and its victims; and it
answers the probe's own requests under :data:`PREFIX` (loopback clients only, unless they
bring the token), passing everything else to the app untouched.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import endpoints
from .asgi_io import ASGIApp, BadQuery, Message, Receive, Scope, Send, query_of, send_json
from .guard import REFUSAL, allowed
from .monitor import USER_CODE, LoopMonitor, MonitorConfig, ProjectCode, request_tasks

log = logging.getLogger("fastasync_probe")

#: where the probe answers, in every app it is installed in
PREFIX = "/_fastasync"
#: the probe's monitor: lag sampled every 20 ms and an idle loop looked at every 10 ms
#: while requests are in flight (the explorer's own server: 10 and 5); a stall is timed
#: exactly (selector) or within 5 ms (heartbeats), and sampled from its 10th millisecond
#: on. While the app rests (nothing in flight) both slow to every 200 ms: each look is a
#: wake-up, and in an app that does nothing wake-ups are all its cost. With a selector the
#: loop wakes the watchdog itself, so nothing is lost; with heartbeats (uvloop) a stall
#: that begins at rest, outside any request, is timed within 100 ms.
PROBE_CONFIG = MonitorConfig(sample_interval_s=0.020, idle_look_s=0.010, rest_look_s=0.2)


class ProbeMiddleware:
    """The probe around ``app``: see the module's docstring."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        token: str | None = None,
        code: Sequence[str | Path] = (),
        config: MonitorConfig | None = None,
    ) -> None:
        self.app = app
        self.token = token if token is not None else os.environ.get("FASTASYNC_PROBE_TOKEN")
        project = ProjectCode.of(*code) if code else USER_CODE
        base = config or PROBE_CONFIG
        self.config = dataclasses.replace(base, project_code=project)
        self._monitors: dict[asyncio.AbstractEventLoop, LoopMonitor] = {}
        #: the last loop asked about and its monitor: one identity test per request
        #: instead of a dictionary lookup (an app runs on one loop, tests on many)
        self._last: tuple[asyncio.AbstractEventLoop, LoopMonitor] | None = None

    def monitor(self) -> LoopMonitor:
        """The running loop's monitor, started on first use."""
        loop = asyncio.get_running_loop()
        last = self._last
        if last is not None and last[0] is loop:
            return last[1]
        monitor = self._monitors.get(loop)
        if monitor is None:
            # loops closed without a lifespan shutdown (their monitor undid itself)
            for closed in [known for known in self._monitors if known.is_closed()]:
                del self._monitors[closed]
            monitor = self._monitors[loop] = LoopMonitor.for_loop(loop, self.config)
            monitor.start()
        self._last = (loop, monitor)
        return monitor

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        monitor = self.monitor()
        kind = scope["type"]
        if kind == "lifespan":
            await self.app(scope, self._watch_shutdown(receive, monitor), send)
            return
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if scope.get("path", "").startswith(PREFIX) and _under_prefix(scope["path"]):
            await self._answer(scope, receive, send, monitor)
            return
        monitor.wake()
        # What RequestAttribution does, in this frame: a coroutine layer less for every
        # request, and each layer is resumed again at each of the request's awaits.
        task = asyncio.current_task()
        if task is None:  # not in a task (a test calling the app directly): nothing to name
            await self.app(scope, receive, send)
            return
        request_tasks.enter(task, scope)
        try:
            await self.app(scope, receive, send)
        finally:
            request_tasks.leave(task)

    def _watch_shutdown(self, receive: Receive, monitor: LoopMonitor) -> Receive:
        """``receive`` that stops the monitor once the server says it is shutting down."""

        async def watching() -> Message:
            message = await receive()
            if message.get("type") == "lifespan.shutdown":
                loop = asyncio.get_running_loop()
                self._last = None  # a new start-up on this loop starts a new monitor
                if self._monitors.pop(loop, None) is not None:
                    monitor.stop()
            return message

        return watching

    async def _answer(
        self, scope: Scope, receive: Receive, send: Send, monitor: LoopMonitor
    ) -> None:
        if scope["type"] == "websocket":  # nothing to see here: refuse the handshake
            await send({"type": "websocket.close", "code": 1008})
            return
        if not allowed(scope, self.token):
            await send_json(send, 403, {"detail": REFUSAL})
            return
        if scope.get("method") not in ("GET", "HEAD"):
            await send_json(send, 405, {"detail": "the probe answers GET only"})
            return
        path = scope["path"][len(PREFIX) :].rstrip("/")
        query = query_of(scope)
        try:
            if path == "/monitor/stream":
                await endpoints.stream(monitor, receive, send)
                return
            body: Any = None
            if path == "":
                body = endpoints.info(monitor)
            elif path == "/monitor":
                body = endpoints.monitor_report(monitor, query)
            elif path == "/tasks":
                body = endpoints.tasks_report(monitor, query)
            elif path == "/source":
                body = endpoints.source_lines(monitor, query)
                if body is None:
                    await send_json(send, 404, {"detail": "not a file of the app's own code"})
                    return
            else:
                await send_json(send, 404, {"detail": f"the probe has no {scope['path']}"})
                return
        except BadQuery as error:
            await send_json(send, 422, {"detail": str(error)})
            return
        await send_json(send, 200, body)


def _under_prefix(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def install(
    app: Any,
    *,
    token: str | None = None,
    code: Sequence[str | Path] = (),
    config: MonitorConfig | None = None,
) -> Any:
    """Put the probe in ``app``; serve what this returns.

    A Starlette or FastAPI app gets the probe as its outermost middleware and is returned
    itself; any other ASGI callable is returned wrapped. ``token`` lets clients other than
    loopback ones read the probe (default: ``$FASTASYNC_PROBE_TOKEN``); ``code`` names the
    folders of the app's own code (default: every file that is not a library's).
    """
    if not callable(app):
        raise TypeError(f"install() needs an ASGI app, not {type(app).__name__}")
    add_middleware = getattr(app, "add_middleware", None)
    if callable(add_middleware) and hasattr(app, "user_middleware"):
        add_middleware(ProbeMiddleware, token=token, code=tuple(code), config=config)
        return app
    return ProbeMiddleware(app, token=token, code=tuple(code), config=config)
