"""Lifespan under load: the soak's clients, the fuzzing's cheap values, and the 5xx that is
a lesson (see :mod:`explorer.tools.load`)."""

from __future__ import annotations

import random

import httpx

from explorer.tools.load import Actor, Tally


async def pooled_request(http: httpx.AsyncClient, tally: Tally, rng: random.Random) -> None:
    """A request on the pool in the right form (``async with``), failing or not; now and
    then a leaking one, followed by a reset, so a soak never drains the pool for good."""
    if rng.random() < 0.9:
        params = {"form": "acm", "fail": str(rng.random() < 0.3).lower(), "timeout_s": "1"}
        response = await http.post("/lifespan/pool/request", params=params)
        tally.record("/lifespan/pool/request", response, allowed=(409, 503))
    else:
        params = {"form": "leak", "fail": "true", "timeout_s": "0.1"}
        response = await http.post("/lifespan/pool/request", params=params)
        tally.record("/lifespan/pool/request", response, allowed=(409, 503))
        tally.record("/lifespan/pool/reset", await http.post("/lifespan/pool/reset"))
    tally.record("/lifespan/pool", await http.get("/lifespan/pool"))


async def child_app(http: httpx.AsyncClient, tally: Tally, rng: random.Random) -> None:
    """A child app's whole life in one of its forms (one at a time: 409 when busy), then a
    cleanup of whatever it left open."""
    params = {
        "form": rng.choice(["lifespan", "naive", "on_event"]),
        "fail_at": rng.choice(["none", "second"]),
    }
    response = await http.post("/lifespan/app/run", params=params)
    tally.record("/lifespan/app/run", response, allowed=(409, 503))
    tally.record("/lifespan/app/cleanup", await http.post("/lifespan/app/cleanup"))


ACTORS: tuple[Actor, ...] = (
    Actor("lifespan/pool", pooled_request, 2),
    Actor("lifespan/app", child_app, 1),
)

SLOW_KNOBS: dict[str, float] = {"timeout_s": 0.05}

DELIBERATE_5XX: dict[str, int] = {
    # the pool ran dry: every connection was leaked, so the acquire timed out (the lesson)
    "/lifespan/pool/request": 503,
}
