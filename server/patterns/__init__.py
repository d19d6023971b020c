"""The patterns, in menu order: the one registry.

Each slug has two homes: ``server/patterns/<slug>/`` (``router.py``: an ``APIRouter`` with
prefix ``/<slug>``, and the pattern's own modules) and ``explorer/patterns/<slug>/``
(``pane.py``, ``scenarios.py``, and its own widgets and tools). The app, the explorer's
menu, the report, ``bench <slug>``, the soak and the fuzzing read this list; adding a
pattern is creating the two folders and adding its slug here (docs/architecture.md).
"""

from __future__ import annotations

from importlib import import_module

from fastapi import APIRouter

PATTERNS: tuple[str, ...] = (
    "basics",
    "concurrency",
    "tasks",
    "ws",
    "sse",
    "stream",
    "db",
    "cache",
    "correctness",
    "lifespan",
    "queue",
)


def router_of(slug: str) -> APIRouter:
    """The pattern's router (``server.patterns.<slug>.router.router``)."""
    router: APIRouter = import_module(f"server.patterns.{slug}.router").router
    return router
