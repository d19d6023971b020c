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
from .attribution import (
    USER_CODE,
    CodeLocation,
    ProjectCode,
    RequestRef,
    StackSample,
    cached_short_path,
    request_tasks,
    sample_thread,
)
from .records import Frame, Stall, StallKind, Victim
from .tasks import TaskBook

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
        idle_look_s: float | None = None,
        max_samples: int = 64,
        project: ProjectCode = USER_CODE,
        on_loop_closed: Callable[[], None] | None = None,
        rest_look_s: float | None = None,
    ) -> None:
        super().__init__(name="fastasync-loop-watchdog", daemon=True)
        self._activity = activity
        self._loop_thread_id = loop_thread_id
        self._loop = loop
        self._publish = publish
        self._poll_s = poll_s
        self._sample_after_s = sample_after_s
        #: how often an idle loop is looked at (default: every sample_after_s)
        self._idle_look_s = idle_look_s if idle_look_s is not None else sample_after_s
        self._max_samples = max_samples
        self._project = project
        self._on_loop_closed = on_loop_closed
        #: None: never rest. Else a loop that waits with no request in flight is left alone
        #: until it wakes (selector) or for this long (heartbeats): see LoopActivity.rest
        self._rest_look_s = rest_look_s
        #: True once the thread ended because the loop had closed (and said so)
        self.saw_loop_close = False
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
        self._activity.ring()  # a resting thread would not notice for up to a second

    def run(self) -> None:
        gc.callbacks.append(self.gc_clock)
        try:
            # the heartbeat method (a loop without a selector) posts a beat at each look
            pump: Callable[[float, float], None] | None = getattr(self._activity, "pump", None)
            looked = perf_counter()
            rest_next = False
            woke_soon = False
            while True:
                if rest_next:
                    rested_from = perf_counter()
                    rung = self._activity.rest(self._rest_wait_s())
                    due = perf_counter()
                    if rung:  # the loop was running (the request that rang): as if looked
                        looked = due - self._idle_look_s
                    # rung again at once: the loop is between two bursts, not at rest
                    woke_soon = rung and due - rested_from < self._idle_look_s
                else:
                    delay = self._next_look_in()
                    due = perf_counter() + delay
                    time.sleep(delay)
                if self._stopping:
                    break
                if self._loop is not None and self._loop.is_closed():
                    self.saw_loop_close = True
                    break
                self._observe()
                self._report_finished()
                # Decided before the beat is posted (a beat just posted always waits). With
                # heartbeats, only at the look after a rest's beat: whether the loop is
                # quiet is what that beat tells.
                # Not after a rest the loop cut short: each ring is a thread's wake-up, and
                # a busy app's loop waits in select() between requests thousands of times
                # a second (resting at each of those cost a trivial route 15 % of its
                # throughput). One ordinary look first, then rest if still quiet.
                rest_next = (
                    not woke_soon and self._may_rest(due) and not (rest_next and pump is not None)
                )
                woke_soon = False
                if pump is not None:
                    pump(due, due - looked)
                looked = due
            self._report_finished()
        finally:
            gc.callbacks.remove(self.gc_clock)
        if self.saw_loop_close and self._on_loop_closed is not None:
            self._on_loop_closed()

    #: no rest while a request ended less than this long ago: the app is serving
    REST_AFTER_REQUESTS_S = 0.05

    def _may_rest(self, now: float) -> bool:
        """Whether the loop may be left alone: it waits, no stall is being sampled, no
        request is in flight (a request rings the bell as it arrives: the probe's
        middleware) and none ended just now. Never, unless this watchdog was given a rest
        period."""
        return (
            self._rest_look_s is not None
            and self._current is None
            and not self._activity.long_spans
            and self._activity.quiet()
            and not request_tasks
            and not request_tasks.ended_since(now - self.REST_AFTER_REQUESTS_S)
        )

    def _rest_wait_s(self) -> float:
        """How long a rest may last: until the loop rings, if it rings when it wakes (a
        second at most, to notice a stop or a closed loop); else ``rest_look_s``."""
        assert self._rest_look_s is not None
        return 1.0 if self._activity.rings_on_wake else self._rest_look_s

    def _next_look_in(self) -> float:
        """How long to sleep before the next look: no longer than something may need one.

        A busy stretch needs a look once it has lasted ``sample_after_s`` (its first stack
        sample), not before: so an idle loop is looked at every ``idle_look_s`` (by default
        ``sample_after_s``; the probe looks less often: every look is a wake-up), and a
        busy one when its stretch would reach that age. Each look takes the GIL from the
        loop thread; polling every ``poll_s`` whatever happens cost the loop 500 of them a
        second. A stall in progress is sampled every ``poll_s`` as before. Its duration
        never depends on this: the selector wrapper times it exactly.
        """
        if self._current is not None:
            return self._poll_s
        started = self._activity.busy_since
        if started is None:
            return self._idle_look_s
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
                sample = sample_thread(
                    self._loop_thread_id,
                    self._loop,
                    project=self._project,
                    spawned_by=self._spawned_by,
                )
            except Exception:  # a frame read mid-change: lose this sample, never the thread
                log.debug("a stack sample failed; the stall keeps its other samples", exc_info=True)
                sample = None
            # Only trust the sample if the loop is still inside the same busy stretch.
            if sample is not None and activity.iteration == iteration:
                current.samples.append(sample)
            # Spread samples over the stall as it grows (about 16 whatever its length),
            # so the line that takes the time outvotes the request's set-up around it.
            current.next_sample_at = now + max(self._poll_s, (now - started) / 16)

    def _spawned_by(self, task: asyncio.Task[Any]) -> RequestRef | None:
        """The request that created ``task``, from the loop's task book."""
        if self._loop is None:
            return None
        origin = TaskBook.for_loop(self._loop).origin_of(task)
        return origin.request if origin is not None else None

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
        request_id = next((s.request_id for s in samples if s.request_id), None)
        # the stack shown is one that ran the blamed line (the first sample may be set-up)
        shown = next((s for s in samples if s.blamed == location), samples[0] if samples else None)
        victims = tuple(
            Victim(rid, victim_route, round(waited * 1000.0, 3))
            for rid, victim_route, waited in request_tasks.victims_of(start, end, request_id)
        )
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
            stack=tuple(str(f) for f in shown.stack) if shown else (),
            request_id=request_id,
            victims=victims,
            frames=tuple(self._frame(f) for f in shown.stack) if shown else (),
        )

    def _frame(self, location: CodeLocation) -> Frame:
        return Frame(
            path=cached_short_path(location.filename),
            file=location.filename,
            line=location.lineno,
            function=location.function,
            own=self._project.owns(location.filename),
        )
