"""Deadlock: two requests take two locks in opposite order, and a dependency that waits for
an event only its handler sets.

Nothing blocks the loop: the stuck requests are suspended in ``Lock.acquire`` (or
``Event.wait``) and the loop idles, so loop lag stays flat while nothing moves. The task
inspector (``GET /monitor/tasks``) sees the wait-for cycle: the locks are labelled
"lock A" and "lock B" and each handler's task is named after its transfer.

Every wait here runs inside the lab's ``asyncio.timeout`` for the request: its upper bound
(``bound_s``) ends a hang that nobody ends, and ``POST /deadlock/end`` (the pane's End
button, a pane switch, the router's lifespan on quit) moves that deadline to now. Either
way the handler catches the ``TimeoutError`` and answers 409 with a sentence: a request is
never cancelled from outside (uvicorn would log it and answer 500).

- ``POST /deadlock/transfer?first=A&form=pitfall|ordered|timeout``: take lock ``first``,
  hold it ``hold_s``, then take the other. pitfall: in that order (two opposite transfers
  deadlock); ordered: always A before B; timeout: ``asyncio.timeout(acquire_s)`` around
  the second acquire: on a timeout it releases the first, pauses a random while and
  tries again (``attempts`` counts). No ``form``: blocking mode picks the pitfall.
- ``POST /deadlock/handshake?form=pitfall|right``: its dependency waits for the event its
  handler sets, before its ``yield`` (pitfall: the handler never runs) or after it, on the
  teardown side (right).
- ``GET /deadlock``: who holds which lock and which requests are stuck, from the lab's own
  bookkeeping. ``POST /deadlock/end``: end every stuck request now.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel, Field

from fastasync_probe.monitor import label
from server.deps import BlockingMode, provided
from server.patterns.correctness.guide_params import absent_not_null

LockName = Literal["A", "B"]
TransferForm = Literal["pitfall", "ordered", "timeout"]
HandshakeForm = Literal["pitfall", "right"]
#: stuck requests at once; beyond, new ones are refused (429)
MAX_STUCK = 20


class Stuck:
    """One request of the lab, while it runs: its deadline, what it holds and waits for."""

    def __init__(self, name: str, deadline: asyncio.Timeout, bound_s: float) -> None:
        self.name = name
        self.deadline = deadline
        self.bound_s = bound_s
        self.started = asyncio.get_running_loop().time()
        self.holds: list[str] = []
        self.waits_for: str | None = None
        #: who ended it early (None: its bound did)
        self.ended_by: str | None = None

    @property
    def elapsed_s(self) -> float:
        return asyncio.get_running_loop().time() - self.started


class DeadlockLab:
    """The two locks, the handshake's events, and the requests running in the lab."""

    def __init__(self) -> None:
        self.locks: dict[str, asyncio.Lock] = {
            name: label(asyncio.Lock(), f"lock {name}") for name in ("A", "B")
        }
        self.running: list[Stuck] = []
        self.ended = 0

    @contextlib.asynccontextmanager
    async def bounded(self, name: str, bound_s: float) -> AsyncIterator[Stuck]:
        """Run the block as a lab request named ``name``, ended after ``bound_s`` at most
        (``TimeoutError``) or sooner by :meth:`end_all`."""
        if len(self.running) >= MAX_STUCK:
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                f"{MAX_STUCK} lab requests are running; POST /correctness/deadlock/end",
            )
        task = asyncio.current_task()
        if task is not None:
            task.set_name(name)  # what the task inspector lists
        async with asyncio.timeout(bound_s) as deadline:
            request = Stuck(name, deadline, bound_s)
            self.running.append(request)
            try:
                yield request
            finally:
                self.running.remove(request)

    async def take(self, request: Stuck, lock_name: str) -> None:
        """Acquire ``lock_name`` for ``request`` (noting the wait while it lasts)."""
        request.waits_for = f"lock {lock_name}"
        await self.locks[lock_name].acquire()
        request.waits_for = None
        request.holds.append(f"lock {lock_name}")

    def give_back(self, request: Stuck, lock_name: str) -> None:
        self.locks[lock_name].release()
        request.holds.remove(f"lock {lock_name}")

    def end_all(self, by: str = "the user (End)") -> int:
        """End every running lab request now: its deadline moves to now."""
        now = asyncio.get_running_loop().time()
        for request in self.running:
            request.ended_by = by
            request.deadline.reschedule(now)
        self.ended += len(self.running)
        return len(self.running)

    async def close(self) -> None:
        """End what runs and wait (bounded) until it has answered: the app is stopping."""
        self.end_all("the server stopping")
        for _ in range(100):
            if not self.running:
                return
            await asyncio.sleep(0.01)

    def ended_sentence(self, request: Stuck, what: str) -> str:
        """Why ``request`` answered 409 after its deadline."""
        who = request.ended_by or f"its {request.bound_s:g} s bound"
        return f"{what}: stuck {request.elapsed_s:.2f} s, ended by {who}"


LabDep = Annotated[DeadlockLab, Depends(provided(DeadlockLab))]
Bound = Annotated[
    float,
    Query(gt=0.05, le=120, description="Upper bound of a hang (s): it answers 409 then."),
]


class TransferOut(BaseModel):
    """A transfer that got both locks."""

    name: str
    form: TransferForm
    order: list[str] = Field(description="The order the locks were taken in.")
    attempts: int = Field(description="timeout form: tries, each backing off on a timeout.")
    took_s: float


router = APIRouter()

ENDED: dict[int | str, dict[str, object]] = {
    409: {"description": "Deadlocked and ended (bound or End), or backed off (timeout form)."},
    429: {"description": f"{MAX_STUCK} lab requests are running at once."},
}


async def take_both(
    lab: DeadlockLab,
    request: Stuck,
    order: list[str],
    form: TransferForm,
    hold_s: float,
    acquire_s: float,
) -> bool:
    """Take both locks in ``order`` and give them back; False: the timeout form backed off
    (the second lock did not come within ``acquire_s``, so the first was released)."""
    await lab.take(request, order[0])
    try:
        await asyncio.sleep(hold_s)  # long enough for the other transfer to take its first
        if form == "timeout":
            try:
                async with asyncio.timeout(acquire_s):
                    await lab.take(request, order[1])
            except TimeoutError:
                return False
        else:
            await lab.take(request, order[1])
        lab.give_back(request, order[1])  # the transfer itself would happen here
        return True
    finally:
        lab.give_back(request, order[0])


@router.post("/deadlock/transfer", responses=ENDED)
async def transfer(
    lab: LabDep,
    blocking: BlockingMode,
    first: Annotated[LockName, Query(description="The lock this transfer takes first.")],
    form: Annotated[
        TransferForm | None,
        Query(json_schema_extra=absent_not_null, description="none: by mode"),
    ] = None,
    hold_s: Annotated[float, Query(ge=0, le=2, description="Held before the second.")] = 0.05,
    acquire_s: Annotated[
        float, Query(gt=0, le=10, description="timeout form: wait for the second lock")
    ] = 0.2,
    bound_s: Bound = 20.0,
) -> TransferOut:
    """Take lock ``first``, hold it, then take the other one."""
    chosen: TransferForm = form or ("pitfall" if blocking else "ordered")
    second = "B" if first == "A" else "A"
    order = sorted((first, second)) if chosen == "ordered" else [first, second]
    name = f"transfer {first}->{second}"
    attempts = 0
    try:
        async with lab.bounded(name, bound_s) as request:
            while True:
                attempts += 1
                if await take_both(lab, request, order, chosen, hold_s, acquire_s):
                    break
                # Both sides time out together and would retry in step for ever: a random
                # pause (until the bound) lets one of them take both locks first.
                await asyncio.sleep(random.uniform(0, 2 * (hold_s + acquire_s)))
            took = request.elapsed_s
    except TimeoutError:
        raise HTTPException(
            status.HTTP_409_CONFLICT, lab.ended_sentence(request, f"{name} deadlocked")
        ) from None
    return TransferOut(
        name=name,
        form=chosen,
        order=[f"lock {n}" for n in order],
        attempts=attempts,
        took_s=took,
    )


class Handshake:
    """The event the handler sets once it runs; the dependency waits for it."""

    def __init__(self, form: HandshakeForm) -> None:
        self.form = form
        self.started = asyncio.get_running_loop().time()
        self.handler_ran = label(asyncio.Event(), "handler-ran event")


async def handshake_dependency(
    lab: LabDep,
    blocking: BlockingMode,
    form: Annotated[
        HandshakeForm | None,
        Query(json_schema_extra=absent_not_null, description="none: by mode"),
    ] = None,
    bound_s: Bound = 20.0,
) -> AsyncIterator[Handshake]:
    """A dependency that needs its handler to have run.

    pitfall: it waits before its ``yield``; FastAPI runs the handler only once the
    dependency has yielded, so the wait never ends (bounded and endable here). right: it
    waits on the teardown side of its ``yield``, which runs after the handler.
    """
    shake = Handshake(form or ("pitfall" if blocking else "right"))
    if shake.form == "pitfall":
        name = "handshake (pitfall)"
        try:
            async with lab.bounded(name, bound_s) as request:
                request.waits_for = "handler-ran event"
                await shake.handler_ran.wait()
        except TimeoutError:
            sentence = f"{name}: the dependency waited for its own handler"
            raise HTTPException(
                status.HTTP_409_CONFLICT, lab.ended_sentence(request, sentence)
            ) from None
        yield shake
    else:
        yield shake
        await shake.handler_ran.wait()  # the handler has run: set already


class HandshakeOut(BaseModel):
    """A handshake that completed."""

    form: HandshakeForm
    took_s: float


@router.post("/deadlock/handshake", responses=ENDED)
async def handshake(
    shake: Annotated[Handshake, Depends(handshake_dependency)],
) -> HandshakeOut:
    """The handler's part: set the event its dependency waits for."""
    shake.handler_ran.set()
    return HandshakeOut(form=shake.form, took_s=asyncio.get_running_loop().time() - shake.started)


class RunningOut(BaseModel):
    """One lab request that has not answered yet."""

    name: str
    holds: list[str]
    waits_for: str | None
    elapsed_s: float


class LabOut(BaseModel):
    """The lab's own view (the task inspector gives the loop's)."""

    running: list[RunningOut]
    holders: dict[str, str | None] = Field(description="lock -> the request holding it")
    ended: int = Field(description="Lab requests ended by End so far.")


@router.get("/deadlock")
async def lab_state(lab: LabDep) -> LabOut:
    """Who holds which lock, and which lab requests are still waiting."""
    holders: dict[str, str | None] = {f"lock {n}": None for n in lab.locks}
    for request in lab.running:
        for held in request.holds:
            holders[held] = request.name
    running = [
        RunningOut(name=r.name, holds=list(r.holds), waits_for=r.waits_for, elapsed_s=r.elapsed_s)
        for r in lab.running
    ]
    return LabOut(running=running, holders=holders, ended=lab.ended)


class EndOut(BaseModel):
    """How many lab requests End ended."""

    ended: int


@router.post("/deadlock/end")
async def end(lab: LabDep) -> EndOut:
    """End every stuck lab request now (each answers 409)."""
    return EndOut(ended=lab.end_all())
