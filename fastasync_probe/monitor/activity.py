"""Busy/idle bookkeeping of one event loop, measured from inside its selector.

An asyncio selector loop alternates between waiting in ``selector.select()`` (idle) and
running ready callbacks (busy). Wrapping ``select`` gives the exact start and end of every
busy stretch at the cost of two ``perf_counter()`` calls per loop iteration. That is what
makes stall durations exact (not rounded to a heartbeat period) and what loop utilization
(Node's ELU) is computed from.
"""

from __future__ import annotations

import asyncio
import contextlib
import selectors
import threading
from collections import deque
from collections.abc import Callable
from time import perf_counter, thread_time
from typing import Any


class LoopActivity:
    """Shared state written by the loop thread and read by the watchdog thread.

    Fields are plain floats/ints: single attribute reads and writes are atomic under the
    GIL, and the watchdog only ever reads them.
    """

    def __init__(self, long_span_s: float) -> None:
        self.long_span_s = long_span_s
        #: perf_counter() when the loop last left select(); None while it waits in select().
        self.busy_since: float | None = perf_counter()
        #: perf_counter() when the loop last entered select(), and the timeout it asked for
        self.slept_from = self.busy_since
        self.slept_for: float | None = None
        #: number of select() calls so far; identifies the current busy stretch.
        self.iteration = 0
        #: total seconds spent waiting in select().
        self.idle_total = 0.0
        #: loop-thread CPU time when the current busy stretch began
        self.cpu_at_busy_start = thread_time()
        #: completed busy stretches of at least long_span_s: (start, end, iteration, cpu_s).
        #: cpu_s is the loop thread's CPU time in the stretch; the rest of it was spent
        #: off-CPU (sleeping, waiting on I/O or a lock): that splits a stall exactly.
        self.long_spans: deque[tuple[float, float, int, float]] = deque(maxlen=1024)
        self._selector: selectors.BaseSelector | None = None
        #: True while the watchdog rests until the loop wakes (see :meth:`rest`)
        self.resting = False
        #: held while nobody rang: the resting watchdog waits to acquire it
        self._bell = threading.Lock()
        self._bell.acquire()

    # -- resting (a quiet app costs no wake-ups) -------------------------------------------

    def rest(self, at_most_s: float) -> bool:
        """On the watchdog thread: wait until :meth:`ring` (or ``at_most_s``).

        For a loop that is waiting in select() with no request in flight: nothing can stall
        before the loop wakes, and the loop rings when it does, so looking at it meanwhile
        (a wake-up of a thread, about 80 us of CPU on a virtual machine, 100 times a
        second) bought nothing. True when it was rung.
        """
        self.resting = True
        if not self.quiet():  # it woke between the look and now
            self.resting = False
            return True
        rung = self._bell.acquire(timeout=at_most_s)
        self.resting = False
        return rung

    #: whether the loop rings the bell itself when it wakes (the selector wrapper does)
    rings_on_wake = True

    def quiet(self) -> bool:
        """Whether the loop waits in select() (nothing can stall before it wakes)."""
        return self.busy_since is None

    def ring(self) -> None:
        """On the loop thread: wake the resting watchdog (a plain read when it is not)."""
        if self.resting:
            self.resting = False
            with contextlib.suppress(RuntimeError):  # rung already, not taken yet
                self._bell.release()

    @staticmethod
    def selector_of(loop: asyncio.AbstractEventLoop) -> selectors.BaseSelector | None:
        """The loop's selector, when it is a selector loop (uvloop and proactor are not)."""
        selector = getattr(loop, "_selector", None)
        return selector if isinstance(selector, selectors.BaseSelector) else None

    def install(self, selector: selectors.BaseSelector) -> None:
        """Shadow ``selector.select`` with a timing wrapper (instance attribute)."""
        original: Callable[..., Any] = selector.select

        def select(timeout: float | None = None) -> Any:
            entered = perf_counter()
            started = self.busy_since
            if started is not None and entered - started >= self.long_span_s:
                cpu = thread_time() - self.cpu_at_busy_start
                self.long_spans.append((started, entered, self.iteration, cpu))
            self.busy_since = None
            self.slept_from = entered
            self.slept_for = timeout
            try:
                return original(timeout)
            finally:
                left = perf_counter()
                self.idle_total += left - entered
                self.iteration += 1
                # One thread_time() per iteration (~0.6 us): the price of exact CPU splits.
                self.cpu_at_busy_start = thread_time()
                self.busy_since = left
                if self.resting:
                    self.ring()

        selector.select = select  # type: ignore[method-assign]
        self._selector = selector

    def uninstall(self) -> None:
        """Restore the selector's own ``select``."""
        if self._selector is not None:
            self._selector.__dict__.pop("select", None)
            self._selector = None
