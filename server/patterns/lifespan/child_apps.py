"""Three ways for a small app to open and close its two resources; the route runs each.

- :func:`corrected_lifespan`, the right form: an ``AsyncExitStack`` inside the lifespan, so
  whatever opened is closed, in reverse order, on the way out: after serving, and also
  when startup fails half-way (the stack unwinds the exception).
- :func:`naive_lifespan`, the guide's snippet as written: open, open, ``yield``, close,
  close. Fine while everything works; when the second open fails, the first one is never
  closed (no ``try``/``finally``, no stack).
- :func:`on_event_app`, the deprecated ``@app.on_event`` form: resources in module
  globals, startup and shutdown handlers apart. When a startup handler fails the server
  exits without running any shutdown handler, so what the first one opened stays open.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite
import httpx
from fastapi import FastAPI, Request

from server.patterns.lifespan.resources import (
    EventLog,
    close_database,
    close_http_client,
    open_database,
    open_http_client,
)


@dataclass
class ChildContext:
    """What a child app is given: where its file goes, whether startup fails, its log."""

    data_dir: Path
    fail_at_second: bool
    log: EventLog
    #: the child's own address, once its socket is bound (its http client calls it)
    url: str = ""


async def serve_ping(db: aiosqlite.Connection, http: httpx.AsyncClient, ctx: ChildContext) -> int:
    """One real request's work: a query on the database, a call through the http client."""
    async with db.execute("SELECT 1") as cursor:
        row = await cursor.fetchone()
    response = await http.get(f"{ctx.url}/health")
    ctx.log.say("served GET /ping (SELECT 1, GET /health through the http client)")
    return int(row[0] if row else 0) + response.status_code


def _child_app(**options: Any) -> FastAPI:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None, **options)

    @app.get("/health")
    async def health() -> dict[str, bool]:
        return {"ok": True}

    return app


# -- right: the corrected lifespan ----------------------------------------------------------


@asynccontextmanager
async def corrected_lifespan(ctx: ChildContext, app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    """Each resource is registered on the stack as soon as it is open: a failure later in
    startup, or the end of the app's life, closes exactly what was opened, in reverse."""
    async with AsyncExitStack() as stack:
        db = await open_database(ctx.data_dir, ctx.log)
        stack.push_async_callback(close_database, db, ctx.log)
        http = await open_http_client(ctx.fail_at_second, ctx.log)
        stack.push_async_callback(close_http_client, http, ctx.log)
        yield {"db": db, "http": http}  # the app serves; request.state has both


# -- pitfall 1: the guide's snippet ----------------------------------------------------------


@asynccontextmanager
async def naive_lifespan(ctx: ChildContext, app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    """The guide's lifespan as written: no try/finally around the opens and the yield."""
    db = await open_database(ctx.data_dir, ctx.log)
    http = await open_http_client(ctx.fail_at_second, ctx.log)
    yield {"db": db, "http": http}
    await close_http_client(http, ctx.log)
    await close_database(db, ctx.log)


def lifespan_app(ctx: ChildContext, corrected: bool) -> FastAPI:
    """A child app whose resources come from a lifespan (request.state carries them)."""
    chosen = corrected_lifespan if corrected else naive_lifespan
    app = _child_app(lifespan=lambda app: chosen(ctx, app))

    @app.get("/ping")
    async def ping(request: Request) -> dict[str, int]:
        return {"result": await serve_ping(request.state.db, request.state.http, ctx)}

    return app


# -- pitfall 2: @app.on_event and module globals ---------------------------------------------

_database: aiosqlite.Connection | None = None
_http: httpx.AsyncClient | None = None


def on_event_app(ctx: ChildContext) -> FastAPI:
    """The deprecated form: globals, and startup and shutdown handlers that never meet."""
    app = _child_app()

    @app.on_event("startup")
    async def open_database_handler() -> None:
        global _database
        _database = await open_database(ctx.data_dir, ctx.log)

    @app.on_event("startup")
    async def open_http_handler() -> None:
        global _http
        _http = await open_http_client(ctx.fail_at_second, ctx.log)

    @app.on_event("shutdown")
    async def close_handler() -> None:  # never runs when a startup handler failed
        if _http is not None:
            await close_http_client(_http, ctx.log)
        if _database is not None:
            await close_database(_database, ctx.log)

    @app.get("/ping")
    async def ping() -> dict[str, int]:
        assert _database is not None  # startup ran
        assert _http is not None
        return {"result": await serve_ping(_database, _http, ctx)}

    return app


def forget_globals() -> list[str]:
    """Drop the on_event form's globals after a run (the route has what they held): the
    names that were still set."""
    global _database, _http
    pairs = (("_database", _database), ("_http", _http))
    held = [name for name, value in pairs if value is not None]
    _database = _http = None
    return held
