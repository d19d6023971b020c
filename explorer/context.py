"""What a pane may use: the UI's HTTP client, the monitor and the blocking switch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import httpx

from server.blocking import BlockingSwitch
from server.monitor import LagStats, MonitorSnapshot, Stall


class MonitorSource(Protocol):
    """Read side of :class:`server.monitor.LoopMonitor` (tests freeze it)."""

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
