"""Dependencies shared by the routers (``Annotated`` aliases over the typed state).

All ``async def``: FastAPI runs a plain ``def`` dependency on the threadpool, which for
these attribute reads would cost two thread hops per request (measured: ~2,500 vs ~3,850
requests/s on /basics/async).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

from fastapi import Depends
from starlette.requests import HTTPConnection

from fastasync_probe.monitor import LoopMonitor
from server.blocking import BlockingSwitch
from server.patterns.basics.cpu_pool import CpuPool
from server.settings import Settings
from server.state import AppState, state_of

T = TypeVar("T")


async def get_state(conn: HTTPConnection) -> AppState:
    """The app's typed state."""
    return state_of(conn.app)


StateDep = Annotated[AppState, Depends(get_state)]


async def get_settings(state: StateDep) -> Settings:
    """How the app was started."""
    return state.settings


async def get_monitor(state: StateDep) -> LoopMonitor:
    """The monitor of the loop this app runs on (started by the lifespan)."""
    return state.monitor


async def get_blocking_switch(state: StateDep) -> BlockingSwitch:
    """The app-wide blocking-mode switch."""
    return state.blocking


async def blocking_enabled(state: StateDep) -> bool:
    """Whether handlers should take their pitfall form for this request."""
    return state.blocking.enabled


async def get_cpu_pool(state: StateDep) -> CpuPool:
    """The lifespan-owned process pool for CPU work."""
    return state.cpu_pool


def provided(kind: type[T]) -> Callable[[HTTPConnection], Awaitable[T]]:
    """A dependency that returns the app's ``kind`` (provided by its pattern's lifespan).

    Call it once per kind, at module level, so FastAPI caches it per request::

        JobStoreDep = Annotated[JobStore, Depends(provided(JobStore))]
    """

    async def dependency(conn: HTTPConnection) -> T:
        return state_of(conn.app).need(kind)

    dependency.__name__ = f"get_{kind.__name__}"
    dependency.__doc__ = f"The app's {kind.__name__}, provided by its pattern's lifespan."
    return dependency


SettingsDep = Annotated[Settings, Depends(get_settings)]
MonitorDep = Annotated[LoopMonitor, Depends(get_monitor)]
BlockingSwitchDep = Annotated[BlockingSwitch, Depends(get_blocking_switch)]
BlockingMode = Annotated[bool, Depends(blocking_enabled)]
CpuPoolDep = Annotated[CpuPool, Depends(get_cpu_pool)]
