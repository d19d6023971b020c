"""SVG snapshots of the shell and the Basics pane, with every live number frozen."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from textual.pilot import Pilot

from explorer.app import ExplorerApp
from explorer.panes.basics import STYLE_BY_KEY, BasicsPane, BatchPlan, BatchSummary
from explorer.widgets.timeline import Bar, Timeline
from explorer.widgets.top_bar import TopBar
from server.monitor import LagStats, LagWindow, MonitorSnapshot, Stall
from server.settings import Settings

T0 = 1_795_000_000.0  # a fixed moment (the inspector shows local times of day)


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The stall inspector prints local times: pin the zone so the SVG is the same anywhere."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


FROZEN_STALLS = tuple(
    Stall(
        seq=i + 1,
        started_at=T0 + 0.21 * i,
        duration_ms=200.9 + i,
        kind="blocking",
        location="server/routes/basics.py:77 in async_sleep",
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


async def show_frozen_blocking_run(pilot: Pilot[Any], monitor: FrozenMonitor) -> None:
    app = pilot.app
    assert isinstance(app, ExplorerApp)
    while app.context is None or not app.query(BasicsPane):
        await pilot.pause(0.02)
    await pilot.pause(0.1)
    app.query_one(TopBar).url = "http://127.0.0.1:8000"
    app.blocking_switch.set(True)
    monitor.freeze()
    app.refresh_gauges()
    await pilot.pause(0.05)
    app.clear_notifications()  # toasts come and go; the inspector rows stay
    pane = app.query_one(BasicsPane)
    starts = (0.0, 0.004, 0.006)
    ends = (0.211, 0.415, 0.619)
    app.query_one(Timeline).bars = tuple(
        Bar(f"#{i + 1}", start, end, "ok", "loop")
        for i, (start, end) in enumerate(zip(starts, ends, strict=True))
    )
    plan = BatchPlan(STYLE_BY_KEY["async"], 3, {"delay": 0.2})
    pane.show_summary(BatchSummary(plan, 0.619, 205.2, FROZEN_STALLS, 0, True))
    await pilot.pause(0.1)


def test_basics_pane_after_a_blocking_run(snap_compare: Any) -> None:
    monitor = FrozenMonitor()
    app = ExplorerApp(Settings(port=0), monitor_source=monitor)

    async def run_before(pilot: Pilot[Any]) -> None:
        await show_frozen_blocking_run(pilot, monitor)

    assert snap_compare(app, terminal_size=(120, 40), run_before=run_before)
