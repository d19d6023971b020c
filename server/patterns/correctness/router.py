"""Correctness: code that runs without error and is still wrong, next to its fix.

Each demo is a sub-router included below (adding a demo is one line in ``DEMOS``):
missing ``await`` (:mod:`.missing_await`), a read-await-write race (:mod:`.race`),
swallowed errors (:mod:`.swallow`), and the guide's own snippets corrected
(:mod:`.guide_fixes`). The lifespan opens the demos' state for the app's life.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from server.patterns.correctness import guide_fixes, missing_await, race, swallow
from server.patterns.correctness.missing_await import AuditLog
from server.patterns.correctness.race import RaceLab
from server.state import state_of

DEMOS = (missing_await, race, swallow, guide_fixes)


@asynccontextmanager
async def correctness_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The audit table, the race's stores and the guide fixes' state, for the app's life."""
    state = state_of(app)
    audit = await AuditLog.open(state.settings.data_dir)
    lab = RaceLab(state.settings)
    async with (
        state.opened(AuditLog, audit, audit.close),
        state.opened(RaceLab, lab, lab.close),
        guide_fixes.guide_fixes_opened(state),
    ):
        yield


router = APIRouter(prefix="/correctness", tags=["correctness"], lifespan=correctness_lifespan)
for demo in DEMOS:
    router.include_router(demo.router)
