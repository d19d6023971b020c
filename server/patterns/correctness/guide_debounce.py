"""The guide's ``Debouncer``, as written and corrected, behind one route.

The guide's ``debounce()`` ends with ``await self.tasks[key]``: every caller waits for the
run it scheduled, and when a later trigger cancels that run, the ``CancelledError`` of the
cancelled task is raised into the earlier caller's request. The corrected form schedules
(or joins) the one run and returns at once; the run happens once the key is quiet, on a
task the lab keeps a strong reference to (the tasks pattern's ``Bursts``, reused).

- ``POST /debounce/trigger?form=guide|fixed&key=..&delay_s=..``: one caller (no ``form``:
  blocking mode picks the guide's). Guide: 200 ``ran`` after the whole delay, or 409 once a
  later trigger superseded it (never a 500). Fixed: 202 ``scheduled``/``coalesced`` at once.
- ``GET /debounce?key=``: the key's triggers and runs so far.
- ``POST /debounce/reset?key=``: forget the key (its pending run is cancelled).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status
from pydantic import BaseModel, Field

from server.deps import BlockingMode, provided
from server.patterns.correctness.guide_params import absent_not_null
from server.patterns.tasks.debounce import Bursts

log = logging.getLogger("fastasync.correctness")

#: keys with a run pending at once (each holds at most one task per form)
MAX_KEYS = 32
DebounceForm = Literal["guide", "fixed"]
Key = Annotated[
    str,
    Query(
        min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$", description="The debounce key."
    ),
]

SUPERSEDED = (
    "superseded: CancelledError raised into this request (the guide's debounce() awaits "
    "its task, and a later trigger with the same key cancelled it)"
)


class Debouncer:
    """The guide's debouncer, as the guide writes it (the bug is its last line)."""

    def __init__(self) -> None:
        self.tasks: dict[str, asyncio.Task[None]] = {}

    async def debounce(self, key: str, func: Callable[[], Awaitable[None]], delay: float) -> None:
        if key in self.tasks:
            self.tasks[key].cancel()

        async def delayed() -> None:
            await asyncio.sleep(delay)
            await func()

        self.tasks[key] = asyncio.create_task(delayed())
        await self.tasks[key]


class FixedDebouncer:
    """The corrected debouncer: a trigger schedules or joins the key's one run and returns.

    The run waits on a task held here (a strong reference, dropped when it ends), so no
    caller waits and no caller is cancelled; a later trigger only moves the deadline.
    """

    def __init__(self, limit: int = MAX_KEYS) -> None:
        self.bursts = Bursts(limit)
        self.timers: dict[str, asyncio.Task[None]] = {}

    def debounce(
        self, key: str, func: Callable[[], Awaitable[None]], delay: float
    ) -> Literal["scheduled", "coalesced"]:
        """Join ``key``'s pending run, or schedule one ``delay`` s after the last trigger."""
        if self.bursts.trigger(key, delay) is not None:
            return "coalesced"
        burst = self.bursts.begin(key, delay)
        if burst is None:
            raise TooManyKeys(f"{MAX_KEYS} keys are being debounced at once; try again")

        async def when_quiet() -> None:
            await self.bursts.quiet(key, burst)
            await func()

        task = asyncio.create_task(when_quiet(), name=f"correctness-debounce-{key}")
        self.timers[key] = task
        task.add_done_callback(lambda done: self._ended(key, done))
        return "scheduled"

    def _ended(self, key: str, task: asyncio.Task[None]) -> None:
        if self.timers.get(key) is task:
            del self.timers[key]
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("debounced run of %s failed: %r", key, error)


class TooManyKeys(RuntimeError):
    """``MAX_KEYS`` keys have a run pending (the API answers 429)."""


@dataclass
class KeyCount:
    """What one key has seen."""

    triggers: int = 0
    runs: int = 0


class DebounceLab:
    """Both debouncers and the counts of every key, for the app's life."""

    def __init__(self) -> None:
        self.guide = Debouncer()
        self.fixed = FixedDebouncer()
        self.counts: dict[str, KeyCount] = {}

    def pending(self, key: str) -> bool:
        """Whether a run of ``key`` is waiting (in either form)."""
        task = self.guide.tasks.get(key)
        return (task is not None and not task.done()) or key in self.fixed.timers

    def count(self, key: str) -> KeyCount:
        """``key``'s counts, made room for: idle keys beyond ``MAX_KEYS`` are forgotten."""
        if key not in self.counts:
            for idle in [k for k in self.counts if not self.pending(k)]:
                if len(self.counts) < MAX_KEYS:
                    break
                self.forget(idle)
            if len(self.counts) >= MAX_KEYS:
                raise TooManyKeys(f"{MAX_KEYS} keys are being debounced at once; try again")
        return self.counts.setdefault(key, KeyCount())

    def run_of(self, key: str) -> Callable[[], Awaitable[None]]:
        """The debounced work: counts one run of ``key``."""

        async def run() -> None:
            self.counts.setdefault(key, KeyCount()).runs += 1

        return run

    def forget(self, key: str) -> None:
        """Cancel ``key``'s pending runs and drop its counts."""
        self.counts.pop(key, None)
        task = self.guide.tasks.pop(key, None)
        if task is not None:
            task.cancel()
        timer = self.fixed.timers.pop(key, None)
        if timer is not None:
            timer.cancel()

    async def close(self) -> None:
        """Cancel every pending run and wait for them (the app is stopping)."""
        tasks = [*self.guide.tasks.values(), *self.fixed.timers.values()]
        for key in list(self.counts):
            self.forget(key)
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


LabDep = Annotated[DebounceLab, Depends(provided(DebounceLab))]


class TriggerOut(BaseModel):
    """What one caller got."""

    form: DebounceForm
    key: str
    outcome: Literal["ran", "scheduled", "coalesced"]
    waited_ms: float = Field(description="How long this request waited in debounce().")
    triggers: int
    runs: int = Field(description="The key's runs so far (a fixed-form run comes later).")


class KeyOut(BaseModel):
    """A key's counts."""

    key: str
    triggers: int
    runs: int
    pending: bool


router = APIRouter()

TRIGGER_ANSWERS: dict[int | str, dict[str, Any]] = {
    202: {"description": "Fixed form: the run is scheduled or joined; the caller is done."},
    409: {"description": "Guide form: a later trigger cancelled the run this caller awaited."},
    429: {"description": f"{MAX_KEYS} keys have a run pending at once."},
}


@router.post("/debounce/trigger", responses=TRIGGER_ANSWERS)
async def trigger(
    lab: LabDep,
    blocking: BlockingMode,
    response: Response,
    key: Key = "search",
    form: Annotated[
        DebounceForm | None,
        Query(
            json_schema_extra=absent_not_null,
            description="guide (as written), fixed; none: by mode",
        ),
    ] = None,
    delay_s: Annotated[
        float, Query(ge=0.01, le=5.0, description="Quiet time before the run.")
    ] = 0.3,
) -> TriggerOut:
    """One trigger of ``key``: the guide's debounce() (awaited) or the corrected one."""
    chosen: DebounceForm = form or ("guide" if blocking else "fixed")
    loop = asyncio.get_running_loop()
    began = loop.time()
    try:
        count = lab.count(key)
        count.triggers += 1
        if chosen == "fixed":
            outcome: Literal["ran", "scheduled", "coalesced"] = lab.fixed.debounce(
                key, lab.run_of(key), delay_s
            )
            response.status_code = status.HTTP_202_ACCEPTED
        else:
            try:
                await lab.guide.debounce(key, lab.run_of(key), delay_s)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise  # this request itself is being cancelled: let it go
                # The cancelled task's error, raised into a caller nobody cancelled.
                raise HTTPException(status.HTTP_409_CONFLICT, SUPERSEDED) from None
            outcome = "ran"
    except TooManyKeys as exc:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, str(exc)) from None
    return TriggerOut(
        form=chosen,
        key=key,
        outcome=outcome,
        waited_ms=round((loop.time() - began) * 1000, 2),
        triggers=count.triggers,
        runs=count.runs,
    )


@router.get("/debounce")
async def key_counts(lab: LabDep, key: Key = "search") -> KeyOut:
    """``key``'s triggers and runs so far (zero for a key never triggered)."""
    count = lab.counts.get(key, KeyCount())
    return KeyOut(key=key, triggers=count.triggers, runs=count.runs, pending=lab.pending(key))


@router.post("/debounce/reset")
async def reset_key(lab: LabDep, key: Key = "search") -> KeyOut:
    """Forget ``key``: its pending run is cancelled, its counts start again at zero."""
    lab.forget(key)
    return KeyOut(key=key, triggers=0, runs=0, pending=False)
