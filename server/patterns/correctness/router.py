"""Correctness (scaffold, integrator: drop): includes the guide fixes' router."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from server.patterns.correctness import deadlock, guide_fixes
from server.patterns.correctness.deadlock import DeadlockLab
from server.state import state_of


@asynccontextmanager
async def correctness_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The guide fixes' state for the app's life."""
    lab = DeadlockLab()
    state = state_of(app)
    # before uvicorn's grace for open requests: the hangs answer 409 within it
    state.on_stopping(lambda: lab.end_all("the server stopping"))
    async with guide_fixes.guide_fixes_opened(state), state.opened(DeadlockLab, lab, lab.close):
        yield


router = APIRouter(prefix="/correctness", tags=["correctness"], lifespan=correctness_lifespan)
router.include_router(guide_fixes.router)
router.include_router(deadlock.router)
