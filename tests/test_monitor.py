"""The loop monitor: stall accuracy and attribution over real HTTP, idle silence, lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import inspect
import threading
import time
from pathlib import Path

import httpx
import pytest
import textual

from explorer.context import ExplorerContext, counting_explorer_code
from fastasync_probe.monitor import LoopMonitor, MonitorConfig, Stall
from fastasync_probe.monitor.activity import LoopActivity
from fastasync_probe.monitor.attribution import ProjectCode, short_path
from fastasync_probe.monitor.records import LagStats, percentile
from server.patterns.basics import router as basics
from server.patterns.basics.work import crunch
from server.settings import SERVER_CODE, Settings
from tests.conftest import eventually


def line_of(func: object, needle: str) -> int:
    """The file line number of the first source line of ``func`` containing ``needle``."""
    lines, start = inspect.getsourcelines(func)  # type: ignore[arg-type]
    for offset, text in enumerate(lines):
        if needle in text:
            return start + offset
    raise AssertionError(f"{needle!r} not in {func}")


@pytest.mark.parametrize("delay", [0.020, 0.050, 0.200, 1.000])
async def test_time_sleep_in_async_handler_is_reported_exactly(
    client: httpx.AsyncClient, monitor: LoopMonitor, delay: float
) -> None:
    before = max((s.seq for s in monitor.stalls), default=0)
    # A collector pass inside the stall is CPU time the handler did not ask for: one that
    # walked a big heap (20 ms and more on a loaded machine) turned the sleep into "cpu".
    gc.collect()
    gc.disable()
    try:
        response = await client.get("/basics/blocking", params={"delay": delay})
    finally:
        gc.enable()
    assert response.status_code == 200
    slept_ms = response.json()["handler_ms"]  # the sleep as the handler itself timed it

    def mine() -> list[Stall]:
        return [s for s in monitor.stalls_after(before) if s.route == "GET /basics/blocking"]

    await eventually(lambda: bool(mine()))
    await asyncio.sleep(0.05)
    stalls = mine()
    assert len(stalls) == 1, monitor.stalls_after(before)
    stall = stalls[0]
    # The blocking call itself (off-CPU time) within 3 % of the sleep that really happened
    # (or 3 ms: off-CPU also counts time spent waiting for a core on a loaded machine,
    # 1.7 ms seen on CI), and never less than what was asked for.
    assert abs(stall.blocked_ms - slept_ms) <= max(0.03 * slept_ms, 3.0), (stall, slept_ms)
    assert stall.blocked_ms >= delay * 1000 * 0.99
    # The whole stall is the sleep plus the request's ordinary CPU work around it.
    assert stall.duration_ms >= stall.blocked_ms
    assert stall.duration_ms - stall.blocked_ms == pytest.approx(stall.cpu_ms, abs=0.01)
    assert stall.kind == "blocking"
    sleep_line = line_of(basics.blocking_sleep, "time.sleep(delay)")
    assert stall.location == f"server/patterns/basics/router.py:{sleep_line} in blocking_sleep"


async def test_cpu_work_on_the_loop_is_a_cpu_stall_at_the_loop_line(
    client: httpx.AsyncClient, monitor: LoopMonitor
) -> None:
    before = max((s.seq for s in monitor.stalls), default=0)
    response = await client.get("/basics/cpu", params={"n": 1_500_000})
    assert response.status_code == 200
    await eventually(lambda: any(s.route for s in monitor.stalls_after(before)))
    stall = next(s for s in monitor.stalls_after(before) if s.route)
    assert stall.kind == "cpu"
    assert stall.cpu_ms >= 0.5 * stall.duration_ms
    assert stall.route == "GET /basics/cpu"
    assert stall.location is not None
    assert stall.location.startswith("server/patterns/basics/work.py:")
    assert stall.location.endswith("in crunch")


async def test_no_stall_is_reported_while_idle(
    client: httpx.AsyncClient, monitor: LoopMonitor
) -> None:
    assert (await client.get("/monitor")).status_code == 200
    await asyncio.sleep(0.3)  # let startup work finish
    before = monitor.stall_count
    await asyncio.sleep(2.0)
    assert monitor.stall_count == before, monitor.stalls_after(0)
    lag = monitor.lag(window_s=2.0)
    assert lag.samples >= 50  # the sampler kept ticking (every 10 ms)
    assert lag.max < monitor.config.stall_threshold_s * 1000


async def test_lag_reflects_a_stall_and_utilization_is_a_share() -> None:
    monitor = LoopMonitor.for_loop(config=MonitorConfig(window_s=0.1))
    monitor.start()
    try:
        await asyncio.sleep(0.15)
        time.sleep(0.12)  # noqa: ASYNC251 - the stall under test
        await asyncio.sleep(0.25)
        assert monitor.lag(window_s=1.0).max >= 100
        utilization = monitor.utilization(window_s=0.4)
        assert utilization is not None
        assert 0.0 <= utilization <= 1.0
        busy = [w.utilization for w in monitor.windows if w.utilization is not None]
        assert max(busy) > 0.5  # the window with the 120 ms sleep was mostly busy
    finally:
        monitor.stop()


async def test_monitor_is_one_per_loop_and_stops_cleanly() -> None:
    loop = asyncio.get_running_loop()
    monitor = LoopMonitor.for_loop()
    assert LoopMonitor.for_loop(loop) is monitor
    selector = LoopActivity.selector_of(loop)
    assert selector is not None
    monitor.start()
    monitor.start()  # a second user shares it
    assert "select" in vars(selector)
    monitor.stop()
    assert monitor.running
    monitor.stop()
    assert not monitor.running
    assert "select" not in vars(selector)  # the selector is its own again
    names = {t.name for t in threading.enumerate()}
    assert "fastasync-loop-watchdog" not in names


async def test_a_stall_outside_any_request_blames_the_project_line() -> None:
    monitor = LoopMonitor.for_loop()
    monitor.start()
    try:
        await asyncio.sleep(0.05)
        crunch(600_000)  # CPU on the loop, from test code (not a project file)
        await asyncio.sleep(0.05)
        await eventually(lambda: monitor.stall_count > 0)
        stall = list(monitor.stalls)[-1]
        assert stall.route is None
        assert stall.location is not None
        assert stall.location.startswith("server/patterns/basics/work.py:")
    finally:
        monitor.stop()


def test_percentiles_use_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile([], 99) == 0.0
    stats = LagStats.of([3.0, 1.0, 2.0])
    assert (stats.p50, stats.max, stats.samples) == (2.0, 3.0, 3)


async def test_process_footprint_is_read_for_real(client: httpx.AsyncClient) -> None:
    import os

    first = (await client.get("/monitor/process")).json()
    assert first["pid"] == os.getpid()  # the server runs in the test's own process
    assert first["rss_bytes"] > 10 * 1024 * 1024
    assert first["peak_rss_bytes"] >= first["rss_bytes"]
    assert first["open_fds"] > 3  # stdio, the listening socket, this connection
    assert first["threads"] >= 2  # the loop's thread and the watchdog at least
    # a sleeping task on the loop is counted
    sleeper = asyncio.create_task(asyncio.sleep(5))
    try:
        second = (await client.get("/monitor/process")).json()
        assert second["asyncio_tasks"] >= first["asyncio_tasks"] + 1
    finally:
        sleeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sleeper


def test_the_caller_says_which_code_a_stall_may_blame(tmp_path: Path) -> None:
    own = tmp_path / "myproject"
    own.mkdir()
    code = ProjectCode.of(own)
    assert code.owns(str(own / "main.py"))
    assert not code.owns(str(tmp_path / "elsewhere.py"))
    # the monitor and the request middleware only pass control through: never to blame
    monitor_file = inspect.getfile(LoopMonitor)
    assert not code.with_folder(Path(monitor_file).parent).owns(monitor_file)
    assert not SERVER_CODE.owns(monitor_file)
    assert SERVER_CODE.owns(inspect.getfile(basics))
    # the server alone blames only its own code; the explorer adds its folder
    assert not SERVER_CODE.owns(inspect.getfile(ExplorerContext))
    explorer = counting_explorer_code(Settings()).monitor.project_code
    assert explorer.owns(inspect.getfile(ExplorerContext))
    assert explorer.owns(inspect.getfile(basics))


def test_a_stall_names_library_lines_from_their_package_even_with_a_venv_in_the_project() -> None:
    # .venv/ inside the project folder: textual's file is named from site-packages
    assert short_path(inspect.getfile(textual)) == "textual/__init__.py"
    assert short_path(inspect.getfile(basics)) == "server/patterns/basics/router.py"


def test_a_stall_reads_back_from_its_json() -> None:
    stall = Stall(
        seq=7,
        started_at=1_700_000_000.25,
        duration_ms=20.5,
        kind="blocking",
        location="server/patterns/basics/router.py:123 in blocking_sleep",
        route="GET /basics/blocking",
        cpu_ms=0.5,
        gc_ms=0.0,
        stack=("a.py:1 in f",),
    )
    again = Stall.from_dict(stall.as_dict())
    assert again.as_dict() == stall.as_dict()
    assert again.blocked_ms == pytest.approx(20.0)
    with pytest.raises(KeyError):
        Stall.from_dict({"seq": 1})


async def test_lag_counts_a_busy_loop_but_not_epolls_timeout_rounding() -> None:
    monitor = LoopMonitor(asyncio.get_running_loop(), MonitorConfig())
    monitor._measures_utilization = True
    activity = monitor._activity
    due = 0.0089
    # asleep in select() from 0 asking 8.905 ms: epoll really sleeps 10 ms (CPython rounds
    # to whole ms twice), so a wake at 10.0 ms is the rounding, not the loop held
    activity.slept_from, activity.slept_for, activity.busy_since = 0.0, 0.008905, 0.0100
    assert monitor._ready_at(due) == pytest.approx(0.0100)
    # woken later than the rounded timeout (the thread not scheduled): that part counts
    activity.busy_since = 0.0104
    assert monitor._ready_at(due) == pytest.approx(0.0100)
    # busy at the due time, select() entered only after it: all of it counts
    activity.slept_from, activity.slept_for, activity.busy_since = 0.0095, 0.0, 0.0096
    assert monitor._ready_at(due) == due
