"""Busy stretches of a loop that has no selector to wrap (uvloop), timed by heartbeats.

uvloop runs its loop in C (libuv): there is no Python ``select()`` to time, so the exact
start and end of a busy stretch are out of reach. Instead the watchdog thread posts a
*beat* with ``call_soon_threadsafe`` at each of its looks (every ``sample_after_s``, 5 ms
by default) and the loop answers it when it gets to it. A beat that waits is a loop that
is busy: while it waits the watchdog samples the loop thread's stack exactly as in the
selector method, and when it is answered the stretch is over.

Precision: the stretch ends when the beat runs (exact, on the loop thread), but it began
somewhere between the previous answer and this beat's posting, which are at most one look
apart. The start is taken halfway, so a stall's duration is right within half a look:
``precision_s``. The loop thread's CPU time in the stretch comes from its CPU clock
(``pthread_getcpuclockid``), read by the watchdog at the posting and by the loop itself
at the answer. Utilization (the busy share) is not measured this way.
"""

from __future__ import annotations

import asyncio
import time
from time import perf_counter, thread_time

from .activity import LoopActivity


class HeartbeatActivity(LoopActivity):
    """:class:`LoopActivity` fed by beats instead of a selector wrapper.

    ``busy_since`` is the posting time of a beat not answered yet (None once answered):
    the watchdog reads it exactly as it reads the selector method's.
    """

    def __init__(
        self,
        long_span_s: float,
        loop: asyncio.AbstractEventLoop,
        loop_thread_id: int,
        look_s: float,
    ) -> None:
        super().__init__(long_span_s)
        self.busy_since = None
        self.look_s = look_s
        self._loop: asyncio.AbstractEventLoop | None = loop
        self._cpu_clock = time.pthread_getcpuclockid(loop_thread_id)
        self._waiting = False
        self._answered_at = perf_counter()
        self._closed = False

    #: the loop cannot ring when it wakes (no selector to wrap): a resting watchdog looks
    #: every ``rest_look_s`` all the same, and a request arriving rings (the probe's middleware)
    rings_on_wake = False

    def rest(self, at_most_s: float) -> bool:
        """On the watchdog thread: wait ``at_most_s``, or until a request rings (True). The
        beat posted at the look before it is answered meanwhile, or still waits at the next."""
        self.resting = True
        rung = self._bell.acquire(timeout=at_most_s)
        self.resting = False
        return rung

    @property
    def precision_s(self) -> float:
        """How far a stall's measured duration may be from the truth, either way."""
        return self.look_s / 2

    def pump(self, due: float, since_last_look: float | None = None) -> None:
        """Post a beat unless one is still waiting (called by the watchdog at each look
        it meant to take at ``due``, ``since_last_look`` seconds after the one before:
        one look by default, longer after a rest)."""
        loop = self._loop
        if self._waiting or self._closed or loop is None:
            return
        posted = perf_counter()
        cpu_at_post = time.clock_gettime(self._cpu_clock)
        # The stretch began after the last answer and before the look was due: halfway,
        # and never more than half a look back. The look itself can come late: a loop
        # running Python keeps the GIL from the watchdog for up to the switch interval
        # (5 ms), and counting from the posting then made CPU stalls 5-10 ms short.
        looked = min(posted, due)
        gap = self.look_s if since_last_look is None else max(self.look_s, since_last_look)
        back = min(max(0.0, looked - self._answered_at), gap) / 2
        self.iteration += 1
        self._waiting = True
        self.busy_since = posted
        try:
            loop.call_soon_threadsafe(
                self._answer, self.iteration, back, looked, posted, cpu_at_post
            )
        except RuntimeError:  # the loop is closed: nothing left to watch
            self._closed = True
            self._waiting = False
            self.busy_since = None

    def _answer(
        self, iteration: int, back: float, looked: float, posted: float, cpu_at_post: float
    ) -> None:
        """The beat runs on the loop: the busy stretch it waited behind is over.

        It began ``back`` before the look (halfway to the previous answer). After a rest the
        way back is long: it counts no more than the beat itself waited (at least half a
        look), or a beat answered at once would make a stall of half a rest.
        """
        now = perf_counter()
        began = looked - min(back, max(self.look_s / 2, now - posted))
        if now - began >= self.long_span_s:
            # thread_time() is the clock the watchdog read through the thread's id. The CPU
            # clock was read at the posting, after the stretch began: the share of CPU seen
            # from there on stands for the part before it too.
            cpu = thread_time() - cpu_at_post
            if now > posted:
                cpu *= (now - began) / (now - posted)
            self.long_spans.append((began, now, iteration, cpu))
        self._answered_at = now
        self.busy_since = None
        self._waiting = False

    def uninstall(self) -> None:
        """Post no more beats (and let go of the loop)."""
        self._closed = True
        self._loop = None
