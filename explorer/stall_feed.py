"""Which stalls the shell shows and counts: the new ones since its last look, start-up aside.

Start-up (imports, the first layout, heap settling) stalls the loop too, but it is no
lesson: those stalls stay in ``GET /monitor`` and are left out of the on-screen figures.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace

from fastasync_probe.monitor import MonitorSnapshot, Stall

log = logging.getLogger("fastasync.explorer")


@dataclass(frozen=True)
class Toast:
    """One notification for the stalls that requests caused since the last one."""

    title: str
    message: str


class StallFeed:
    """Reads monitor snapshots; hands out the stalls not seen yet and adjusted totals."""

    def __init__(self) -> None:
        #: stalls that began in [launched_at, counting_from) are start-up work
        self.launched_at = time.time()
        self.counting_from = float("inf")
        self._last_seq = 0
        #: (count, total ms) of the start-up stalls, taken off the snapshot's totals
        self._offset = (0, 0.0)

    def count_from_here(self, snapshot: MonitorSnapshot) -> None:
        """Start-up is over: everything before ``snapshot`` is left out of the figures.

        The start-up stalls stay in ``GET /monitor``; the log pane says what they cost.
        """
        self.counting_from = time.time()
        self._last_seq = max((s.seq for s in snapshot.stalls), default=0)
        self._offset = (snapshot.stall_count, snapshot.stall_total_ms)
        if snapshot.stall_count:
            log.info(
                "startup stalled the loop %d times (%.0f ms: imports, TLS context, first "
                "layout); the stall inspector counts from here",
                snapshot.stall_count,
                snapshot.stall_total_ms,
            )

    def is_start_up(self, stall: Stall) -> bool:
        """True for a stall that began during start-up."""
        return self.launched_at <= stall.started_at < self.counting_from

    def take(self, snapshot: MonitorSnapshot) -> tuple[MonitorSnapshot, list[Stall]]:
        """``snapshot`` without the start-up stalls in its totals, and the new stalls."""
        new = [s for s in snapshot.stalls if s.seq > self._last_seq]
        if new:
            self._last_seq = new[-1].seq
            # a stall that began during start-up is published only after it: not counted
            early = [s for s in new if self.is_start_up(s)]
            if early:
                count, total = self._offset
                self._offset = (count + len(early), total + sum(s.duration_ms for s in early))
                new = [s for s in new if not self.is_start_up(s)]
        count, total = self._offset
        shown = replace(
            snapshot,
            stall_count=snapshot.stall_count - count,
            stall_total_ms=snapshot.stall_total_ms - total,
        )
        return shown, new


class StallToasts:
    """At most one toast every ``every_s``, for the worst stall a request caused."""

    def __init__(self, every_s: float) -> None:
        self.every_s = every_s
        self._last = 0.0

    def toast_for(self, stalls: list[Stall]) -> Toast | None:
        """The toast to show for ``stalls`` now, or None (none in requests, or too soon)."""
        in_requests = [s for s in stalls if s.route]
        now = time.monotonic()
        if not in_requests or now - self._last < self.every_s:
            return None
        self._last = now
        worst = max(in_requests, key=lambda s: s.duration_ms)
        title = f"Loop stalled ×{len(in_requests)}" if len(in_requests) > 1 else "Loop stalled"
        return Toast(
            title,
            f"{worst.duration_ms:.1f} ms in {worst.route}\n"
            f"at {worst.location or 'an unsampled line'}",
        )
