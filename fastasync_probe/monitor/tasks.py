"""The task book: where each task on a loop came from, and the exceptions nobody read.

Installed per loop by the :class:`LoopMonitor` (``start``), uninstalled by its ``stop``,
which restores the loop's task factory, its exception handler and ``asyncio.Lock``. While
installed it costs, per task created, one walk of a few frames and one dictionary entry
with a plain weak reference; per lock acquire and release, one property call
(:mod:`.lock_owners`). Everything else (the await chains, the wait-for graph) is read only
when a snapshot is asked for (:mod:`.task_snapshot`): nothing runs on a timer.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from . import lock_owners
from .attribution import RequestRef, cached_short_path, request_tasks
from .task_snapshot import take
from .weak_loop import WeakLoop

log = logging.getLogger("fastasync.monitor")

_ASYNCIO_DIR = os.path.dirname(os.path.abspath(asyncio.__file__)) + os.sep
_MONITOR_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_NEVER_RETRIEVED = "Task exception was never retrieved"

TaskFactory = Callable[..., "asyncio.Future[Any]"]
ExceptionHandler = Callable[[asyncio.AbstractEventLoop, dict[str, Any]], object]


@dataclass(slots=True)
class Origin:
    """Where and when a task was created, and for which request."""

    created: float  # time.monotonic()
    filename: str | None
    lineno: int
    request: RequestRef | None

    @property
    def site(self) -> str | None:
        return f"{cached_short_path(self.filename)}:{self.lineno}" if self.filename else None


#: per file: whether it is asyncio's or this monitor's (remembered: checked per task)
_passing: dict[str, bool] = {}


def creation_site(depth: int = 2, limit: int = 12) -> tuple[str | None, int]:
    """The innermost caller outside asyncio and this monitor: who created the task."""
    frame = sys._getframe(depth)
    while frame is not None and limit > 0:
        filename = frame.f_code.co_filename
        passing = _passing.get(filename)
        if passing is None:
            passing = _passing[filename] = filename.startswith((_ASYNCIO_DIR, _MONITOR_DIR))
        if not passing:
            return filename, frame.f_lineno
        frame = frame.f_back  # type: ignore[assignment]
        limit -= 1
    return None, 0


#: what the book keeps per task: (weak reference, created, filename, line, request)
_Entry = tuple["weakref.ref[asyncio.Future[Any]]", float, str | None, int, RequestRef | None]
_ref = weakref.ref
_monotonic = time.monotonic
_current_task = asyncio.current_task
_request_of = request_tasks.request_of


class TaskBook:
    """One per loop (:meth:`for_loop`); ``install``/``uninstall`` are refcounted."""

    #: the book is pruned of finished tasks when it reaches this size, or twice the size
    #: it had after the last prune
    PRUNE_FLOOR = 1024

    _by_loop: ClassVar[weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, TaskBook]] = (
        weakref.WeakKeyDictionary()
    )

    @classmethod
    def for_loop(cls, loop: asyncio.AbstractEventLoop | None = None) -> TaskBook:
        """The loop's book, created on first use."""
        loop = loop or asyncio.get_running_loop()
        book = cls._by_loop.get(loop)
        if book is None:
            book = cls._by_loop[loop] = cls(loop)
        return book

    def __init__(self, loop: asyncio.AbstractEventLoop, max_failures: int = 50) -> None:
        self._loop = WeakLoop(loop, "this book")
        self._users = 0
        #: per task id: a weak reference to the task and where it came from (see
        #: :meth:`origin_of`)
        self._origins: dict[int, _Entry] = {}
        self._prune_at = self.PRUNE_FLOOR
        self.never_retrieved: deque[dict[str, Any]] = deque(maxlen=max_failures)
        #: the server's tasks still pending when it last stopped (see :meth:`note_shutdown`)
        self.pending_at_shutdown: list[dict[str, Any]] = []
        self.owners_known = False
        self.installed_at = time.monotonic()
        #: coroutines (qualified names) of the host that shares the loop, such as the
        #: explorer's hundreds of Textual message pumps: ``GET /monitor/tasks`` counts them
        #: and does not read their chains, unless asked to (``fold=false``)
        self.host_coroutines: frozenset[str] = frozenset()
        #: per task id: (id of what it waits on, when a snapshot first saw that wait)
        self.waits_seen: dict[int, tuple[int, float]] = {}
        self._previous_factory: TaskFactory | None = None
        self._previous_handler: ExceptionHandler | None = None
        self._factory: TaskFactory | None = None
        self._handler: ExceptionHandler | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop this book belongs to (held weakly: see :class:`WeakLoop`)."""
        return self._loop()

    @property
    def installed(self) -> bool:
        return self._users > 0

    # -- install ---------------------------------------------------------------------------

    def install(self) -> None:
        """Start recording (on the loop's thread)."""
        self._users += 1
        if self._users > 1:
            return
        loop = self.loop
        self.installed_at = now = time.monotonic()
        for task in asyncio.all_tasks(loop):  # older than the book: age counts from now
            if self.origin_of(task) is None:
                self._origins[id(task)] = (weakref.ref(task), now, None, 0, None)
        self._previous_factory = loop.get_task_factory()
        self._factory = self._make_task
        loop.set_task_factory(self._factory)
        self._previous_handler = loop.get_exception_handler()
        self._handler = self._on_exception
        loop.set_exception_handler(self._handler)
        self.owners_known = lock_owners.install()
        if not self.owners_known:
            log.info("asyncio.Lock keeps no _locked attribute here: lock owners unknown")

    def uninstall(self) -> None:
        """Stop recording; the last user puts back what was there."""
        if self._users == 0:
            return
        self._users -= 1
        if self._users:
            return
        loop = self.loop
        if loop.get_task_factory() is self._factory:
            loop.set_task_factory(self._previous_factory)
        else:
            log.warning("the task factory was replaced meanwhile: left as it is")
        if loop.get_exception_handler() is self._handler:
            loop.set_exception_handler(self._previous_handler)
        else:
            log.warning("the exception handler was replaced meanwhile: left as it is")
        if self.owners_known:
            lock_owners.uninstall()
        self.owners_known = False
        self._factory = self._handler = None
        self._previous_factory = self._previous_handler = None

    def release(self) -> None:
        """Put back what was there whoever still uses the book (its loop has closed)."""
        if self._users:
            self._users = 1
            self.uninstall()

    # -- recording (on the loop, per task) -------------------------------------------------

    def _make_task(
        self, loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any
    ) -> asyncio.Future[Any]:
        previous = self._previous_factory
        if previous is None:
            task: asyncio.Future[Any] = asyncio.Task(coro, loop=loop, **kwargs)
        else:  # whatever it was (an eager factory, say), it still decides
            task = previous(loop, coro, **kwargs)
        filename, lineno = creation_site()
        origins = self._origins
        # the request: the one the creating task serves, or the one it was created for
        request: RequestRef | None = None
        parent = _current_task(loop)
        if parent is not None:
            request = _request_of(parent)
            if request is None:
                entry = origins.get(id(parent))
                if entry is not None and entry[0]() is parent:
                    request = entry[4]
        origins[id(task)] = (_ref(task), _monotonic(), filename, lineno, request)
        if len(origins) >= self._prune_at:
            self._prune()
        return task

    def _prune(self) -> None:
        """Forget the tasks that are gone. Amortized: the next prune waits until the book
        has doubled (a weak reference with a callback per task, as a WeakKeyDictionary
        keeps, cost a Python call at each task's creation and another at its death)."""
        self._origins = {key: entry for key, entry in self._origins.items() if entry[0]()}
        self._prune_at = max(self.PRUNE_FLOOR, 2 * len(self._origins))

    def origin_of(self, task: object) -> Origin | None:
        """Where ``task`` came from (None if the book never saw it)."""
        entry = self._origins.get(id(task))
        if entry is None or entry[0]() is not task:  # an id reused by a newer object
            return None
        return Origin(entry[1], entry[2], entry[3], entry[4])

    def __len__(self) -> int:
        """Entries kept: live tasks, and finished ones until the next prune."""
        return len(self._origins)

    def recorded_tasks(self) -> list[asyncio.Future[Any]]:
        """Every task the book recorded that still exists (finished ones too)."""
        alive = (entry[0]() for entry in list(self._origins.values()))
        return [task for task in alive if task is not None]

    def _on_exception(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        self.note_failure(context)
        previous = self._previous_handler
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    def note_failure(self, context: dict[str, Any]) -> None:
        """Keep a loop exception ``context`` if it is "Task exception was never retrieved"
        (for code that handles the report itself and still wants the inspector to see it)."""
        if context.get("message") == _NEVER_RETRIEVED:
            self.never_retrieved.append(self.describe_failure(context))

    def describe_failure(self, context: dict[str, Any]) -> dict[str, Any]:
        """A ``Task exception was never retrieved`` report, as JSON."""
        task = context.get("future")
        error = context.get("exception")
        origin = self.origin_of(task) if isinstance(task, asyncio.Future) else None
        coro = task.get_coro() if isinstance(task, asyncio.Task) else None
        return {
            "name": task.get_name() if isinstance(task, asyncio.Task) else repr(task)[:80],
            "coro": getattr(coro, "__qualname__", None),
            "exception": repr(error)[:300],
            "created_at": origin.site if origin else None,
            "route": origin.request.route if origin and origin.request else None,
            "at": time.time(),
        }

    # -- shutdown --------------------------------------------------------------------------

    def note_shutdown(self, owns: Callable[[str], bool]) -> list[dict[str, Any]]:
        """The tasks still pending now that were created by a request or by code that
        ``owns`` (the server's), kept for the next snapshot and returned."""
        current = asyncio.current_task(self.loop)
        pending: list[dict[str, Any]] = []
        for task in asyncio.all_tasks(self.loop):
            origin = self.origin_of(task)
            if task is current or origin is None:
                continue
            if origin.request is None and not (origin.filename and owns(origin.filename)):
                continue
            coro = task.get_coro()
            pending.append(
                {
                    "id": id(task),
                    "name": task.get_name(),
                    "coro": getattr(coro, "__qualname__", type(coro).__name__),
                    "created_at": origin.site,
                    "route": origin.request.route if origin.request else None,
                    "age_s": round(time.monotonic() - origin.created, 3),
                }
            )
        self.pending_at_shutdown = pending
        return pending

    def snapshot(
        self, long_wait_s: float = 1.0, limit: int = 200, fold: frozenset[str] = frozenset()
    ) -> dict[str, Any]:
        """Every task on the loop, flagged, as JSON (:func:`.task_snapshot.take`); tasks
        whose coroutine's qualified name is in ``fold`` are only counted."""
        return take(self, long_wait_s, limit, fold)
