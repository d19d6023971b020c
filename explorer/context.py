"""What a pane may use: the UI's HTTP client, the monitor and the blocking switch."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import httpx

from fastasync_probe.monitor import LagStats, MonitorSnapshot, Stall
from server.blocking import BlockingSwitch
from server.settings import Settings, default_redis_url

#: the explorer's own code: a stall in a pane's client code blames its line too
EXPLORER_DIR = Path(__file__).resolve().parent


def counting_explorer_code(settings: Settings) -> Settings:
    """``settings`` whose monitor also blames the explorer's code (it shares the loop)."""
    project = settings.monitor.project_code.with_folder(EXPLORER_DIR)
    return replace(settings, monitor=replace(settings.monitor, project_code=project))


class MonitorSource(Protocol):
    """Read side of :class:`fastasync_probe.monitor.LoopMonitor` (tests freeze it)."""

    def snapshot(self, window_s: float | None = None, windows: int = 60) -> MonitorSnapshot: ...

    def stalls_after(self, seq: int) -> list[Stall]: ...

    def lag(self, window_s: float | None = None) -> LagStats: ...


@dataclass
class ExplorerContext:
    """Handed to every pane: panes reach the server only over ``http`` (real loopback)."""

    http: httpx.AsyncClient
    monitor: MonitorSource
    blocking: BlockingSwitch
    #: seconds after a response before its stalls are surely published by the watchdog
    stall_settle_s: float = 0.01
    #: the server's Redis (the queue pane's server child must use the same one)
    redis_url: str = field(default_factory=default_redis_url)

    async def stalls_since(self, began_wall: float) -> list[Stall]:
        """The stalls that began at or after ``began_wall`` (``time.time()``), oldest first.

        Waits ``stall_settle_s`` first: the watchdog publishes a stall just after the loop
        recovers, so a run that has just ended would otherwise miss its own.
        """
        await asyncio.sleep(self.stall_settle_s)
        # a millisecond of slack: the stall's start and the run's are read on two clocks
        since = began_wall - 0.001
        return [stall for stall in self.monitor.stalls_after(0) if stall.started_at >= since]


def ui_client(base_url: str) -> httpx.AsyncClient:
    """The UI's client for its own server: generous limits (panes run load), long reads."""
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(60.0, connect=5.0),
        limits=httpx.Limits(max_connections=200, max_keepalive_connections=100),
    )
