"""Dependencies shared by the routers (``Annotated`` aliases, FastAPI style).

All ``async def``: FastAPI runs a plain ``def`` dependency on the threadpool, which for
these attribute reads would cost two thread hops per request (measured: ~2,500 vs ~3,850
requests/s on /basics/async).
"""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends
from starlette.requests import HTTPConnection

from server.blocking import BlockingSwitch
from server.monitor import LoopMonitor
from server.patterns.basics.cpu_pool import CpuPool


async def get_monitor(conn: HTTPConnection) -> LoopMonitor:
    """The monitor of the loop this app runs on (started by the lifespan)."""
    return cast(LoopMonitor, conn.app.state.monitor)


async def get_blocking_switch(conn: HTTPConnection) -> BlockingSwitch:
    """The app-wide blocking-mode switch."""
    return cast(BlockingSwitch, conn.app.state.blocking)


async def blocking_enabled(switch: Annotated[BlockingSwitch, Depends(get_blocking_switch)]) -> bool:
    """Whether handlers should take their pitfall form for this request."""
    return switch.enabled


async def get_cpu_pool(conn: HTTPConnection) -> CpuPool:
    """The lifespan-owned process pool for CPU work."""
    return cast(CpuPool, conn.app.state.cpu_pool)


MonitorDep = Annotated[LoopMonitor, Depends(get_monitor)]
BlockingSwitchDep = Annotated[BlockingSwitch, Depends(get_blocking_switch)]
BlockingMode = Annotated[bool, Depends(blocking_enabled)]
CpuPoolDep = Annotated[CpuPool, Depends(get_cpu_pool)]
