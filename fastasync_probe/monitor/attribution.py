"""Turning a sampled stack into "which line blocked, in which request".

The watchdog samples the loop thread's stack (:func:`stack_of`) while a stall is in
progress. The innermost frame that belongs to the project (:class:`ProjectCode`: the
folders the caller names; without, any file that is not a library's; the probe itself
excluded) is the line
to blame; the request is the one whose task the loop is running, which the middleware
registered with its ASGI scope on the way in (:class:`RequestTasks`).
"""

from __future__ import annotations

import asyncio
import asyncio.events
import functools
import gc
import itertools
import os
import sys
import sysconfig
from collections import deque
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from types import FrameType
from typing import Any, NamedTuple

#: the probe's own code (monitor and middleware): it only passes control through, so it
#: is never the line to blame
_PROBE_DIR = str(Path(__file__).resolve().parent.parent) + os.sep
_MONITOR_DIR = _PROBE_DIR
#: asyncio's ``Handle._run``: frames outside it drive the loop (``asyncio.run``, the CLI
#: entry point) and are on the stack of every callback, so they are never to blame.
_CALLBACK_RUNNER = (str(Path(asyncio.events.__file__).resolve()), "_run")
_PROJECT_BASE = str(Path(_PROBE_DIR).parent) + os.sep
_PASS_THROUGH = (_PROBE_DIR,)


def _library_dirs() -> tuple[str, ...]:
    """The standard library's and the installed packages' folders, of this interpreter and
    of the one its virtual environment was made from."""
    found: set[str] = set()
    for scheme_vars in ({}, {"base": sys.base_prefix, "platbase": sys.base_exec_prefix}):
        paths = sysconfig.get_paths(vars=scheme_vars) if scheme_vars else sysconfig.get_paths()
        for key in ("stdlib", "platstdlib", "purelib", "platlib"):
            if paths.get(key):
                found.add(str(Path(paths[key]).resolve()) + os.sep)
    return tuple(sorted(found))


_LIBRARY_DIRS = _library_dirs()
#: the folders installers put packages in
_INSTALLED_PARTS = frozenset({"site-packages", "dist-packages"})


@functools.lru_cache(maxsize=4096)
def is_library_file(filename: str) -> bool:
    """True for code that is not the user's own: the standard library, anything installed
    (site-packages, dist-packages), frozen or generated modules (``<frozen ...>``)."""
    if not filename or filename.startswith("<"):
        return True
    if filename.startswith(_LIBRARY_DIRS):
        return True
    return bool(_INSTALLED_PARTS & set(Path(filename).parts))


@dataclass(frozen=True, slots=True)
class ProjectCode:
    """The code a stall may blame: the caller's own.

    With ``roots``, the code under those folders. Without (:data:`USER_CODE`, the default),
    every file that is not a library's: what a user's app is made of, wherever it lives.
    The probe itself (monitor and middleware) is never to blame: it only passes control
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
        """True for the project's code, the probe excluded."""
        if filename.startswith(_PASS_THROUGH):
            return False
        if self.roots:
            root = next((r for r in self.roots if filename.startswith(r)), None)
            # a virtual environment inside the project folder holds libraries, not its code
            return root is not None and not _INSTALLED_PARTS & set(
                Path(filename[len(root) :]).parts
            )
        return not is_library_file(filename)


#: every file that is not a library's: the default, for an app the probe knows nothing of
USER_CODE = ProjectCode(())


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


class RequestRef(NamedTuple):
    """The request a piece of work belongs to: its id and its ASGI scope (the route is read
    from the scope when asked, once routing has matched it). A named tuple: one is made per
    request, and a frozen dataclass's ``__init__`` took twice as long."""

    request_id: str
    scope: MutableMapping[str, Any]

    @property
    def route(self) -> str:
        return describe_scope(self.scope)

    @property
    def path(self) -> str:
        """The request's path as it came (``/products/2``)."""
        return str(self.scope.get("path", "?"))


#: a finished request, for victim lists: (request id, began, ended, method, path), in
#: ``perf_counter()`` time. A tuple of strings and floats, which the collector stops
#: tracking (and no route template worked out per request: that is left for the few a
#: stall names): 8,192 finished requests kept as objects (holding their scopes at first)
#: were promoted to the oldest generation and dropped again, request after request, and
#: the full collections that churn set off cost a fifth of a trivial route's throughput.
_Landed = tuple[str, float, float, str, str]


class RequestTasks:
    """The tasks that are serving a request, so a stack sample can be mapped to its route.

    The middleware registers the request's task with its ASGI scope; while the loop is
    stuck, the watchdog asks which task the loop is running (``asyncio.current_task(loop)``,
    a plain lookup that is safe from another thread under the GIL) and finds its request.
    The task book asks it which request the task creating a task serves. And it keeps
    when each request began and ended, so a stall can name its victims: the other
    requests that were in flight while the loop was stuck.
    """

    #: finished requests remembered for victim lists (a stall is published within a few
    #: milliseconds of its end; this covers seconds even at thousands of requests a second)
    LANDED_KEPT = 8192

    def __init__(self) -> None:
        #: each request's task: its request, when it began. (No context variable: setting
        #: one per request cost a trivial route 5 us under uvicorn, measured; the task
        #: book finds a new task's request through the task that creates it instead.)
        self._requests: dict[asyncio.Task[Any], tuple[RequestRef, float]] = {}
        self._ids = itertools.count(1)
        self._landed: deque[_Landed] = deque(maxlen=self.LANDED_KEPT)

    def enter(self, task: asyncio.Task[Any], scope: MutableMapping[str, Any]) -> None:
        """``task`` serves the request of ``scope`` (call it in that task)."""
        self._requests[task] = (RequestRef(f"r{next(self._ids)}", scope), perf_counter())

    def leave(self, task: asyncio.Task[Any]) -> None:
        """The request ``task`` served is over (call it in that task)."""
        entry = self._requests.pop(task, None)
        if entry is not None:
            ref, began = entry
            scope = ref.scope
            method = scope.get("method") or scope.get("type", "").upper()
            self._landed.append((ref.request_id, began, perf_counter(), method, ref.path))

    def ended_since(self, when: float) -> bool:
        """Whether a request ended after ``when`` (``perf_counter()`` time; from any
        thread: reading the deque's last item is one C call under the GIL)."""
        try:
            return self._landed[-1][2] > when
        except IndexError:
            return False

    def victims_of(
        self, start: float, end: float, culprit: str | None
    ) -> tuple[tuple[str, str, float], ...]:
        """The requests other than ``culprit`` that were in flight during [start, end]
        (``perf_counter()`` times), with the seconds of it each one spent waiting.

        Called from the watchdog thread: the copies below are single C calls under the
        GIL, so the loop thread adding or removing a request cannot tear them.
        """
        found: list[tuple[str, str, float]] = []
        for ref, began in list(self._requests.values()):
            waited = end - max(start, began)
            if waited > 0 and ref.request_id != culprit:
                found.append((ref.request_id, ref.route, waited))
        # finished requests are kept in the order they ended: only the newest few can
        # have ended after the stall began (the watchdog holds the GIL meanwhile: a walk
        # of all 8,192 took milliseconds from the loop, under load, stall after stall)
        for request_id, began, ended, method, path in reversed(list(self._landed)):
            if ended <= start:
                break
            waited = min(end, ended) - max(start, began)
            if waited > 0 and request_id != culprit:
                found.append((request_id, f"{method} {path}", waited))
        found.sort(key=lambda victim: int(victim[0][1:]))
        return tuple(found)

    def request_of(self, task: asyncio.Task[Any] | None) -> RequestRef | None:
        """The request ``task`` itself serves (None if it serves none)."""
        entry = self._requests.get(task) if task is not None else None
        return entry[0] if entry is not None else None

    def __len__(self) -> int:
        return len(self._requests)

    def route_of(self, task: asyncio.Task[Any] | None) -> str | None:
        """The request ``task`` is serving, described (None outside requests)."""
        ref = self.request_of(task)
        return describe_scope(ref.scope) if ref is not None else None


#: the same, remembered: the task inspector asks for the same few files hundreds of times
cached_short_path = functools.lru_cache(maxsize=4096)(short_path)


def scope_method(scope: MutableMapping[str, Any]) -> str:
    """``GET``, or ``WEBSOCKET`` for a WebSocket."""
    return str(scope.get("method") or scope.get("type", "").upper())


def describe_scope(scope: MutableMapping[str, Any]) -> str:
    """``GET /basics/async`` (route template when routing already matched)."""
    return f"{scope_method(scope)} {route_template(scope)}"


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
    request_id: str | None = None


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
    project: ProjectCode = USER_CODE,
    spawned_by: Callable[[asyncio.Task[Any]], RequestRef | None] | None = None,
) -> StackSample | None:
    """Sample ``thread_id``'s current stack (innermost first) and the request it serves
    (its own, or with ``spawned_by``, that of the request that created its task).

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
    ref = request_tasks.request_of(task)
    if ref is None and task is not None and spawned_by is not None:
        # a task the request started (a StreamingResponse's body runs in one) is the
        # request's work too
        ref = spawned_by(task)
    return StackSample(
        blamed=blamed or first_foreign,
        route=ref.route if ref is not None else None,
        stack=tuple(stack),
        request_id=ref.request_id if ref is not None else None,
    )
