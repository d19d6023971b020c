"""Swallowed errors: failures nobody looks at, next to forms that surface them.

- ``kind=task``: a background step started with ``create_task`` raises at once. Pitfall:
  the reference is dropped once the task is done, the exception never retrieved; the answer
  says "ok" and the only trace is the loop's "Task exception was never retrieved" when the
  task is collected. Right: the task is kept and awaited; the answer says it failed.
- ``kind=gather``: five steps through ``gather(..., return_exceptions=True)``, two of which
  raise. Pitfall: the results are not checked ("5 done"). Right: every result is checked
  and the failures reported.

The pitfall's "never retrieved" report is captured by a loop exception handler set for one
synchronous section (the drop), so the deliberate one reaches the answer and the task
inspector (``GET /monitor/tasks``, ``never_retrieved``), not the logs.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from fastasync_probe.monitor import TaskBook
from server.deps import BlockingMode
from server.patterns.correctness.models import Form, FormQuery, chosen

Kind = Literal["task", "gather"]
#: the gather's steps, and which of them raise
STEPS = 5
FAILING = (2, 4)


class StepFailed(RuntimeError):
    """A demo step's deliberate failure."""


async def step(n: int) -> int:
    """One unit of work; steps in ``FAILING`` raise."""
    await asyncio.sleep(0)
    if n in FAILING:
        raise StepFailed(f"step {n} failed: the payment provider said no")
    return n


async def send_receipt() -> None:
    """The background step of ``kind=task``: fails at once."""
    raise StepFailed("send_receipt failed: SMTP connection refused")


class SwallowOut(BaseModel):
    """What the handler answered, and what really happened."""

    kind: Kind
    form: Form
    said: str = Field(description="What the handler's answer claims.")
    failed: list[str] = Field(description="The failures the handler saw and reported.")
    really_failed: int = Field(description="How many steps really raised (the demo counts).")
    loop_logged: str | None = Field(
        description="What the loop reported when the dropped task was collected (task pitfall)."
    )


def drop_unretrieved(held: list[asyncio.Task[None]]) -> str | None:
    """Drop the last reference to a done task whose exception nobody retrieved.

    Synchronous: the loop's exception handler is swapped only while the task is collected
    (its ``__del__`` reports "Task exception was never retrieved"), and restored at once.
    """
    loop = asyncio.get_running_loop()
    said: list[str] = []
    previous = loop.get_exception_handler()

    def record(_loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        said.append(f"{context.get('message')}: {context.get('exception')!r}")
        TaskBook.for_loop(loop).note_failure(context)  # the task inspector lists it

    loop.set_exception_handler(record)
    try:
        held.clear()  # the last reference: the task is collected here
    finally:
        loop.set_exception_handler(previous)
    return said[0] if said else None


async def run_task(form: Form) -> SwallowOut:
    # held in a list so that the pitfall can drop the only reference
    held = [asyncio.create_task(send_receipt(), name="correctness-send-receipt")]
    await asyncio.wait(held)  # done; wait() does not retrieve the exception
    if form == "pitfall":
        logged = drop_unretrieved(held)
        return SwallowOut(
            kind="task", form=form, said="ok", failed=[], really_failed=1, loop_logged=logged
        )
    try:
        await held.pop()
    except StepFailed as exc:
        failed = [str(exc)]
    else:
        failed = []
    said = "failed: " + failed[0] if failed else "ok"
    return SwallowOut(
        kind="task", form=form, said=said, failed=failed, really_failed=1, loop_logged=None
    )


async def run_gather(form: Form) -> SwallowOut:
    results = await asyncio.gather(*(step(n) for n in range(1, STEPS + 1)), return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    if form == "pitfall":
        said = f"{len(results)} done"  # nobody looked at what the results are
        failed: list[str] = []
    else:
        failed = [str(e) for e in errors]
        said = f"{len(results) - len(errors)} done, {len(errors)} failed"
    return SwallowOut(
        kind="gather",
        form=form,
        said=said,
        failed=failed,
        really_failed=len(errors),
        loop_logged=None,
    )


router = APIRouter()


@router.post("/swallow")
async def swallow(
    blocking: BlockingMode,
    kind: Annotated[Kind, Query(description="task or gather")] = "task",
    form: FormQuery = None,
) -> SwallowOut:
    """Run the ``kind`` demo: its failure swallowed (pitfall) or surfaced (right)."""
    taken = chosen(form, blocking)
    return await (run_task(taken) if kind == "task" else run_gather(taken))
