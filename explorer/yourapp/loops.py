"""The view's live reads of the probe, each a loop a worker runs until it is cancelled.

A failed read never ends a loop: the problem is reported in one sentence and the read is
tried again a moment later (the app may be restarting, or busy in a long stall).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from explorer.yourapp.log_tail import LogTail
from explorer.yourapp.probe_client import ProbeSource
from explorer.yourapp.probe_records import MonitorReading, ProbeError

#: the latency bar's figures and the stall table refresh this often
MONITOR_HZ = 4.0
#: a probe that did not answer is asked again after this long
RETRY_S = 1.0

Problem = Callable[[str | None], None]


async def poll_monitor(
    source: ProbeSource,
    on_reading: Callable[[MonitorReading], None],
    on_problem: Problem,
    hz: float = MONITOR_HZ,
) -> None:
    """Read the monitor at ``hz``: each reading carries the stalls after the last one seen."""
    after = 0
    while True:
        try:
            reading = await source.monitor(after)
        except ProbeError as exc:
            on_problem(str(exc))
            await asyncio.sleep(RETRY_S)
            continue
        on_problem(None)
        if reading.stalls:
            after = max(after, *(stall.seq for stall in reading.stalls))
        on_reading(reading)
        await asyncio.sleep(1.0 / hz)


async def tail_log(tail: LogTail, on_lines: Callable[[list[str]], None], every_s: float) -> None:
    """Hand the log file's new lines to ``on_lines`` every ``every_s`` (read in a thread)."""
    while True:
        lines = await asyncio.to_thread(tail.read_new)
        if lines:
            on_lines(lines)
        await asyncio.sleep(every_s)
