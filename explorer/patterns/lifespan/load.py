"""The lifespan pattern under load: the soak's clients, the fuzzing's cheap values and the
5xx that is its lesson (see :mod:`explorer.tools.load`)."""

from __future__ import annotations

import random

import httpx

from explorer.tools.load import Actor, Tally


async def live(http: httpx.AsyncClient, tally: Tally, rng: random.Random) -> None:
    """A child app's life in any form, failing or not; what it left open is closed after."""
    params = {
        "form": rng.choice(["lifespan", "naive", "on_event"]),
        "fail_at": rng.choice(["none", "second"]),
    }
    # 409: another soak client's child app is living its life at that moment
    tally.record("/lifespan/app/run", await http.post("/lifespan/app/run", params=params), (409,))
    tally.record("/lifespan/app/cleanup", await http.post("/lifespan/app/cleanup"))


async def use_the_pool(http: httpx.AsyncClient, tally: Tally, rng: random.Random) -> None:
    """Requests on the pool, mostly in the right form; a leaking one is followed by a reset,
    so the soak never drains the pool for good."""
    leak = rng.random() < 0.2
    params = {
        "form": "leak" if leak else "acm",
        "fail": rng.choice(["true", "false"]),
        "timeout_s": "0.2",
    }
    route = "/lifespan/pool/request"
    tally.record(route, await http.post(route, params=params), allowed=(409, 503))
    if leak:
        tally.record("/lifespan/pool/reset", await http.post("/lifespan/pool/reset"))


ACTORS: tuple[Actor, ...] = (Actor("lifespan/app", live), Actor("lifespan/pool", use_the_pool, 2))

SLOW_KNOBS: dict[str, float] = {"timeout_s": 0.05}

DELIBERATE_5XX: dict[str, int] = {
    # every connection leaked by earlier failing requests: the acquire times out
    "/lifespan/pool/request": 503,
}
