"""The basics under load: the soak's client, and the fuzzing's cheap values (see
:mod:`explorer.tools.load`)."""

from __future__ import annotations

import random

import httpx

from explorer.tools.load import Actor, Tally


async def visit(http: httpx.AsyncClient, tally: Tally, rng: random.Random) -> None:
    """One request to one of the async, sync, CPU-bound and offloaded handlers."""
    route = rng.choice(
        [
            "/basics/async?delay=0.05",
            "/basics/sync?delay=0.02",
            "/basics/cpu?n=20000",
            "/basics/offload?n=200000",
        ]
    )
    tally.record(route.split("?")[0], await http.get(route))


ACTORS: tuple[Actor, ...] = (Actor("basics", visit, 3),)

SLOW_KNOBS: dict[str, float] = {"delay": 0.02, "n": 20_000}

DELIBERATE_5XX: dict[str, int] = {}
