"""Correctness: code that runs without error and is still wrong, next to its fix.

Each demo is a sub-router included below (adding a demo is one line in ``DEMOS``):
missing ``await`` (:mod:`.missing_await`), a read-await-write race (:mod:`.race`), two
locks taken in opposite order (:mod:`.deadlock`), swallowed errors (:mod:`.swallow`), and
the guide's own snippets corrected (:mod:`.guide_fixes`). The lifespan opens the demos'
state for the app's life.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from server.patterns.correctness import deadlock, guide_fixes, missing_await, race, swallow
from server.patterns.correctness.deadlock import DeadlockLab
from server.patterns.correctness.missing_await import AuditLog
from server.patterns.correctness.race import RaceLab
from server.state import state_of

DEMOS = (missing_await, race, deadlock, swallow, guide_fixes)


@asynccontextmanager
async def correctness_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The audit table, the race's stores, the deadlock lab and the guide fixes' state, for
    the app's life."""
    state = state_of(app)
    audit = await AuditLog.open(state.settings.data_dir)
    race_lab = RaceLab(state.settings)
    deadlock_lab = DeadlockLab()
    # before uvicorn's grace for open requests: the deadlock's hangs answer 409 within it
    state.on_stopping(lambda: deadlock_lab.end_all("the server stopping"))
    async with (
        state.opened(AuditLog, audit, audit.close),
        state.opened(RaceLab, race_lab, race_lab.close),
        state.opened(DeadlockLab, deadlock_lab, deadlock_lab.close),
        guide_fixes.guide_fixes_opened(state),
    ):
        yield


router = APIRouter(prefix="/correctness", tags=["correctness"], lifespan=correctness_lifespan)
for demo in DEMOS:
    router.include_router(demo.router)
