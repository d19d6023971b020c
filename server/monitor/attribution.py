"""Turning a sampled stack into "which line blocked, in which request".

The watchdog samples the loop thread's stack (:func:`stack_of`) while a stall is in
progress. The innermost frame that belongs to the project (:class:`ProjectCode`: the
folders the caller names, ``server/`` by default; the monitor itself excluded) is the line
to blame; the request is the one whose task the loop is running, which the middleware
registered with its ASGI scope on the way in (:class:`RequestTasks`).
"""

from __future__ import annotations

import asyncio
import asyncio.events
import contextlib
import functools
import gc
import itertools
import os
import sys
from collections.abc import MutableMapping
from contextvars import ContextVar, Token
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

_MONITOR_DIR = str(Path(__file__).resolve().parent) + os.sep
#: asyncio's ``Handle._run``: frames outside it drive the loop (``asyncio.run``, the CLI
#: entry point) and are on the stack of every callback, so they are never to blame.
_CALLBACK_RUNNER = (str(Path(asyncio.events.__file__).resolve()), "_run")
_SERVER_DIR = Path(__file__).resolve().parent.parent


_PROJECT_BASE = str(_SERVER_DIR.parent) + os.sep
#: Project code that only passes control through (never the line to blame).
_PASS_THROUGH = (_MONITOR_DIR, str(_SERVER_DIR / "middleware.py"))


@dataclass(frozen=True, slots=True)
class ProjectCode:
    """The folders whose code a stall may blame (the caller says which: its own code).

    The monitor and the request middleware are never to blame: they only pass control
    through.
    """

    roots: tuple[str, ...]

    @classmethod
    def of(cls, *folders: Path | str) -> ProjectCode:
        """The code under ``folders``."""
        return cls(tuple(str(Path(folder).resolve()) + os.sep for folder in folders))

    def with_folder(self, folder: Path | str) -> ProjectCode:
        """This code and the code under ``folder``."""
        root = str(Path(folder).resolve()) + os.sep
        return self if root in self.roots else ProjectCode((*self.roots, root))

    def owns(self, filename: str) -> bool:
        """True for the project's code, the monitor and its middleware excluded."""
        return filename.startswith(self.roots) and not filename.startswith(_PASS_THROUGH)


#: the server package's own code: what a stall blames unless the caller says more
SERVER_CODE = ProjectCode.of(_SERVER_DIR)


@dataclass(frozen=True, slots=True)
class CodeLocation:
    """One frame's position: absolute file, line and function."""

    filename: str
    lineno: int
    function: str

    @property
    def display_path(self) -> str:
        """Path relative to the project base (``server/patterns/basics/router.py``), else short."""
        return short_path(self.filename)

    def __str__(self) -> str:
        return f"{self.display_path}:{self.lineno} in {self.function}"


def short_path(filename: str) -> str:
    """A readable path: relative to the closest of the project's folder and the sys.path
    entries (``server/app.py``, ``textual/app.py`` even with a venv inside the project), or
    unchanged."""
    best = ""
    for entry in (_PROJECT_BASE, *(entry + os.sep for entry in sys.path if entry)):
        if filename.startswith(entry) and len(entry) > len(best):
            best = entry
    return filename[len(best) :] if best else filename


@dataclass(frozen=True, slots=True)
class RequestRef:
    """The request a piece of work belongs to: its id and its ASGI scope (the route is read
    from the scope when asked, once routing has matched it)."""

    request_id: str
    scope: MutableMapping[str, Any]

    @property
    def route(self) -> str:
        return describe_scope(self.scope)


#: the request being served in this context: set by :meth:`RequestTasks.enter`, so every
#: task created while serving it (which copies the context) knows its request
current_request: ContextVar[RequestRef | None] = ContextVar("fastasync_request", default=None)


class RequestTasks:
    """The tasks that are serving a request, so a stack sample can be mapped to its route.

    The middleware registers the request's task with its ASGI scope; while the loop is
    stuck, the watchdog asks which task the loop is running (``asyncio.current_task(loop)``,
    a plain lookup that is safe from another thread under the GIL) and finds its request.
    It also sets :data:`current_request`, which the task inspector reads when a task is
    created.
    """

    def __init__(self) -> None:
        self._scopes: dict[asyncio.Task[Any], MutableMapping[str, Any]] = {}
        self._requests: dict[asyncio.Task[Any], tuple[RequestRef, Token[RequestRef | None]]] = {}
        self._ids = itertools.count(1)

    def enter(self, task: asyncio.Task[Any], scope: MutableMapping[str, Any]) -> None:
        """``task`` serves the request of ``scope`` (call it in that task)."""
        self._scopes[task] = scope
        ref = RequestRef(f"r{next(self._ids)}", scope)
        self._requests[task] = (ref, current_request.set(ref))

    def leave(self, task: asyncio.Task[Any]) -> None:
        """The request ``task`` served is over (call it in that task)."""
        self._scopes.pop(task, None)
        entry = self._requests.pop(task, None)
        if entry is not None:
            # left from another context: the task's context ends with it anyway
            with contextlib.suppress(ValueError):
                current_request.reset(entry[1])

    def request_of(self, task: asyncio.Task[Any] | None) -> RequestRef | None:
        """The request ``task`` itself serves (None if it serves none)."""
        entry = self._requests.get(task) if task is not None else None
        return entry[0] if entry is not None else None

    def __len__(self) -> int:
        return len(self._scopes)

    def route_of(self, task: asyncio.Task[Any] | None) -> str | None:
        """The request ``task`` is serving, described (None outside requests)."""
        scope = self._scopes.get(task) if task is not None else None
        return describe_scope(scope) if scope is not None else None


#: the same, remembered: the task inspector asks for the same few files hundreds of times
cached_short_path = functools.lru_cache(maxsize=4096)(short_path)


def describe_scope(scope: MutableMapping[str, Any]) -> str:
    """``GET /basics/async`` (route template when routing already matched)."""
    method = scope.get("method") or scope.get("type", "").upper()
    return f"{method} {route_template(scope)}"


def route_template(scope: MutableMapping[str, Any]) -> str:
    """The matched route's template, whole (``/correctness/deadlock/transfer``), else the path.

    A route of a router included by another router keeps a template relative to the router
    that holds it (FastAPI >= 0.16x keeps routers nested); its prefixes are the literal
    start of the path that its own pattern does not cover.
    """
    path: str = scope.get("path", "?")
    route = scope.get("route")
    template = getattr(route, "path", None)
    if not isinstance(template, str) or not template:
        return path
    pattern = getattr(route, "path_regex", None)
    if pattern is None or pattern.match(path):
        return template
    for cut in range(1, len(path)):
        if path[cut] == "/" and pattern.match(path[cut:]):
            return path[:cut] + template
    return template


#: Process-wide: a task belongs to one loop.
request_tasks = RequestTasks()


@dataclass(frozen=True, slots=True)
class StackSample:
    """What one look at the loop thread's stack found."""

    blamed: CodeLocation | None
    route: str | None
    stack: tuple[CodeLocation, ...]


def stack_of(thread_id: int, max_depth: int = 40) -> list[CodeLocation] | None:
    """``thread_id``'s stack, innermost first (None if that thread is not there).

    Read from the watchdog thread, as safely as CPython allows. ``sys._current_frames()``
    hands out frame objects of a thread stopped at a GIL switch, and walking ``f_back``
    materializes frame objects for its live frames. If the garbage collector starts in the
    watchdog thread during that walk (the walk allocates, and any allocation can start it)
    CPython 3.11 crashed: a segfault, seen in about one run in two of the code-view test
    and never with the collector held off. So the walk runs with the collector paused
    (only if it was on), allocates little and drops every frame reference before
    returning. ``faulthandler`` would avoid frame objects altogether, but it dumps every
    thread as text: 2.5 ms a sample with 20 threads against 4 µs here, too slow for
    stalls measured to 3 %.
    """
    collecting = gc.isenabled()
    if collecting:
        gc.disable()
    try:
        frame = sys._current_frames().get(thread_id)
        if frame is None:
            return None
        raw: list[tuple[str, int, str]] = []
        # a torn read can hand back anything: stop at whatever is not a frame
        while isinstance(frame, FrameType) and len(raw) < max_depth:
            code = frame.f_code
            # f_lineno is None in a frame between two lines: the function's first line then
            raw.append((code.co_filename, frame.f_lineno or code.co_firstlineno, code.co_name))
            frame = frame.f_back
        del frame
    finally:
        if collecting:
            gc.enable()
    return [CodeLocation(*entry) for entry in raw]


def sample_thread(
    thread_id: int,
    loop: asyncio.AbstractEventLoop | None = None,
    max_depth: int = 40,
    project: ProjectCode = SERVER_CODE,
) -> StackSample | None:
    """Sample ``thread_id``'s current stack (innermost first) and the request it serves.

    The line to blame is the innermost frame of ``project``'s code, else the innermost
    frame outside the monitor.
    """
    stack = stack_of(thread_id, max_depth)
    if stack is None:
        return None
    blamed: CodeLocation | None = None
    first_foreign: CodeLocation | None = None
    inside_callback = True
    for location in stack:
        if (location.filename, location.function) == _CALLBACK_RUNNER:
            inside_callback = False
        if inside_callback:
            if blamed is None and project.owns(location.filename):
                blamed = location
            if first_foreign is None and not location.filename.startswith(_MONITOR_DIR):
                first_foreign = location
    task = asyncio.current_task(loop) if loop is not None else None
    return StackSample(
        blamed=blamed or first_foreign,
        route=request_tasks.route_of(task),
        stack=tuple(stack),
    )
