"""Correctness (scaffold, integrator: drop): includes the guide fixes' router."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from server.patterns.correctness import guide_fixes
from server.state import state_of


@asynccontextmanager
async def correctness_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The guide fixes' state for the app's life."""
    async with guide_fixes.guide_fixes_opened(state_of(app)):
        yield


router = APIRouter(prefix="/correctness", tags=["correctness"], lifespan=correctness_lifespan)
router.include_router(guide_fixes.router)
