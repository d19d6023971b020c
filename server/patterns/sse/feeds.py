"""What feeds the SSE bus, and the books the ``sse`` routes keep on their generators.

``SseHub`` is opened by the ``sse`` router's lifespan. It owns:

- the :class:`~server.patterns.sse.bus.EventBus`;
- three pump tasks: the ticker (``tick`` events at an interval the API can change), the
  stall pump (the LoopMonitor's stalls as ``stall`` events) and the job pump (the job
  store's changes as ``job`` events);
- the counts ``/sse/stats`` reports: SSE responses open right now, and the producer
  tasks the pitfall leaves behind (bounded by ``MAX_LEAKED``, cancelled at shutdown).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from fastasync_probe.monitor import LoopMonitor
from server.patterns.sse.bus import EventBus
from server.patterns.tasks.jobs import JobStore

log = logging.getLogger("fastasync.sse")

#: the bus ticker's interval bounds (seconds) and default
TICK_MIN_S = 0.05
TICK_MAX_S = 10.0
TICK_DEFAULT_S = 1.0
#: how often the stall pump reads the monitor
STALL_POLL_S = 0.25
#: leaked producer tasks the pitfall may leave running at once; beyond, it answers 503
MAX_LEAKED = 64
#: each leaked producer's queue: nobody reads it, so it fills and then drops
LEAK_QUEUE = 100
#: ticker streams whose books ``/sse/stats`` lists (the newest), so a client finds its own
TICKER_BOOKS = 16


@dataclass(eq=False)
class TickerBooks:
    """One ticker response's books: is its client gone, and what was made for nobody since.

    The same counting runs in both forms of the ticker, so "0 ticks for nobody" in the
    right form is a measurement, not an assumption.
    """

    stream: int
    #: set when the response has ended (the client left, or the ticker ran out)
    gone: bool = False
    #: ticks made after the client had gone
    ticks_for_nobody: int = 0
    #: the pitfall's producer task (the right form has none: the generator ticks itself)
    producer: asyncio.Task[None] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "stream": self.stream,
            "gone": self.gone,
            "ticks_for_nobody": self.ticks_for_nobody,
            "producer_running": self.producer is not None and not self.producer.done(),
        }


def tick_value(n: int) -> float:
    """Tick ``n``'s value: a pure function of ``n``, so a resumed ticker continues exactly."""
    return round(100 + 10 * math.sin(n / 10) + 2 * math.sin(n / 3.7), 3)


class SseHub:
    """The bus, its pumps, and the live-generator books."""

    def __init__(self, monitor: LoopMonitor | None, jobs: JobStore | None) -> None:
        self.bus = EventBus()
        self.tick_interval_s = TICK_DEFAULT_S
        self._tick_changed = asyncio.Event()
        self._monitor = monitor
        self._jobs = jobs
        self._pumps: set[asyncio.Task[None]] = set()
        #: SSE responses from their start to the end of their teardown
        self.streams = 0
        self.streams_started = 0
        self.streams_finished = 0
        #: the pitfall's producer tasks: kept here only so shutdown can cancel them
        self.leaked: set[asyncio.Task[None]] = set()
        #: ticks those producers made for a client that was no longer there
        self.unread_ticks = 0
        #: the newest ticker streams' books (the response header X-Ticker-Stream names one)
        self.tickers: deque[TickerBooks] = deque(maxlen=TICKER_BOOKS)
        self._tickers_opened = 0

    def start(self) -> None:
        self._spawn(self._ticker(), "sse-ticker")
        if self._monitor is not None:
            self._spawn(self._stall_pump(self._monitor), "sse-stalls")
        if self._jobs is not None:
            self._spawn(self._job_pump(self._jobs), "sse-jobs")

    async def close(self) -> None:
        """End the feeds, then cancel and await every task this hub knows of."""
        self.bus.close()
        tasks = [*self._pumps, *self.leaked]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.leaked.clear()

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._pumps.add(task)
        task.add_done_callback(self._pump_done)

    def _pump_done(self, task: asyncio.Task[None]) -> None:
        self._pumps.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("SSE pump %s failed: %r", task.get_name(), task.exception())

    # -- the ticker -----------------------------------------------------------------------

    def set_tick_interval(self, seconds: float) -> None:
        self.tick_interval_s = seconds
        self._tick_changed.set()  # the ticker rearms now, not after the old interval

    async def _ticker(self) -> None:
        n = 0
        while True:
            self._tick_changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.tick_interval_s):
                    await self._tick_changed.wait()
                    continue
            n += 1
            self.bus.publish("tick", {"n": n, "value": tick_value(n)})

    # -- the app's own activity -----------------------------------------------------------

    async def _stall_pump(self, monitor: LoopMonitor) -> None:
        # Stalls are recorded by the watchdog thread; reading them from here keeps every
        # bus operation on the loop. Start after the ones already there: they are history.
        last = max((s.seq for s in monitor.stalls_after(0)), default=0)
        while True:
            await asyncio.sleep(STALL_POLL_S)
            for stall in monitor.stalls_after(last):
                last = stall.seq
                self.bus.publish("stall", stall.as_dict() | {"stack": stall.stack[-3:]})

    async def _job_pump(self, jobs: JobStore) -> None:
        updates = jobs.subscribe()
        try:
            while True:
                job = await updates.get()
                self.bus.publish("job", job.model_dump())
        finally:
            jobs.unsubscribe(updates)

    # -- the generators' books ------------------------------------------------------------

    def stream_started(self) -> None:
        self.streams += 1
        self.streams_started += 1

    def stream_finished(self) -> None:
        self.streams -= 1
        self.streams_finished += 1

    def open_ticker(self) -> TickerBooks:
        """Books for a new ticker response."""
        self._tickers_opened += 1
        books = TickerBooks(self._tickers_opened)
        self.tickers.append(books)
        return books

    def tick_made(self, books: TickerBooks) -> None:
        """A ticker made a tick: counted against it if its client has gone."""
        if books.gone:
            books.ticks_for_nobody += 1
            self.unread_ticks += 1

    def adopt_leak(self, task: asyncio.Task[None]) -> None:
        """Track a pitfall producer weakly in spirit: only to bound it and end it at exit."""
        self.leaked.add(task)
        task.add_done_callback(self.leaked.discard)

    def stats(self) -> dict[str, Any]:
        bus = self.bus
        return {
            "streams": self.streams,
            "streams_started": self.streams_started,
            "streams_finished": self.streams_finished,
            "leaked_producers": len(self.leaked),
            "leaked_cap": MAX_LEAKED,
            "unread_ticks": self.unread_ticks,
            "tickers": [books.as_dict() for books in self.tickers],
            "subscribers": len(bus.subscribers),
            "subscribers_by_topic": bus.topic_counts(),
            "delivered": sum(s.delivered for s in bus.subscribers),
            "published": dict(bus.published),
            "last_id": bus.event_id(bus.last_seq),
            "ring": {
                "capacity": bus.capacity,
                "oldest_seq": bus.oldest_seq,
                "last_seq": bus.last_seq,
            },
            "tick_interval_s": self.tick_interval_s,
        }
