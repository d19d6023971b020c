"""``create_app(settings)``: the FastAPI application, the same embedded or standalone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from fastasync_probe.middleware import RequestAttribution
from fastasync_probe.monitor import LoopMonitor
from server import __version__, monitor_routes
from server.blocking import BlockingSwitch
from server.errors import document_body_errors, install_error_handlers
from server.heap import settle_heap
from server.patterns import PATTERNS, router_of
from server.patterns.basics.cpu_pool import CpuPool
from server.settings import Settings
from server.state import AppState, attach_state, state_of


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the shared resources once, close them on the way out (no ``on_event``)."""
    state = state_of(app)
    loop_monitor = LoopMonitor.for_loop(config=state.settings.monitor)
    loop_monitor.start()
    cpu_pool = CpuPool(state.settings.cpu_workers)
    try:
        state.open(loop_monitor, cpu_pool)
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
    attach_state(app, AppState(settings, BlockingSwitch(settings.blocking_mode)))
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
