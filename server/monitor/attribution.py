"""Turning a sampled stack into "which line blocked, in which request".

The watchdog samples the loop thread's stack with ``sys._current_frames()`` while a stall
is in progress. The innermost frame that belongs to this project (``server/`` or
``explorer/``, the monitor itself excluded) is the line to blame; the request is found by
walking outwards to the frame of :class:`RequestFrames`' middleware, which registered its
ASGI scope on the way in.
"""

from __future__ import annotations

import asyncio.events
import os
import sys
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

_MONITOR_DIR = str(Path(__file__).resolve().parent) + os.sep
#: asyncio's ``Handle._run``: frames outside it drive the loop (``asyncio.run``, the CLI
#: entry point) and are on the stack of every callback, so they are never to blame.
_CALLBACK_RUNNER = (str(Path(asyncio.events.__file__).resolve()), "_run")
_SERVER_DIR = Path(__file__).resolve().parent.parent


def _project_roots() -> tuple[str, ...]:
    roots = [str(_SERVER_DIR) + os.sep]
    explorer_dir = _SERVER_DIR.parent / "explorer"
    if explorer_dir.is_dir():
        roots.append(str(explorer_dir) + os.sep)
    return tuple(roots)


PROJECT_ROOTS = _project_roots()
_PROJECT_BASE = str(_SERVER_DIR.parent) + os.sep


@dataclass(frozen=True, slots=True)
class CodeLocation:
    """One frame's position: absolute file, line and function."""

    filename: str
    lineno: int
    function: str

    @property
    def display_path(self) -> str:
        """Path relative to the project base (``server/routes/basics.py``), else short."""
        return short_path(self.filename)

    def __str__(self) -> str:
        return f"{self.display_path}:{self.lineno} in {self.function}"


def short_path(filename: str) -> str:
    """A readable path: relative to the project, to a sys.path entry, or unchanged."""
    if filename.startswith(PROJECT_ROOTS):
        return filename[len(_PROJECT_BASE) :]
    best = ""
    for entry in sys.path:
        if entry and filename.startswith(entry + os.sep) and len(entry) > len(best):
            best = entry
    return filename[len(best) + 1 :] if best else filename


#: Project code that only passes control through (never the line to blame).
_PASS_THROUGH = (_MONITOR_DIR, str(_SERVER_DIR / "middleware.py"))


def is_project_file(filename: str) -> bool:
    """True for this project's code, excluding the monitor and its middleware."""
    return filename.startswith(PROJECT_ROOTS) and not filename.startswith(_PASS_THROUGH)


class RequestFrames:
    """Frames of in-flight requests, so a stack sample can be mapped to its route.

    The middleware registers its own coroutine frame with the ASGI scope; a stalled
    handler's stack passes through that frame. Lookups by frame identity are safe from the
    watchdog thread under the GIL.
    """

    def __init__(self) -> None:
        self._scopes: dict[FrameType, MutableMapping[str, Any]] = {}

    def enter(self, frame: FrameType, scope: MutableMapping[str, Any]) -> None:
        self._scopes[frame] = scope

    def leave(self, frame: FrameType) -> None:
        self._scopes.pop(frame, None)

    def __len__(self) -> int:
        return len(self._scopes)

    def route_of(self, frame: FrameType | None) -> str | None:
        """Walk outwards from ``frame``; describe the first registered request found."""
        while frame is not None:
            scope = self._scopes.get(frame)
            if scope is not None:
                return describe_scope(scope)
            frame = frame.f_back
        return None


def describe_scope(scope: MutableMapping[str, Any]) -> str:
    """``GET /basics/async`` (route template when routing already matched)."""
    route = scope.get("route")
    path = getattr(route, "path", None) or scope.get("path", "?")
    method = scope.get("method") or scope.get("type", "").upper()
    return f"{method} {path}"


#: Process-wide: frames are unique across loops and threads.
request_frames = RequestFrames()


@dataclass(frozen=True, slots=True)
class StackSample:
    """What one look at the loop thread's stack found."""

    blamed: CodeLocation | None
    route: str | None
    stack: tuple[CodeLocation, ...]


def sample_thread(thread_id: int, max_depth: int = 40) -> StackSample | None:
    """Sample ``thread_id``'s current stack (innermost first)."""
    frame = sys._current_frames().get(thread_id)
    if frame is None:
        return None
    top = frame
    stack: list[CodeLocation] = []
    blamed: CodeLocation | None = None
    first_foreign: CodeLocation | None = None
    inside_callback = True
    while frame is not None and len(stack) < max_depth:
        code = frame.f_code
        location = CodeLocation(code.co_filename, frame.f_lineno, code.co_name)
        stack.append(location)
        if (code.co_filename, code.co_name) == _CALLBACK_RUNNER:
            inside_callback = False
        if inside_callback:
            if blamed is None and is_project_file(code.co_filename):
                blamed = location
            if first_foreign is None and not code.co_filename.startswith(_MONITOR_DIR):
                first_foreign = location
        frame = frame.f_back
    return StackSample(
        blamed=blamed or first_foreign,
        route=request_frames.route_of(top),
        stack=tuple(stack),
    )
