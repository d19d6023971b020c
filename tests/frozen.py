"""Frozen figures for snapshot tests: a monitor that stands still, fixed stalls, a clock.

Snapshots must come out the same on any machine, so every live number a screen shows is
replaced by one of these (the pane's own tests freeze the rest of their figures).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

from explorer import registry
from explorer.pane import PatternPane
from explorer.registry import PANES
from fastasync_probe.monitor import LagStats, LagWindow, MonitorSnapshot, Stall
from server.patterns.basics import router as basics

T0 = 1_795_000_000.0  # a fixed moment (the inspector shows local times of day)


def key_of(pane: type[PatternPane]) -> str:
    """The digit that opens ``pane`` (its place in the menu)."""
    key = registry.key_of(PANES.index(pane))
    assert key is not None, f"{pane.TITLE} has no key"
    return key


def _sleep_line() -> int:
    """Where ``async_sleep`` calls ``time.sleep`` today: frozen figures, real line."""
    lines, start = inspect.getsourcelines(basics.async_sleep)
    return start + next(i for i, text in enumerate(lines) if "time.sleep(" in text)


FROZEN_STALLS = tuple(
    Stall(
        seq=i + 1,
        started_at=T0 + 0.21 * i,
        duration_ms=200.9 + i,
        kind="blocking",
        location=f"server/patterns/basics/router.py:{_sleep_line()} in async_sleep",
        route="GET /basics/async",
        cpu_ms=0.8 + i,
    )
    for i in range(3)
)


@dataclass
class FrozenMonitor:
    """Stands in for the live monitor: empty at startup, then fixed figures."""

    stalls: tuple[Stall, ...] = ()
    windows: tuple[LagWindow, ...] = ()
    lag_stats: LagStats = field(default_factory=LagStats)

    def snapshot(self, window_s: float | None = None, windows: int = 60) -> MonitorSnapshot:
        return MonitorSnapshot(
            lag=self.lag_stats,
            utilization=0.42 if self.windows else None,
            stall_count=len(self.stalls),
            stall_total_ms=sum(s.duration_ms for s in self.stalls),
            windows=self.windows,
            stalls=self.stalls,
        )

    def stalls_after(self, seq: int) -> list[Stall]:
        return [s for s in self.stalls if s.seq > seq]

    def lag(self, window_s: float | None = None) -> LagStats:
        return self.lag_stats

    def freeze(self) -> None:
        self.stalls = FROZEN_STALLS
        self.windows = tuple(
            LagWindow(i, T0 + i / 4, LagStats(max=205.0 if 20 <= i < 24 else 0.4), 0.1)
            for i in range(60)
        )
        self.lag_stats = LagStats(p50=0.2, p95=1.1, p99=187.3, max=205.2, samples=1000)
