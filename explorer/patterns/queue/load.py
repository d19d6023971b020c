"""The durable queue under load: the soak's client, and the fuzzing's cheap values (see
:mod:`explorer.tools.load`)."""

from __future__ import annotations

import random

import httpx

from explorer.tools.load import Actor, Tally


async def enqueue(http: httpx.AsyncClient, tally: Tally, rng: random.Random) -> None:
    """A few short jobs on either backend (503 when Redis does not answer), then a look."""
    backend = rng.choice(["redis", "inprocess"])
    body = {
        "kind": rng.choice(["sleep", "fail"]),
        "seconds": 0.02,
        "count": rng.randint(1, 3),
        "backend": backend,
    }
    tally.record("/queue/jobs", await http.post("/queue/jobs", json=body), allowed=(503,))
    listing = await http.get("/queue/jobs", params={"backend": backend, "limit": 20})
    tally.record("/queue/jobs", listing, allowed=(503,))


ACTORS: tuple[Actor, ...] = (Actor("queue", enqueue),)

#: job seconds and counts only make the work longer; workers start processes (the fuzzing
#: starts none: the worker tests do, and stop them)
SLOW_KNOBS: dict[str, float] = {"seconds": 0.0, "count": 1, "workers": 0}

#: 503: Redis does not answer (a sentence, the pane's "stays in-process" case)
DELIBERATE_5XX: dict[str, int] = {}
