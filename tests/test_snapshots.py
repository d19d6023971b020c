"""SVG snapshots of the shell and the Basics pane, with every live number frozen."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from rich.text import Text
from textual.pilot import Pilot
from textual.widgets import Select

from explorer.app import ExplorerApp
from explorer.panes.base import PatternPane
from explorer.panes.basics import STYLE_BY_KEY, BasicsPane, BatchPlan, BatchSummary
from explorer.panes.cache import CachePane, RunRow
from explorer.panes.concurrency import ConcurrencyPane
from explorer.panes.db import DbPane
from explorer.panes.sse import SsePane
from explorer.panes.stream import StreamPane, Transfer
from explorer.panes.tasks import TasksPane
from explorer.panes.ws import WsPane
from explorer.registry import PANES
from explorer.widgets.timeline import Bar, Timeline
from explorer.widgets.top_bar import TopBar
from explorer.widgets.ws_figures import BotFigures, BotFiguresView
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


def key_of(pane: type[PatternPane]) -> str:
    """The digit that opens ``pane`` (its place in the menu)."""
    return str(PANES.index(pane) + 1)


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


FROZEN_RACE = {
    "strategy": "race",
    "effective": "race",
    "blocking_mode": False,
    "wall_ms": 212.4,
    "tasks": [
        {
            "index": 0,
            "label": "up-0",
            "start_ms": 0.3,
            "end_ms": 212.1,
            "state": "cancelled",
            "error": "CancelledError: lost the race",
            "finally_ms": 212.3,
        },
        {
            "index": 1,
            "label": "up-1",
            "start_ms": 0.4,
            "end_ms": 151.8,
            "state": "ok",
            "error": None,
            "finally_ms": 151.9,
        },
        {
            "index": 2,
            "label": "up-2",
            "start_ms": 0.5,
            "end_ms": 212.2,
            "state": "cancelled",
            "error": "CancelledError: lost the race",
            "finally_ms": 212.4,
        },
        {
            "index": 3,
            "label": "up-3",
            "start_ms": 0.6,
            "end_ms": 96.0,
            "state": "failed",
            "error": "HTTPStatusError: upstream up-3 failed (simulated)",
            "finally_ms": 96.1,
        },
    ],
    "ok": 1,
    "failed": 1,
    "cancelled": 2,
    "winner": 1,
    "completion_order": [3, 1],
    "error": None,
    "note": "up-1 won after 152 ms; the two losers were cancelled and their finally "
    "blocks ran within 1 ms.",
}


def test_concurrency_pane_after_a_race(snap_compare: Any, tmp_path: Path) -> None:
    monitor = FrozenMonitor()
    app = ExplorerApp(Settings(port=0, data_dir=tmp_path), monitor_source=monitor)

    async def run_before(pilot: Pilot[Any]) -> None:
        assert isinstance(pilot.app, ExplorerApp)
        while not pilot.app.query(ConcurrencyPane):
            await pilot.pause(0.02)
        await pilot.press(key_of(ConcurrencyPane))
        pilot.app.query_one(TopBar).url = "http://127.0.0.1:8000"
        pane = pilot.app.query_one(ConcurrencyPane)
        pane.strategy_key = "race"
        pane.query_one(Select).value = "race"
        pane.report = FROZEN_RACE
        await pilot.pause(0.1)

    assert snap_compare(app, terminal_size=(120, 40), run_before=run_before)


def frozen_job(job_id: int, kind: str, state: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": job_id,
        "kind": kind,
        "origin": "background",
        "state": state,
        "created_at": None,
        "started_at": None,
        "finished_at": None,
        "duration_ms": extra.get("duration_ms"),
        "error": extra.get("error"),
        "request_id": "r1",
        "response_sent_ms": extra.get("after"),
    }


def test_tasks_pane_with_a_failed_job(snap_compare: Any, tmp_path: Path) -> None:
    app = ExplorerApp(Settings(port=0, data_dir=tmp_path), monitor_source=FrozenMonitor())

    async def run_before(pilot: Pilot[Any]) -> None:
        assert isinstance(pilot.app, ExplorerApp)
        while not pilot.app.query(TasksPane):
            await pilot.pause(0.02)
        await pilot.press(key_of(TasksPane))
        pilot.app.query_one(TopBar).url = "http://127.0.0.1:8000"
        pane = pilot.app.query_one(TasksPane)
        while not pane.connected:
            await pilot.pause(0.02)
        for job in (
            frozen_job(1, "sleep", "done", duration_ms=500.4, after=0.6),
            frozen_job(
                2,
                "fail",
                "failed",
                duration_ms=501.0,
                after=501.3,
                error="ValueError: simulated failure in job 2",
            ),
            frozen_job(3, "sleep", "running", after=1002.0),
        ):
            pane.post_message(TasksPane.StreamEvent("job", job))
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=(120, 40), run_before=run_before)


FROZEN_CACHE_STATS = {
    "size": 3,
    "maxsize": 8,
    "hits": 12,
    "misses": 23,
    "coalesced": 19,
    "expired": 1,
    "evictions": 4,
    "errors": 0,
    "in_flight": 0,
    "single_flight": True,
    "upstream_calls": 263,
}


def test_cache_pane_after_a_stampede_and_a_client_run(snap_compare: Any, tmp_path: Path) -> None:
    app = ExplorerApp(Settings(port=0, data_dir=tmp_path), monitor_source=FrozenMonitor())

    async def run_before(pilot: Pilot[Any]) -> None:
        assert isinstance(pilot.app, ExplorerApp)
        while not pilot.app.query(CachePane):
            await pilot.pause(0.02)
        await pilot.press(key_of(CachePane))
        pilot.app.query_one(TopBar).url = "http://127.0.0.1:8000"
        pane = pilot.app.query_one(CachePane)
        pane.post_message(
            CachePane.DemoDone(
                "stampede",
                [
                    RunRow(
                        "stampede ×20",
                        "single flight",
                        "1 upstream call",
                        312.4,
                        "1 miss, 19 coalesced",
                    ),
                    RunRow(
                        "stampede ×20",
                        "no single flight",
                        "20 upstream calls",
                        348.0,
                        "20 misses",
                        ok=False,
                    ),
                ],
                Text("frozen"),
            )
        )
        pane.post_message(
            CachePane.DemoDone(
                "hanging",
                [RunRow("hang 3.0 s", "timeout 0.5 s", "504", 503.2, "")],
                Text("frozen"),
            )
        )
        pane.last_demo = "clients"
        pane.post_message(
            CachePane.DemoDone(
                "clients",
                [
                    RunRow(
                        "clients ×100",
                        "shared",
                        "612 req/s",
                        163.4,
                        "TCP opened 0 · seen 10",
                    ),
                    RunRow(
                        "clients ×100",
                        "per-request",
                        "38 req/s",
                        2639.4,
                        "TCP opened 100 · seen 100",
                        ok=False,
                    ),
                ],
                Text("shared/per-request: 16.1× the requests/s · connections opened 0 vs 100"),
            )
        )
        # the pane reads the real (empty) stats after each run; freeze them once it has
        await pilot.pause(0.6)
        pane.stats = FROZEN_CACHE_STATS
        await pilot.pause(0.1)

    assert snap_compare(app, terminal_size=(120, 40), run_before=run_before)


FROZEN_BOTS = BotFiguresView(
    target=100,
    connected=100,
    msgs_in_per_s=0.0,
    msgs_out_per_s=0.0,
    p50_ms=2210.4,
    p99_ms=6120.9,
    drops=1,
    closed_by_server=0,
    stalled=True,
    mode="naive",
    queued_kib=0.0,
    naive_waiting_s=6.2,
    last_drop="stalled: send timeout: one send waited over 2 s",
)


def test_ws_pane_bots_stalled_by_the_naive_broadcast(snap_compare: Any, tmp_path: Path) -> None:
    app = ExplorerApp(Settings(port=0, data_dir=tmp_path), monitor_source=FrozenMonitor())

    async def run_before(pilot: Pilot[Any]) -> None:
        assert isinstance(pilot.app, ExplorerApp)
        while not pilot.app.query(WsPane):
            await pilot.pause(0.02)
        await pilot.press(key_of(WsPane))
        pilot.app.query_one(TopBar).url = "http://127.0.0.1:8000"
        pane = pilot.app.query_one(WsPane)
        await pilot.click("#pane-ws #tab-bots")
        pilot.app.blocking_switch.set(True)
        pane.figures_timer.pause()
        pane.figures_view = FROZEN_BOTS
        pane.query_one(BotFigures).show(FROZEN_BOTS)
        for line in (
            "bots: connecting 100 to /ws/chat/bots",
            "bots: 100 connected, chatting at 50 msg/s of 4096 chars",
            "stalled client: joined, and will never read",
        ):
            pane.say(line)
        await pilot.pause(0.2)
        pilot.app.clear_notifications()
        await pilot.pause(0.1)

    assert snap_compare(app, terminal_size=(120, 40), run_before=run_before)


FROZEN_SSE_STATS = {
    "streams": 21,
    "subscribers": 21,
    "last_id": "5eed00-212",
    "leaked_producers": 3,
    "unread_ticks": 184,
}


def test_sse_pane_after_a_resume(snap_compare: Any, tmp_path: Path) -> None:
    app = ExplorerApp(Settings(port=0, data_dir=tmp_path), monitor_source=FrozenMonitor())

    async def run_before(pilot: Pilot[Any]) -> None:
        assert isinstance(pilot.app, ExplorerApp)
        while not pilot.app.query(SsePane):
            await pilot.pause(0.02)
        await pilot.press(key_of(SsePane))
        pilot.app.query_one(TopBar).url = "http://127.0.0.1:8000"
        pane = pilot.app.query_one(SsePane)
        pane.workers.cancel_group(pane, "sse-stats")  # frozen figures from here on
        await pilot.pause(0.05)
        events = [("open", "", "")]
        events += [
            ("tick", f"5eed00-{n}", f'{{"n":{n - 100},"value":{100 + n % 7}.5}}')
            for n in (201, 202, 203)
        ]
        events += [("closed", "", ""), ("open", "5eed00-203", "")]
        events += [
            ("tick", f"5eed00-{n}", f'{{"n":{n - 100},"value":{100 + n % 7}.5}}')
            for n in (204, 205, 206)
        ]
        events.append(("heartbeat", "", '{"at": 1795000000.0}'))
        for event, event_id, data in events:
            pane.post_message(SsePane.FeedEvent(event, event_id, data))
        pane.server = FROZEN_SSE_STATS
        pane.swarm.open, pane.swarm.delivered = 20, 4_000
        pane.swarm.lags_ms = [0.8] * 98 + [3.5, 4.1]
        await pilot.pause(0.4)

    assert snap_compare(app, terminal_size=(120, 40), run_before=run_before)


def test_stream_pane_mid_download(snap_compare: Any, tmp_path: Path) -> None:
    app = ExplorerApp(Settings(port=0, data_dir=tmp_path), monitor_source=FrozenMonitor())

    async def run_before(pilot: Pilot[Any]) -> None:
        assert isinstance(pilot.app, ExplorerApp)
        while not pilot.app.query(StreamPane):
            await pilot.pause(0.02)
        await pilot.press(key_of(StreamPane))
        pilot.app.query_one(TopBar).url = "http://127.0.0.1:8000"
        pane = pilot.app.query_one(StreamPane)
        pane.workers.cancel_group(pane, "stream-stats")
        await pilot.pause(0.05)
        pane.transfer = Transfer(
            "sample-1GiB-5eed0000.bin",
            1024**3,
            received=400 * 1024**2,
            started=10.0,
            finished=12.0,
            outcome="cancelled: the server stops at its next chunk",
        )
        pane.rss_at_start = 80 * 1024**2
        pane.server = {
            "rss_bytes": 83 * 1024**2,
            "downloads_active": 0,
            "downloads_aborted": 1,
            "open_fds": 17,
            "uploads_stored": 0,
        }
        pane.post_message(
            StreamPane.Done("generated sample-1GiB-5eed0000.bin (1,073,741,824 bytes)")
        )
        pane.post_message(StreamPane.Done("download sample-1GiB-5eed0000.bin: cancelled"))
        await pilot.pause(0.4)

    assert snap_compare(app, terminal_size=(120, 40), run_before=run_before)


FROZEN_DB_STATUS = {
    "state": "ready",
    "backend": "postgresql",
    "driver": "asyncpg",
    "orm": "postgresql+asyncpg",
    "location": "postgresql://postgres@127.0.0.1:5432/test",
    "requested": "postgresql://postgres@127.0.0.1:5432/test",
    "fallback_reason": None,
    "error": None,
    "seed_progress": 1.0,
    "rows": {"users": 200, "orders": 2000, "posts": 500, "comments": 3000},
    "seeded_now": False,
    "pool": {
        "size": 10,
        "in_use": 1,
        "idle": 9,
        "waiters": 0,
        "opened": 10,
        "acquire_timeout_s": 2.0,
    },
    "orm_pool": {"size": 5, "checked_out": 0, "commits": 3, "rollbacks": 1},
    "per_request_opened": 0,
    "sync_sqlite_file": "/data/explorer.sqlite3",
}

FROZEN_DASHBOARD = {
    "mode": "one_connection",
    "effective": "one_connection",
    "backend": "postgresql",
    "latency_ms": 50.0,
    "wall_ms": 51.9,
    "queries": [
        {"name": "users", "start_ms": 0.2, "end_ms": 51.4, "value": 200, "error": None},
        *(
            {
                "name": name,
                "start_ms": 0.3,
                "end_ms": 0.4,
                "value": None,
                "error": "InterfaceError: cannot perform operation: another operation is in "
                "progress",
            }
            for name in ("paid_cents", "posts", "comments", "top_customer")
        ),
    ],
    "ok": 1,
    "failed": 4,
    "error": "InterfaceError: cannot perform operation: another operation is in progress",
    "note": "gather on one connection: 4 of 5 queries failed with the driver's own error. A "
    "connection (and a session) runs one query at a time; take one per query from the pool.",
}


def test_db_pane_after_gather_on_one_connection(snap_compare: Any, tmp_path: Path) -> None:
    app = ExplorerApp(Settings(port=0, data_dir=tmp_path), monitor_source=FrozenMonitor())

    async def run_before(pilot: Pilot[Any]) -> None:
        assert isinstance(pilot.app, ExplorerApp)
        while not pilot.app.query(DbPane):
            await pilot.pause(0.02)
        await pilot.press(key_of(DbPane))
        pilot.app.query_one(TopBar).url = "http://127.0.0.1:8000"
        pane = pilot.app.query_one(DbPane)
        while pane.status is None or pane.status.get("state") != "ready":
            await pilot.pause(0.02)
        # Stop the live status poll, so the frozen status below stays on screen.
        pilot.app.workers.cancel_group(pane, "db-status")
        await pilot.pause(0.05)
        pane.action_key = "one_connection"
        pane.query_one(Select).value = "one_connection"
        pane.post_message(DbPane.StatusUpdate(FROZEN_DB_STATUS))
        pane.post_message(DbPane.ActionDone("one_connection", Text(), FROZEN_DASHBOARD))
        pilot.app.set_focus(None)  # no blinking cursor in the picture
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=(120, 40), run_before=run_before)
