"""Lifespan & context managers: resources that are closed, whatever happens, or not.

- ``POST /lifespan/app/run``: a small child app with two real resources (an SQLite
  connection and an HTTP client) lives its whole life under uvicorn on this loop (startup,
  one request, shutdown), in the corrected ``lifespan``, the guide's naive one, or with
  ``@app.on_event``; the answer is its ordered event log and what it left open. Blocking
  mode picks ``on_event`` unless ``form`` says. ``POST /lifespan/app/cleanup`` closes what
  runs left open (so does this router's lifespan on the way out).
- ``POST /lifespan/pool/request``: a request's work on a pooled connection, in the guide's
  ``async with`` (right) or acquired bare (blocking mode): each failing request answers
  409; in the bare form its connection never comes back, and once all five are gone the
  next acquire times out: 503. ``GET /lifespan/pool`` is the gauge,
  ``POST /lifespan/pool/reset`` gives the leaked connections back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, status

from server.deps import BlockingMode, SettingsDep, provided
from server.patterns.lifespan.child_run import AppForm, ChildTimedOut, live_once, quiet_children
from server.patterns.lifespan.connections import (
    DemoFailure,
    failure_sentence,
    with_context_manager,
    without_context_manager,
)
from server.patterns.lifespan.lab import LifespanLab
from server.patterns.lifespan.models import (
    AppRunOut,
    CleanupOut,
    LifeEvent,
    PoolForm,
    PoolRequestOut,
    ResetOut,
)
from server.patterns.lifespan.pool import PoolClosed, PoolGauge, PoolTimeout
from server.state import state_of


@asynccontextmanager
async def lifespan_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """This pattern's own resources for the app's life: the pool, and the leftovers of
    pitfall runs, all closed on the way out."""
    state = state_of(app)
    lab = await LifespanLab.open(state.settings.data_dir)
    with quiet_children():
        async with state.opened(LifespanLab, lab, lab.close):
            yield


router = APIRouter(prefix="/lifespan", tags=["lifespan"], lifespan=lifespan_lifespan)

LabDep = Annotated[LifespanLab, Depends(provided(LifespanLab))]

BUSY: dict[int | str, dict[str, Any]] = {
    409: {"description": "Another child app is being run; try again in a moment."},
    503: {"description": "The child app did not finish its life within 5 s (it was stopped)."},
}
POOL_ANSWERS: dict[int | str, dict[str, Any]] = {
    409: {"description": "The request failed as asked (fail=true): where its connection went."},
    503: {"description": "No free connection within timeout_s: all are checked out (leaked)."},
}


@router.post("/app/run", responses=BUSY)
async def run_app(
    lab: LabDep,
    settings: SettingsDep,
    blocking: BlockingMode,
    form: Annotated[
        AppForm | None,
        Query(description="lifespan (corrected), naive (the guide's), on_event; none: by mode"),
    ] = None,
    fail_at: Annotated[
        Literal["none", "second"], Query(description="second: startup fails after one open")
    ] = "none",
) -> AppRunOut:
    """Build a child app, run it under uvicorn (startup, one request, shutdown): its life."""
    chosen: AppForm = form or ("on_event" if blocking else "lifespan")
    if lab.child_lock.locked():
        raise HTTPException(
            status.HTTP_409_CONFLICT, "another child app is being run now; try again"
        )
    async with lab.child_lock:
        try:
            life = await live_once(chosen, fail_at == "second", settings.data_dir)
        except ChildTimedOut as exc:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from None
        await lab.keep(life.still_open)
    return AppRunOut(
        form=chosen,
        fail_at=fail_at,
        started=life.started,
        served=life.served,
        events=[LifeEvent(at_ms=at, text=text) for at, text in life.log.events],
        opened=[opened.name for opened in life.log.opened],
        still_open=[opened.name for opened in life.still_open],
        warnings=life.warnings,
        globals_used=life.globals_used,
        leftovers=len(lab.leftovers),
        elapsed_ms=life.elapsed_ms,
    )


@router.post("/app/cleanup")
async def clean_up(lab: LabDep) -> CleanupOut:
    """Close every resource that child apps left open."""
    closed = await lab.clean_up()
    return CleanupOut(closed=closed, leftovers=len(lab.leftovers))


@router.get("/pool")
async def pool_gauge(lab: LabDep) -> PoolGauge:
    """The pool's gauge: idle, in use, leaked, waiters."""
    return lab.pool.gauge()


@router.post("/pool/request", responses=POOL_ANSWERS)
async def pool_request(
    lab: LabDep,
    blocking: BlockingMode,
    form: Annotated[
        PoolForm | None, Query(description="acm (async with), leak (bare); none: by mode")
    ] = None,
    fail: Annotated[bool, Query(description="Fail after the INSERT, before the commit.")] = True,
    timeout_s: Annotated[
        float, Query(ge=0.05, le=10, description="How long to wait for a free connection.")
    ] = 1.0,
) -> PoolRequestOut:
    """One request's work on a pooled connection: 409 when it fails (as asked), 503 when
    no connection is free within ``timeout_s``."""
    chosen: PoolForm = form or ("leak" if blocking else "acm")
    work = with_context_manager if chosen == "acm" else without_context_manager
    try:
        await work(lab.pool, fail, timeout_s)
    except DemoFailure as exc:
        detail = failure_sentence(exc, chosen == "leak", lab.pool.gauge())
        raise HTTPException(status.HTTP_409_CONFLICT, detail) from None
    except (PoolTimeout, PoolClosed) as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from None
    return PoolRequestOut(form=chosen, committed=True, pool=lab.pool.gauge())


@router.post("/pool/reset")
async def reset_pool(lab: LabDep) -> ResetOut:
    """Roll back and give back every connection a finished request never released."""
    returned = await lab.pool.reclaim_leaked()
    return ResetOut(returned=returned, pool=lab.pool.gauge())
