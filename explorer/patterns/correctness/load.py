"""Correctness under load (scaffold): no soak actor yet."""

from __future__ import annotations

from explorer.tools.load import Actor

ACTORS: tuple[Actor, ...] = ()
SLOW_KNOBS: dict[str, float] = {
    # guide fixes: the debounce delay a trigger waits (guide form) or schedules
    "delay_s": 0.01,
}
DELIBERATE_5XX: dict[str, int] = {
    # guide fixes: the upload sandbox holds 50 files until reset: storage, not a crash
    "/correctness/upload": 507,
}
