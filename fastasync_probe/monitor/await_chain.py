"""Where a task is suspended, and on what, read from its await chain.

A suspended coroutine's ``cr_await`` is what it awaits: another coroutine (its frame is
one level deeper) or a future's iterator (the bottom). The innermost frame outside
asyncio is the line to show (``await lock_b.acquire()`` in the demo); the innermost frame
inside asyncio says what kind of wait it is (``Lock.acquire``, ``Event.wait``, ``sleep``),
and its ``self`` is the primitive. ``task._fut_waiter`` is the future the task waits on;
when that is another task, it is a wait-for edge. Nothing here runs on a timer: it is
read only when a snapshot is asked for.
"""

from __future__ import annotations

import asyncio
import gc
import os
import types
from dataclasses import dataclass
from typing import Any

from . import lock_owners

_ASYNCIO_DIR = os.path.dirname(os.path.abspath(asyncio.__file__)) + os.sep
#: libraries whose waits are a connection's read (the request body, a disconnect)
_SOCKET_LIBS = (f"{os.sep}uvicorn{os.sep}", f"{os.sep}h11{os.sep}", f"{os.sep}anyio{os.sep}")


@dataclass(slots=True)
class Wait:
    """What a task waits on: kind, a readable detail, the object (and the task it waits for)."""

    kind: str
    detail: str
    obj: Any = None
    #: the task this wait depends on (a lock's owner, an awaited task): a wait-for edge
    target: asyncio.Task[Any] | None = None
    #: loop.time() the wait began, when it can be known (a sleep's timer)
    began: float | None = None

    def as_dict(self) -> dict[str, Any]:
        obj = self.obj
        return {
            "kind": self.kind,
            "detail": self.detail,
            "object_id": id(obj) if obj is not None else None,
            "label": lock_owners.label_of(obj) if obj is not None else None,
        }


NOT_WAITING = Wait("none", "ready to run")


def chain_frames(coro: Any, max_depth: int = 48) -> list[types.FrameType]:
    """The frames of ``coro``'s await chain, outermost first."""
    frames: list[types.FrameType] = []
    node = coro
    while node is not None and len(frames) < max_depth:
        if isinstance(node, types.CoroutineType):
            frame, node = node.cr_frame, node.cr_await
        elif isinstance(node, types.GeneratorType):
            frame, node = node.gi_frame, node.gi_yieldfrom
        elif isinstance(node, types.AsyncGeneratorType):
            frame, node = node.ag_frame, node.ag_await
        elif type(node).__name__ == "async_generator_asend":
            # ``await anext(gen)`` (FastAPI's yield dependencies, async context managers):
            # the awaitable keeps no public link to its generator, but refers to it
            node = next(
                (r for r in gc.get_referents(node) if isinstance(r, types.AsyncGeneratorType)),
                None,
            )
            continue
        else:
            break
        if frame is None:
            break
        frames.append(frame)
    return frames


_asyncio_files: dict[str, bool] = {}


def is_asyncio(frame: types.FrameType) -> bool:
    """True for a frame of asyncio's own code."""
    filename = frame.f_code.co_filename
    known = _asyncio_files.get(filename)
    if known is None:
        known = _asyncio_files[filename] = filename.startswith(_ASYNCIO_DIR)
    return known


def where(frames: list[types.FrameType]) -> types.FrameType | None:
    """The innermost frame outside asyncio (else the innermost)."""
    for frame in reversed(frames):
        if not is_asyncio(frame):
            return frame
    return frames[-1] if frames else None


def location(frame: types.FrameType) -> tuple[str, int, str]:
    """(file, line, function) of a suspended frame."""
    code = frame.f_code
    return code.co_filename, frame.f_lineno or code.co_firstlineno, code.co_name


def _primitive(obj: Any, function: str) -> Wait | None:
    """The wait on an asyncio primitive ``obj`` (``self`` of an asyncio/locks.py frame)."""
    name = lock_owners.default_name(obj)
    if isinstance(obj, asyncio.Lock):
        owner = lock_owners.owner_of(obj)
        held = f", held by {owner.get_name()}" if owner is not None else ""
        return Wait("lock", f"{name}{held}", obj, owner)
    if isinstance(obj, asyncio.Event):
        return Wait("event", f"{name}.wait()", obj)
    if isinstance(obj, asyncio.Condition):
        return Wait("condition", f"{name}.{function}()", obj)
    if isinstance(obj, asyncio.Semaphore):
        return Wait("semaphore", f"{name}.acquire()", obj)
    if isinstance(obj, asyncio.Queue):
        return Wait("queue", f"{name}.{function}()", obj)
    return None


def _from_asyncio_frame(frame: types.FrameType, loop: asyncio.AbstractEventLoop) -> Wait | None:
    code = frame.f_code
    module = os.path.basename(code.co_filename)
    function = code.co_name
    if module == "tasks.py" and function == "sleep":
        local = frame.f_locals
        delay, handle = local.get("delay"), local.get("h")
        began = None
        if isinstance(handle, asyncio.TimerHandle) and isinstance(delay, int | float):
            began = handle.when() - delay
        return Wait("sleep", f"asyncio.sleep({delay})", None, None, began)
    if module in ("locks.py", "queues.py"):
        return _primitive(frame.f_locals.get("self"), function)
    if module == "streams.py":
        return Wait("socket", f"StreamReader.{function}()")
    return None


def wait_of(
    task: asyncio.Task[Any], frames: list[types.FrameType], loop: asyncio.AbstractEventLoop
) -> Wait:
    """What the suspended ``task`` waits on."""
    found: Wait | None = None
    for depth in range(len(frames) - 1, -1, -1):
        frame = frames[depth]
        if not is_asyncio(frame):
            break
        found = _from_asyncio_frame(frame, loop)
        if found is not None:
            break
    if found is not None and found.kind == "event":
        # uvicorn's receive() waits on an Event that a socket read sets: a socket read
        callers = [f for f in frames if not is_asyncio(f)]
        if callers and _SOCKET_LIBS[0] in callers[-1].f_code.co_filename:
            return Wait("socket", f"connection read ({callers[-1].f_code.co_name})", found.obj)
    if found is not None:
        return found
    waiter = getattr(task, "_fut_waiter", None)
    if isinstance(waiter, asyncio.Task):
        return Wait("task", f"task {waiter.get_name()}", waiter, waiter)
    inner = where(frames)
    if inner is not None and any(lib in inner.f_code.co_filename for lib in _SOCKET_LIBS):
        return Wait("socket", f"{inner.f_code.co_name}()")
    if waiter is not None:
        return Wait("future", _describe_future(waiter), waiter)
    return NOT_WAITING


def _describe_future(future: Any) -> str:
    """``Future (gather)``: the type, and the first callback's name when it tells more."""
    kind = type(future).__name__
    if kind == "_GatheringFuture":
        return "asyncio.gather(...)"
    callbacks = getattr(future, "_callbacks", None) or []
    for callback in callbacks[:1]:
        function = callback[0] if isinstance(callback, tuple) else callback
        name = getattr(function, "__qualname__", None)
        if name and "Task" not in name:
            return f"{kind} (then {name})"
    return kind
