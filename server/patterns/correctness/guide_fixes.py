"""Guide fixes: two of the guide's own snippets, as written and corrected, live.

Included by the correctness router (no prefix of its own): ``/debounce/...`` (the guide's
``Debouncer``, :mod:`server.patterns.correctness.guide_debounce`) and ``/upload/...`` (the
guide's upload handler against a sandbox, :mod:`server.patterns.correctness.guide_upload`).
The correctness router's lifespan opens their state with :func:`guide_fixes_opened`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter

from server.patterns.correctness import guide_debounce, guide_upload
from server.patterns.correctness.guide_debounce import DebounceLab
from server.patterns.correctness.guide_upload import UploadSandbox
from server.state import AppState


@asynccontextmanager
async def guide_fixes_opened(state: AppState) -> AsyncIterator[None]:
    """The debounce lab and the upload sandbox for the block (the app's life): pending runs
    cancelled and the sandbox emptied on the way out."""
    lab = DebounceLab()
    sandbox = await UploadSandbox.open(state.settings.data_dir)
    async with (
        state.opened(DebounceLab, lab, lab.close),
        state.opened(UploadSandbox, sandbox, sandbox.close),
    ):
        yield


router = APIRouter()
router.include_router(guide_debounce.router)
router.include_router(guide_upload.router)
