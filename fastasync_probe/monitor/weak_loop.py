"""An event loop held weakly, for the per-loop objects kept in registries keyed by loop."""

from __future__ import annotations

import asyncio
import weakref


class WeakLoop:
    """Holds one event loop without keeping it alive.

    The monitor and the task book are found through registries keyed by their loop; a
    strong reference from them would keep every closed loop, and all it references, alive
    for the rest of the process.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, owner: str) -> None:
        self._ref = weakref.ref(loop)
        self._owner = owner

    def __call__(self) -> asyncio.AbstractEventLoop:
        """The loop, or a RuntimeError that says whose loop is gone."""
        loop = self._ref()
        if loop is None:
            raise RuntimeError(f"{self._owner}'s event loop is gone")
        return loop
