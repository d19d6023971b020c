"""Concurrency under load: the soak's client, and the fuzzing's cheap values and the 5xx
that is a lesson (see :mod:`explorer.tools.load`)."""

from __future__ import annotations

import random

import httpx

from explorer.tools.load import Actor, Tally


async def run(http: httpx.AsyncClient, tally: Tally, rng: random.Random) -> None:
    """One run of five upstream calls with one of the strategies."""
    strategy = rng.choice(["gather", "taskgroup", "race", "timeout", "bounded", "as_completed"])
    body = {"strategy": strategy, "n": 5, "latency": 0.05, "jitter": 0.02, "timeout_s": 0.06}
    tally.record("/concurrency/run", await http.post("/concurrency/run", json=body))


ACTORS: tuple[Actor, ...] = (Actor("concurrency", run, 2),)

SLOW_KNOBS: dict[str, float] = {"latency": 0.02, "jitter": 0.02, "timeout_s": 0.05}

DELIBERATE_5XX: dict[str, int] = {
    # the simulated upstream's failure
    "/concurrency/upstream/{name}": 503,
}
