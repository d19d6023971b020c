"""Debounce: a burst of triggers with one key, collapsed into one run once the key is quiet."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from server.patterns.tasks.records import Job


@dataclass(eq=False)
class Burst:
    """A debounced run waiting for its key to go quiet."""

    deadline: float
    triggers: int = 1
    job: Job | None = None


class Bursts:
    """The bursts waiting for quiet, by key: at most ``limit`` at once."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: dict[str, Burst] = {}

    def trigger(self, key: str, delay_s: float) -> Burst | None:
        """Count a trigger in ``key``'s open burst and move its deadline (``None``: none open)."""
        burst = self._open.get(key)
        if burst is not None:
            burst.triggers += 1
            # Moving the deadline is all a trigger does: the timer task rechecks it when it
            # wakes, so a burst costs no task cancellations.
            burst.deadline = max(burst.deadline, asyncio.get_running_loop().time() + delay_s)
        return burst

    def begin(self, key: str, delay_s: float) -> Burst | None:
        """Open ``key``'s burst (``None`` when ``limit`` are open already).

        Registered at once, before the caller's first await, so a concurrent trigger joins it.
        """
        if len(self._open) >= self.limit:
            return None
        burst = self._open[key] = Burst(deadline=asyncio.get_running_loop().time() + delay_s)
        return burst

    def abandon(self, key: str) -> None:
        """Forget ``key``'s burst (its run could not be recorded)."""
        del self._open[key]

    async def quiet(self, key: str, burst: Burst) -> None:
        """Return once ``burst`` has had no trigger for its delay."""
        loop = asyncio.get_running_loop()
        try:
            # Not polling: it sleeps exactly until the deadline, once per move it sees.
            while (wait := burst.deadline - loop.time()) > 0:  # noqa: ASYNC110
                await asyncio.sleep(wait)
        finally:
            # From here on a trigger starts a new burst (and a new job).
            self._open.pop(key, None)
