"""One monitor per event loop: lag sampler, utilization and stall watchdog together.

Standard library only, so the server can run (and be measured) without anything else, and
the UI can read the same object in-process that ``GET /monitor`` publishes.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass
from time import perf_counter, thread_time
from typing import ClassVar, Literal

from .activity import LoopActivity
from .attribution import USER_CODE, ProjectCode, request_tasks
from .heartbeat import HeartbeatActivity
from .records import LagStats, LagWindow, MonitorSnapshot, Stall
from .tasks import TaskBook
from .watchdog import Watchdog
from .weak_loop import WeakLoop

log = logging.getLogger("fastasync.monitor")


@dataclass(frozen=True, slots=True)
class MonitorConfig:
    """Tuning of the sampler and the watchdog."""

    #: the in-loop timer's period; its lateness is the lag sample (Node uses 10 ms too)
    sample_interval_s: float = 0.010
    #: width of one sparkline window
    window_s: float = 0.25
    #: how far back GET /monitor's percentiles look
    rolling_s: float = 10.0
    #: a busy stretch at least this long is a stall
    stall_threshold_s: float = 0.015
    #: how often the watchdog looks at the loop
    watchdog_poll_s: float = 0.002
    #: stalls kept for inspection
    max_stalls: int = 200
    #: the code a stall may blame: any file not a library's unless the caller names its
    #: folders (the server names server/, the explorer adds its own)
    project_code: ProjectCode = USER_CODE
    #: keep the task book (task origins, lock owners: the task inspector); off, the
    #: inspector lists tasks without their origins and finds no lock cycles
    task_book: bool = True
    #: how busy stretches are timed: "auto" wraps the selector when the loop has one
    #: (exact) and falls back to heartbeats (uvloop: within half a look); "heartbeat"
    #: forces the latter on any loop
    method: Literal["auto", "heartbeat"] = "auto"
    #: how often the watchdog looks at an idle loop (None: every third of the stall
    #: threshold). Each look is a wake-up of its thread, and with heartbeats one of the
    #: loop's too; it is also the heartbeat method's precision (half of it)
    idle_look_s: float | None = None
    #: None: always watch at the rates above (the explorer). Else the period of the sampler
    #: and of the watchdog while the app rests (no request in flight, the loop waiting):
    #: with a selector the watchdog then waits for the loop to wake it (nothing is lost);
    #: with heartbeats it looks this often, so a stall that begins at rest is timed within
    #: half of it. Every wake-up of a thread costs about 80 us of CPU on a virtual machine:
    #: an idle app kept 150 of them a second, 2 to 3 % of a core.
    rest_look_s: float | None = None


def _epoll_wait_ms(timeout: float) -> int:
    """The milliseconds epoll_wait() is really given for a select() ``timeout``.

    selectors.EpollSelector rounds to whole milliseconds away from zero; select.epoll
    then converts that float to nanoseconds rounding up, and to milliseconds rounding up
    again, so float error turns 9 ms into 10 (CPython 3.11). Both steps, as they are.
    """
    seconds = math.ceil(timeout * 1e3) * 1e-3
    nanoseconds = math.ceil(seconds * 1e9)
    return -(-nanoseconds // 1_000_000)


class LoopMonitor:
    """Measures one asyncio loop. Get it with :meth:`for_loop`; start/stop are refcounted."""

    _by_loop: ClassVar[weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopMonitor]] = (
        weakref.WeakKeyDictionary()
    )

    @classmethod
    def for_loop(
        cls, loop: asyncio.AbstractEventLoop | None = None, config: MonitorConfig | None = None
    ) -> LoopMonitor:
        """The loop's monitor, created on first use (``config`` only applies then)."""
        loop = loop or asyncio.get_running_loop()
        monitor = cls._by_loop.get(loop)
        if monitor is None:
            monitor = cls._by_loop[loop] = cls(loop, config or MonitorConfig())
        return monitor

    def __init__(self, loop: asyncio.AbstractEventLoop, config: MonitorConfig) -> None:
        self._loop = WeakLoop(loop, "this monitor")
        self.config = config
        self._users = 0
        self._activity = LoopActivity(long_span_s=config.stall_threshold_s)
        self._watchdog: Watchdog | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._expected = 0.0
        self._clock_offset = 0.0
        rolling_samples = int(config.rolling_s / config.sample_interval_s) + 1
        self._lags_ms: deque[tuple[float, float]] = deque(maxlen=rolling_samples)
        self._window_lags: list[float] = []
        self._window_started = 0.0
        self._window_idle_at_start = 0.0
        self._window_seq = 0
        self.windows: deque[LagWindow] = deque(maxlen=240)
        self.stalls: deque[Stall] = deque(maxlen=config.max_stalls)
        self._stall_lock = threading.Lock()
        self.stall_count = 0
        self.stall_total_ms = 0.0
        self.started_at: float | None = None
        self._measures_utilization = False
        #: (perf_counter, idle_total) at each window boundary, for on-demand utilization
        self._idle_marks: deque[tuple[float, float]] = deque(maxlen=240)
        #: the task inspector's book of this loop (installed while monitoring)
        self.tasks = TaskBook.for_loop(loop)
        #: how stalls are timed ("selector": exact; "heartbeat": within precision_ms)
        self.method: Literal["selector", "heartbeat"] = "selector"
        self.precision_ms = 0.0

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop this monitor belongs to (held weakly: see :class:`WeakLoop`)."""
        return self._loop()

    @property
    def running(self) -> bool:
        return self._users > 0

    def start(self) -> None:
        """Start (or join) monitoring; must be called on the loop's thread."""
        self._users += 1
        if self._users > 1:
            return
        loop = self.loop
        if self.config.task_book:
            self.tasks.install()
        selector = LoopActivity.selector_of(loop)
        if self.config.method == "heartbeat":
            selector = None
        self._measures_utilization = selector is not None
        sample_after_s = self.config.stall_threshold_s / 3
        look_s = self.config.idle_look_s or sample_after_s
        if selector is not None:
            self._activity = LoopActivity(long_span_s=self.config.stall_threshold_s)
            self._activity.install(selector)
            self.method, self.precision_ms = "selector", 0.0
        else:
            # uvloop (or any loop without a Python selector): beats from the watchdog
            beats = HeartbeatActivity(
                self.config.stall_threshold_s, loop, threading.get_ident(), look_s
            )
            self._activity = beats
            self.method, self.precision_ms = "heartbeat", beats.precision_s * 1000.0
        self._watchdog = Watchdog(
            self._activity,
            threading.get_ident(),
            self._record_stall,
            loop=loop,
            poll_s=self.config.watchdog_poll_s,
            sample_after_s=sample_after_s,
            idle_look_s=look_s,
            project=self.config.project_code,
            on_loop_closed=self._loop_closed,
            rest_look_s=self.config.rest_look_s,
        )
        self._watchdog.start()
        # The current stretch began before the book, the wrapper and the thread start
        # (which waits for the new thread: tens of ms on a loaded machine). That is the
        # monitor's own start-up, not the app's: count the stretch from here.
        if self._activity.busy_since is not None:
            self._activity.busy_since = perf_counter()
            self._activity.cpu_at_busy_start = thread_time()
        self.started_at = time.time()
        self._window_started = perf_counter()
        self._window_idle_at_start = self._activity.idle_total
        self._idle_marks.clear()
        self._idle_marks.append((self._window_started, self._window_idle_at_start))
        #: loop.time() - perf_counter(): the selector wrapper times with the latter
        self._clock_offset = loop.time() - perf_counter()
        self._expected = loop.time() + self.config.sample_interval_s
        self._timer = loop.call_at(self._expected, self._tick)

    def stop(self) -> None:
        """Leave monitoring; the last user stops the timer and joins the watchdog."""
        if self._users == 0:
            return
        self._users -= 1
        if self._users:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:
            watchdog.stop()
            watchdog.join(timeout=1.0)
            if watchdog.saw_loop_close:  # it has put everything back itself
                return
        self._activity.uninstall()
        if self.config.task_book:
            self.tasks.uninstall()

    def _loop_closed(self) -> None:
        """The loop closed under a running monitor (on the watchdog thread).

        Nobody stopped it: an app driven without its lifespan (httpx's ``ASGITransport``,
        a test's own loop) never says it is shutting down. Left as it was, the lock
        property and the thread would outlive the loop, one more per test.
        """
        self._users = 0
        self._timer = None
        self._watchdog = None  # this very thread, about to end: it holds the loop
        self._activity.uninstall()
        if self.config.task_book:
            self.tasks.release()

    # -- sampling (runs on the loop) -------------------------------------------------------

    def _tick(self) -> None:
        loop = self.loop
        now = loop.time()
        lag_ms = max(0.0, now - self._ready_at(self._expected)) * 1000.0
        self._lags_ms.append((now, lag_ms))
        self._window_lags.append(lag_ms)
        if perf_counter() - self._window_started >= self.config.window_s:
            self._close_window()
        # Schedule from now, not from the missed deadline: a stall is one late sample,
        # not a burst of catch-up ticks.
        self._expected = now + self._tick_interval()
        self._timer = loop.call_at(self._expected, self._tick)

    def _tick_interval(self) -> float:
        """The sampler's period: ``rest_look_s`` while the app rests (nothing in flight)."""
        rest = self.config.rest_look_s
        if rest is not None and not request_tasks:
            return rest
        return self.config.sample_interval_s

    def wake(self) -> None:
        """A request arrives (on the loop thread): a resting watchdog watches again."""
        self._activity.ring()

    @property
    def rest_precision_ms(self) -> float:
        """How far a stall that begins while the app rests is timed, either way."""
        rest = self.config.rest_look_s
        if rest is None or self.method == "selector":
            return self.precision_ms
        return max(self.precision_ms, rest * 1000.0 / 2)

    def _ready_at(self, due: float) -> float:
        """When the loop could first have run a timer ``due`` then (``loop.time()``).

        At ``due``, unless the loop was asleep in select() across it with a timeout that
        ends later: epoll_wait() counts its timeout in whole milliseconds and Python rounds
        it up, so a loop woken for something else between two ticks sleeps up to 1 ms past
        the next one. That timer is late, but nothing held the loop and no request waits
        for the rounding (I/O wakes select() at once); counted as lag, it made the idle UI's
        p99 about 1 ms. A wake later than the rounded timeout (the thread not scheduled)
        still counts.
        """
        activity = self._activity
        woke, timeout = activity.busy_since, activity.slept_for
        if woke is None or timeout is None or not self._measures_utilization:
            return due
        slept_from = activity.slept_from + self._clock_offset
        if not slept_from <= due < woke + self._clock_offset:
            return due
        slept_until = slept_from + _epoll_wait_ms(timeout) / 1000.0
        return max(due, min(woke + self._clock_offset, slept_until))

    def _close_window(self) -> None:
        now = perf_counter()
        elapsed = now - self._window_started
        utilization = None
        if self._measures_utilization and elapsed > 0:
            idle = self._activity.idle_total - self._window_idle_at_start
            utilization = min(1.0, max(0.0, 1.0 - idle / elapsed))
        self._window_seq += 1
        self.windows.append(
            LagWindow(
                seq=self._window_seq,
                ended_at=time.time(),
                lag=LagStats.of(self._window_lags),
                utilization=utilization,
            )
        )
        self._window_lags = []
        self._window_started = now
        self._window_idle_at_start = self._activity.idle_total
        self._idle_marks.append((now, self._window_idle_at_start))

    # -- stalls (published from the watchdog thread) -------------------------------------

    def _record_stall(self, stall: Stall) -> None:
        with self._stall_lock:
            self.stalls.append(stall)
            self.stall_count += 1
            self.stall_total_ms += stall.duration_ms

    def stalls_after(self, seq: int) -> list[Stall]:
        """Stalls with a sequence number above ``seq`` (oldest first)."""
        with self._stall_lock:
            return [s for s in self.stalls if s.seq > seq]

    def stall_in_progress_ms(self) -> float | None:
        """How long the loop has been stuck right now (None when it is not)."""
        busy = self._watchdog.stall_in_progress() if self._watchdog else None
        return None if busy is None else busy * 1000.0

    # -- reading -------------------------------------------------------------------------

    def lag(self, window_s: float | None = None) -> LagStats:
        """Lag percentiles over the last ``window_s`` seconds (default: rolling_s)."""
        horizon = self.loop.time() - (window_s or self.config.rolling_s)
        return LagStats.of([lag for t, lag in list(self._lags_ms) if t >= horizon])

    def lag_since(self, loop_time: float) -> LagStats:
        """Lag percentiles of the samples taken since ``loop_time`` (a ``loop.time()``).

        Only the last ``rolling_s`` seconds are kept: size it for the longest window read.
        """
        return LagStats.of([lag for t, lag in list(self._lags_ms) if t >= loop_time])

    def lag_samples_since(self, loop_time: float) -> list[tuple[float, float]]:
        """The samples behind :meth:`lag_since`: (``loop.time()`` taken, lag ms), oldest first."""
        return [(t, lag) for t, lag in list(self._lags_ms) if t >= loop_time]

    def last_stall_seq(self) -> int:
        """The sequence number of the newest stall recorded (0 before the first)."""
        with self._stall_lock:
            return self.stalls[-1].seq if self.stalls else 0

    def utilization(self, window_s: float = 1.0) -> float | None:
        """Busy share of the loop over about the last ``window_s`` seconds, up to now.

        Call it on the loop's thread (the idle total is current there). None when the
        loop has no selector to measure.
        """
        if not self._measures_utilization or not self._idle_marks:
            return None
        now, idle_now = perf_counter(), self._activity.idle_total
        marks = list(self._idle_marks)
        since, idle_then = marks[0]
        for mark_time, mark_idle in reversed(marks):
            if now - mark_time >= window_s:
                since, idle_then = mark_time, mark_idle
                break
        elapsed = now - since
        if elapsed <= 0:
            return None
        return min(1.0, max(0.0, 1.0 - (idle_now - idle_then) / elapsed))

    def snapshot(self, window_s: float | None = None, windows: int = 60) -> MonitorSnapshot:
        """Figures for a gauge: rolling lag, utilization, stall totals, recent windows."""
        with self._stall_lock:
            stalls = tuple(self.stalls)
            count, total = self.stall_count, self.stall_total_ms
        return MonitorSnapshot(
            lag=self.lag(window_s),
            utilization=self.utilization(),
            stall_count=count,
            stall_total_ms=total,
            windows=tuple(list(self.windows)[-windows:]),
            stalls=stalls,
        )
