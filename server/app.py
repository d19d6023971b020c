"""``create_app(settings)``: the FastAPI application, the same embedded or standalone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from server import __version__, monitor_routes
from server.blocking import BlockingSwitch
from server.errors import document_body_errors, install_error_handlers
from server.heap import settle_heap
from server.middleware import RequestAttribution
from server.monitor import LoopMonitor
from server.patterns import PATTERNS, router_of
from server.patterns.basics.cpu_pool import CpuPool
from server.settings import Settings


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the shared resources once, close them on the way out (no ``on_event``)."""
    settings: Settings = app.state.settings
    loop_monitor = LoopMonitor.for_loop(config=settings.monitor)
    loop_monitor.start()
    cpu_pool = CpuPool(settings.cpu_workers)
    # One pooled client for every outbound call the patterns make: connections are
    # reused, and every call has a timeout.
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
    timeout = httpx.Timeout(10.0, connect=2.0)
    try:
        async with httpx.AsyncClient(limits=limits, timeout=timeout) as http:
            app.state.monitor = loop_monitor
            app.state.cpu_pool = cpu_pool
            app.state.http = http
            settle_heap()
            yield
    finally:
        await cpu_pool.close()
        loop_monitor.stop()


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app. Nothing starts until the server runs the lifespan."""
    settings = settings or Settings()
    # Swagger UI and ReDoc served from the wheel (fastapi-offline), not from a CDN: /docs
    # works offline, as the rest of the explorer does
    app = FastAPIOffline(
        title="fastasync-explorer",
        version=__version__,
        summary="Live FastAPI async patterns, each shown right and with its pitfall.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.blocking = BlockingSwitch(settings.blocking_mode)
    app.add_middleware(RequestAttribution)
    install_error_handlers(app)
    app.include_router(document_body_errors(monitor_routes.router))
    for slug in PATTERNS:
        app.include_router(document_body_errors(router_of(slug)))

    @app.get("/", tags=["meta"])
    async def index() -> dict[str, Any]:
        """What this server offers."""
        return {
            "name": "fastasync-explorer",
            "version": __version__,
            "docs": "/docs",
            "monitor": "/monitor",
            "patterns": list(PATTERNS),
        }

    return app
