"""The watchdog thread: sees a stall while it happens and records where it happened.

It never touches the loop. Every ``poll_s`` it reads the loop's busy-since timestamp
(written by the selector wrapper, see :mod:`.activity`). When the loop has been busy for
longer than ``sample_after_s`` it samples the loop thread's stack, and keeps sampling,
spread over the stall's length, while it lasts. When the loop thread reports the finished
stretch (with its exact start and end) the stall is published with its true duration and
the most sampled line.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any

from .activity import LoopActivity
from .attribution import SERVER_CODE, ProjectCode, StackSample, sample_thread
from .records import Stall, StallKind

log = logging.getLogger("fastasync.monitor")

#: Stalls whose loop thread spent at least this share of the wall time on CPU are "cpu".
CPU_SHARE_THRESHOLD = 0.5
#: Stalls with at least this share of the wall time in the garbage collector are "gc".
GC_SHARE_THRESHOLD = 0.5


@dataclass
class _InProgress:
    iteration: int
    started: float
    samples: list[StackSample] = field(default_factory=list)
    next_sample_at: float = 0.0


class GcClock:
    """Collector pauses on the loop thread, from ``gc.callbacks``."""

    def __init__(self, thread_id: int) -> None:
        self._thread_id = thread_id
        self._started: float | None = None
        self.pauses: deque[tuple[float, float]] = deque(maxlen=512)

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if threading.get_ident() != self._thread_id:
            return
        if phase == "start":
            self._started = perf_counter()
        elif self._started is not None:
            self.pauses.append((self._started, perf_counter()))
            self._started = None

    def paused_between(self, start: float, end: float) -> float:
        """Seconds of collection that overlap [start, end]."""
        total = 0.0
        for a, b in list(self.pauses):
            total += max(0.0, min(b, end) - max(a, start))
        return total


class Watchdog(threading.Thread):
    """Daemon thread attached to one loop's :class:`LoopActivity`."""

    def __init__(
        self,
        activity: LoopActivity,
        loop_thread_id: int,
        publish: Callable[[Stall], None],
        *,
        loop: asyncio.AbstractEventLoop | None = None,
        poll_s: float,
        sample_after_s: float,
        max_samples: int = 64,
        project: ProjectCode = SERVER_CODE,
    ) -> None:
        super().__init__(name="fastasync-loop-watchdog", daemon=True)
        self._activity = activity
        self._loop_thread_id = loop_thread_id
        self._loop = loop
        self._publish = publish
        self._poll_s = poll_s
        self._sample_after_s = sample_after_s
        self._max_samples = max_samples
        self._project = project
        #: set by stop(); read at each look (a plain flag: an Event's timed wait allocates
        #: a lock and a condition every time, ~3x the cost of the sleep itself)
        self._stopping = False
        self._current: _InProgress | None = None
        self._finished: dict[int, _InProgress] = {}
        self._seq = 0
        self._wall_offset = time.time() - perf_counter()
        self.gc_clock = GcClock(loop_thread_id)

    def stop(self) -> None:
        """Ask the thread to finish; callers join it."""
        self._stopping = True

    def run(self) -> None:
        gc.callbacks.append(self.gc_clock)
        try:
            while True:
                time.sleep(self._next_look_in())
                if self._stopping:
                    break
                self._observe()
                self._report_finished()
            self._report_finished()
        finally:
            gc.callbacks.remove(self.gc_clock)

    def _next_look_in(self) -> float:
        """How long to sleep before the next look: no longer than something may need one.

        A busy stretch needs a look once it has lasted ``sample_after_s`` (its first stack
        sample), not before: so an idle loop is looked at every ``sample_after_s``, and a
        busy one when its stretch would reach that age. Each look takes the GIL from the
        loop thread; polling every ``poll_s`` whatever happens cost the loop 500 of them a
        second. A stall in progress is sampled every ``poll_s`` as before. Its duration
        never depends on this: the selector wrapper times it exactly.
        """
        if self._current is not None:
            return self._poll_s
        started = self._activity.busy_since
        if started is None:
            return self._sample_after_s
        return max(self._poll_s, started + self._sample_after_s - perf_counter())

    def stall_in_progress(self) -> float | None:
        """Seconds the loop has been busy, if that is past the sampling threshold."""
        started = self._activity.busy_since
        if started is None:
            return None
        busy = perf_counter() - started
        return busy if busy >= self._sample_after_s else None

    def _observe(self) -> None:
        activity = self._activity
        iteration = activity.iteration
        started = activity.busy_since
        if started is None or iteration != activity.iteration:
            self._retire_current()
            return
        now = perf_counter()
        if now - started < self._sample_after_s:
            self._retire_current()
            return
        current = self._current
        if current is None or current.iteration != iteration:
            self._retire_current()
            current = self._current = _InProgress(iteration=iteration, started=started)
        if now >= current.next_sample_at and len(current.samples) < self._max_samples:
            try:
                sample = sample_thread(self._loop_thread_id, self._loop, project=self._project)
            except Exception:  # a frame read mid-change: lose this sample, never the thread
                log.debug("a stack sample failed; the stall keeps its other samples", exc_info=True)
                sample = None
            # Only trust the sample if the loop is still inside the same busy stretch.
            if sample is not None and activity.iteration == iteration:
                current.samples.append(sample)
            # Spread samples over the stall as it grows (about 16 whatever its length),
            # so the line that takes the time outvotes the request's set-up around it.
            current.next_sample_at = now + max(self._poll_s, (now - started) / 16)

    def _retire_current(self) -> None:
        """Keep the stretch that just ended until the loop thread reports its end."""
        if self._current is not None:
            self._finished[self._current.iteration] = self._current
            self._current = None
            # Stretches shorter than the stall threshold never get reported: drop old ones.
            while len(self._finished) > 64:
                self._finished.pop(next(iter(self._finished)))

    def _report_finished(self) -> None:
        spans = self._activity.long_spans
        while spans:
            start, end, iteration, cpu_s = spans.popleft()
            if self._current is not None and self._current.iteration == iteration:
                self._retire_current()
            observed = self._finished.pop(iteration, None)
            self._publish(self._make_stall(start, end, cpu_s, observed))

    def _make_stall(
        self, start: float, end: float, cpu_s: float, observed: _InProgress | None
    ) -> Stall:
        duration = end - start
        cpu_s = min(max(cpu_s, 0.0), duration)
        samples = observed.samples if observed else []
        blamed = Counter(s.blamed for s in samples if s.blamed is not None).most_common(1)
        location = blamed[0][0] if blamed else None
        route = next((s.route for s in samples if s.route), None)
        gc_s = self.gc_clock.paused_between(start, end)
        kind: StallKind = "blocking"
        if gc_s >= duration * GC_SHARE_THRESHOLD:
            kind = "gc"
        elif cpu_s >= duration * CPU_SHARE_THRESHOLD:
            kind = "cpu"
        self._seq += 1
        return Stall(
            seq=self._seq,
            started_at=start + self._wall_offset,
            duration_ms=duration * 1000.0,
            kind=kind,
            location=str(location) if location else None,
            route=route,
            filename=location.filename if location else None,
            lineno=location.lineno if location else None,
            cpu_ms=cpu_s * 1000.0,
            gc_ms=gc_s * 1000.0,
            stack=tuple(str(f) for f in samples[0].stack) if samples else (),
        )
