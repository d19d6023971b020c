"""One child app's whole life, for real: built, started under uvicorn on a free loopback
port of this same loop, one request served, stopped; then what it left open.

uvicorn drives the app's lifespan exactly as it drives the explorer's own server: when
startup fails it logs "Application startup failed. Exiting." and runs no shutdown at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import socket
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import httpx
import uvicorn
from fastapi import FastAPI

from server.patterns.lifespan.child_apps import (
    ChildContext,
    forget_globals,
    lifespan_app,
    on_event_app,
)
from server.patterns.lifespan.resources import EventLog, Opened
from server.runner import EmbeddedUvicorn, bind_socket

AppForm = Literal["lifespan", "naive", "on_event"]

#: the whole life of a child app (start, one request, stop) ends within this
LIFE_LIMIT_S = 5.0


#: set in the child app's tasks (they copy it when uvicorn creates them): its log records
_IN_CHILD: contextvars.ContextVar[bool] = contextvars.ContextVar("lifespan_child", default=False)


class ChildLogFilter(logging.Filter):
    """uvicorn logs a child app's life on the same logger as the explorer's own server:
    its info lines are dropped, its errors (a failed startup's traceback) cut to their last
    line and marked as the demo's, so the log pane says what happened in one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _IN_CHILD.get():
            return True
        if record.levelno < logging.WARNING:
            return False
        lines = record.getMessage().strip().splitlines() or [""]
        record.msg, record.args, record.exc_info = f"lifespan demo child app: {lines[-1]}", (), None
        return True


@contextlib.contextmanager
def quiet_children() -> Iterator[None]:
    """The filter on uvicorn's logger for the block (the router's lifespan)."""
    logger, kept = logging.getLogger("uvicorn.error"), ChildLogFilter()
    logger.addFilter(kept)
    try:
        yield
    finally:
        logger.removeFilter(kept)


class ChildTimedOut(Exception):
    """The child app did not finish its life in time (it was stopped)."""


@dataclass
class ChildLife:
    """What one child app's life showed."""

    form: AppForm
    started: bool
    served: bool
    log: EventLog
    #: the resources still open once the server is gone: left for our cleanup to close
    still_open: list[Opened] = field(default_factory=list)
    #: what building the app warned (the deprecation of ``on_event``)
    warnings: list[str] = field(default_factory=list)
    #: module globals that held the resources (the on_event form)
    globals_used: list[str] = field(default_factory=list)
    elapsed_ms: float = 0.0


def build_child(form: AppForm, ctx: ChildContext) -> tuple[FastAPI, list[str]]:
    """The child app in ``form``, and the warnings building it raised (recorded, not lost)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if form == "on_event":
            app = on_event_app(ctx)
        else:
            app = lifespan_app(ctx, corrected=form == "lifespan")
    seen = [f"{w.category.__name__}: {str(w.message).strip().splitlines()[0]}" for w in caught]
    return app, list(dict.fromkeys(seen))  # once each (one per decorated handler)


async def _serve(server: uvicorn.Server, sock: socket.socket) -> bool:
    """Run ``server`` to its end: False when its startup failed (uvicorn exits then)."""
    try:
        await server.serve(sockets=[sock])
    except SystemExit:
        return False
    finally:
        sock.close()
    return True


async def live_once(form: AppForm, fail_at_second: bool, data_dir: Path) -> ChildLife:
    """Build the child app, start it, send one request through it, stop it."""
    began = time.perf_counter()
    log = EventLog()
    ctx = ChildContext(data_dir, fail_at_second, log)
    app, warned = build_child(form, ctx)
    sock = bind_socket("127.0.0.1", 0)
    ctx.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on", ws="none")
    server = EmbeddedUvicorn(config)
    marked = _IN_CHILD.set(True)  # copied into the server's task, and uvicorn's below it
    task = asyncio.create_task(_serve(server, sock), name="lifespan-child")
    _IN_CHILD.reset(marked)
    served = False
    try:
        async with asyncio.timeout(LIFE_LIMIT_S):
            # uvicorn sets a flag, no event: look every 5 ms
            while not server.started and not task.done():  # noqa: ASYNC110
                await asyncio.sleep(0.005)
            if server.started:
                log.say("startup complete: serving")
                async with httpx.AsyncClient(base_url=ctx.url, timeout=2.0) as client:
                    served = (await client.get("/ping")).status_code == 200
                server.should_exit = True
            started = await task
    except TimeoutError:
        server.should_exit = server.force_exit = True
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        raise ChildTimedOut(f"the child app did not finish within {LIFE_LIMIT_S:g} s") from None
    if not started:
        log.say("uvicorn: Application startup failed. Exiting. (no shutdown runs)")
    else:
        log.say("server stopped")
    return ChildLife(
        form=form,
        started=started,
        served=served,
        log=log,
        still_open=[opened for opened in log.opened if opened.is_open()],
        warnings=warned,
        globals_used=forget_globals() if form == "on_event" else [],
        elapsed_ms=round((time.perf_counter() - began) * 1000.0, 1),
    )
