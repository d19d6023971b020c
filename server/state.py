"""The app's typed state: what ``create_app`` and the lifespan open, what each pattern owns.

Starlette's ``app.state`` is an untyped bag; this object is the one thing kept in it.
The shell's resources are fields. A pattern's resources are one object of the pattern's
own type, provided by the pattern's router lifespan and read back by that type, so a
pattern that uses another's resource names it with a visible import
(``state.find(JobStore)``) rather than an attribute string.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar, cast

from starlette.applications import Starlette

from fastasync_probe.monitor import LoopMonitor
from server.blocking import BlockingSwitch
from server.patterns.basics.cpu_pool import CpuPool
from server.settings import Settings

T = TypeVar("T")

#: the one attribute of Starlette's ``app.state`` this package uses
_KEY = "fastasync"


class NotProvided(RuntimeError):
    """A resource was read before its owner's lifespan provided it (or after it closed)."""


class AppState:
    """Everything the app's routes share, typed."""

    def __init__(self, settings: Settings, blocking: BlockingSwitch) -> None:
        self.settings = settings
        self.blocking = blocking
        #: the URL the server answers on, once the runner knows it (None under a test client)
        self.base_url: str | None = None
        # opened by the app's lifespan (see the properties)
        self._monitor: LoopMonitor | None = None
        self._cpu_pool: CpuPool | None = None
        #: each pattern's resources, by their type
        self._resources: dict[type, object] = {}
        #: called as the server begins to stop, before uvicorn's grace period for open
        #: requests: a pattern whose requests wait on purpose ends them here
        self._on_stopping: list[Callable[[], object]] = []

    @property
    def monitor(self) -> LoopMonitor:
        """The monitor of the loop the app runs on (the lifespan starts it)."""
        if self._monitor is None:
            raise NotProvided("the loop monitor starts with the app's lifespan")
        return self._monitor

    @property
    def cpu_pool(self) -> CpuPool:
        """The lifespan-owned process pool for CPU work."""
        if self._cpu_pool is None:
            raise NotProvided("the CPU pool opens with the app's lifespan")
        return self._cpu_pool

    def open(self, monitor: LoopMonitor, cpu_pool: CpuPool) -> None:
        """The lifespan's shared resources are up."""
        self._monitor, self._cpu_pool = monitor, cpu_pool

    def provide(self, kind: type[T], value: T) -> T:
        """Keep ``value`` as the app's one ``kind`` (a pattern's lifespan calls this)."""
        self._resources[kind] = value
        return value

    @asynccontextmanager
    async def opened(
        self, kind: type[T], value: T, close: Callable[[], Awaitable[object]] | None = None
    ) -> AsyncIterator[T]:
        """``value`` as the app's ``kind`` for the block (a pattern's lifespan), closed with
        ``close`` when the block ends. It stays readable afterwards, closed: tests and
        tools read a resource's final state once the server has stopped."""
        self.provide(kind, value)
        try:
            yield value
        finally:
            if close is not None:
                await close()

    def on_stopping(self, hook: Callable[[], object]) -> None:
        """Call ``hook`` as the server begins to stop (before the grace for open requests)."""
        self._on_stopping.append(hook)

    def stopping(self) -> None:
        """The server begins to stop: call the hooks, once each."""
        hooks, self._on_stopping = self._on_stopping, []
        for hook in hooks:
            hook()

    def find(self, kind: type[T]) -> T | None:
        """The app's ``kind``, or ``None`` when its pattern is not mounted or not started."""
        return cast("T | None", self._resources.get(kind))

    def need(self, kind: type[T]) -> T:
        """The app's ``kind``; a clear error when it was never provided."""
        value = self.find(kind)
        if value is None:
            raise NotProvided(
                f"no {kind.__name__} here: its pattern's router is not mounted, "
                "or its lifespan has not run"
            )
        return value


def attach_state(app: Starlette, state: AppState) -> AppState:
    """Keep ``state`` as the app's one state object."""
    setattr(app.state, _KEY, state)
    return state


def state_of(app: Starlette) -> AppState:
    """The typed state of an app made by :func:`server.app.create_app`."""
    state = getattr(app.state, _KEY, None)
    if not isinstance(state, AppState):
        raise NotProvided("this app was not made by server.app.create_app")
    return state
