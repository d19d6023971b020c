"""The yardstick for the monitor's own cost: a bare FastAPI app, one ``async def`` route.

``python -m explorer.tools.bare_app --port N [--monitor]`` serves it under uvicorn on the
asyncio loop, with the explorer's :class:`~fastasync_probe.monitor.LoopMonitor` started by its
lifespan or not at all; ``fastasync-explorer bench`` loads both and compares.
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI

from fastasync_probe.monitor import LoopMonitor

#: the one route: what a handler that does nothing costs is the whole figure
PATH = "/"


def bare_app(with_monitor: bool) -> FastAPI:
    """One route; with ``with_monitor``, the loop monitor runs for the app's life."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        monitor = LoopMonitor.for_loop() if with_monitor else None
        if monitor is not None:
            monitor.start()
        try:
            yield
        finally:
            if monitor is not None:
                monitor.stop()

    app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)

    @app.get(PATH)
    async def hello() -> dict[str, bool]:
        return {"ok": True}

    return app


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m explorer.tools.bare_app")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--monitor", action="store_true", help="start the loop monitor")
    args = parser.parse_args(argv)
    uvicorn.run(
        bare_app(args.monitor),
        host="127.0.0.1",
        port=args.port,
        loop="asyncio",
        access_log=False,
        log_level="warning",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
