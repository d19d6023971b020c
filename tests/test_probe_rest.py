"""The probe at rest: an app with nothing in flight costs few wake-ups, and loses nothing.

With nothing in flight the probe's sampler ticks every ``rest_look_s`` and its watchdog
waits for the loop to wake it (selector) or looks that often (heartbeats, where a
request arriving rings it). The idle CPU this saves is a figure of ``bench --probe``;
these tests hold what it must not cost: a stall that begins at rest is still timed
exactly and named on the selector method, within the rest precision on heartbeats, and a
stall that begins as a request arrives within the ordinary precision.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time

from fastasync_probe.asgi import PROBE_CONFIG
from fastasync_probe.monitor import LoopMonitor, MonitorConfig, Stall
from fastasync_probe.monitor.attribution import request_tasks

REST_S = PROBE_CONFIG.rest_look_s or 0.0


def block_the_loop(seconds: float, held: list[float]) -> None:
    """A callback that blocks (the stall to time), and how long the loop really was held."""
    began = time.perf_counter()
    time.sleep(seconds)  # culprit
    held.append((time.perf_counter() - began) * 1000.0)


async def rest_then_block(
    config: MonitorConfig, seconds: float, *, ring: bool = False
) -> tuple[LoopMonitor, list[float], list[Stall], int]:
    """Start a monitor, let the app rest, then block from a timer (after a ring, if asked):
    the monitor, the time held, the stalls naming this file, lag samples taken at rest."""
    monitor = LoopMonitor.for_loop(config=config)
    monitor.start()
    held: list[float] = []
    loop = asyncio.get_running_loop()
    try:
        await asyncio.sleep(0.3)
        rest_samples = monitor.lag(window_s=1.0).samples
        await asyncio.sleep(1.0)
        rest_samples = monitor.lag(window_s=1.0).samples
        if ring:  # as the probe's middleware does: ring, then the request is in flight
            monitor.wake()
            task = asyncio.current_task()
            assert task is not None
            request_tasks.enter(task, {"type": "http", "method": "GET", "path": "/slow"})
            try:
                block_the_loop(seconds, held)
                await asyncio.sleep(0.4)
            finally:
                request_tasks.leave(task)
        else:
            loop.call_soon(block_the_loop, seconds, held)
        await asyncio.sleep(0.4)  # published at the watchdog's next look
        mine = [s for s in monitor.stalls if s.location and "test_probe_rest.py" in s.location]
        return monitor, held, mine, rest_samples
    finally:
        monitor.stop()


def test_at_rest_the_sampler_slows_and_a_stall_is_still_timed_exactly_and_named() -> None:
    monitor, held, stalls, rest_samples = asyncio.run(rest_then_block(PROBE_CONFIG, 0.05))
    assert monitor.method == "selector"
    # every 200 ms at rest, not every 20 ms (a loaded machine may squeeze in a few more)
    assert rest_samples <= 1.0 / REST_S + 3
    assert len(stalls) == 1, stalls
    stall = stalls[0]
    assert (stall.location or "").endswith("in block_the_loop")
    assert abs(stall.blocked_ms - held[0]) <= max(0.03 * held[0], 3.0), (stall, held)


def test_heartbeats_at_rest_time_a_stall_within_the_rest_precision() -> None:
    config = dataclasses.replace(PROBE_CONFIG, method="heartbeat")
    monitor, held, stalls, _ = asyncio.run(rest_then_block(config, 0.3))
    assert monitor.method == "heartbeat"
    assert monitor.rest_precision_ms == REST_S * 1000.0 / 2
    assert len(stalls) == 1, stalls
    # within the rest precision of how long the loop was held, and a little more for the
    # loop's own work around the sleep on a loaded machine
    slack = monitor.rest_precision_ms
    assert held[0] - slack - 1 <= stalls[0].duration_ms <= held[0] + slack + 5, (stalls, held)


def test_a_request_arriving_at_rest_rings_so_its_stall_gets_the_ordinary_precision() -> None:
    config = dataclasses.replace(PROBE_CONFIG, method="heartbeat")
    monitor, held, stalls, _ = asyncio.run(rest_then_block(config, 0.08, ring=True))
    assert len(stalls) == 1, stalls
    slack = monitor.precision_ms
    assert held[0] - slack - 1 <= stalls[0].duration_ms <= held[0] + slack + 5, (stalls, held)


def test_the_explorers_own_monitor_never_rests() -> None:
    assert MonitorConfig().rest_look_s is None


async def _looks_while_busy(seconds: float) -> tuple[float, int]:
    """A loop that enters select() at every iteration for ``seconds``, with no request in
    flight (work between requests looks like that): the watchdog's looks per second, and
    the loop's iterations."""
    monitor = LoopMonitor.for_loop(config=PROBE_CONFIG)
    monitor.start()
    watchdog = monitor._watchdog
    assert watchdog is not None
    looks = 0
    observe = watchdog._observe

    def counted() -> None:
        nonlocal looks
        looks += 1
        observe()

    watchdog._observe = counted  # type: ignore[method-assign]
    iterations = 0
    try:
        await asyncio.sleep(0.3)  # settle: the watchdog rests
        looks = 0
        began = time.perf_counter()
        while time.perf_counter() - began < seconds:
            # a ready callback and a zero timer: select() runs with timeout 0 each time
            await asyncio.sleep(0)
            iterations += 1
        elapsed = time.perf_counter() - began
    finally:
        monitor.stop()
    return looks / elapsed, iterations


def test_a_busy_loop_between_requests_does_not_ring_the_watchdog_at_every_iteration() -> None:
    # On one core the watchdog's every wake-up is paid by the loop: this is where ringing
    # at every iteration cost 18,000 wake-ups a second (the loop thread and the watchdog,
    # which inherits the affinity, share core 0 while the test runs).
    cores = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cores)})
    try:
        looks_per_s, iterations = asyncio.run(_looks_while_busy(1.0))
    finally:
        os.sched_setaffinity(0, cores)
    assert iterations > 5_000  # the loop really did go round (and into select) that often
    # an ordinary look every 10 ms, at most a rest and its ring between two: ~200 a second;
    # ringing at every iteration would be as many looks as iterations
    assert looks_per_s < 1_000, (looks_per_s, iterations)
