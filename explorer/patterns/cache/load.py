"""Caching and pooling under load: the soak's client, and the fuzzing's cheap values and
the 5xx that is a lesson (see :mod:`explorer.tools.load`)."""

from __future__ import annotations

import random

import httpx

from explorer.tools.load import Actor, Tally


async def look_up(http: httpx.AsyncClient, tally: Tally, rng: random.Random) -> None:
    """A cached value (a dozen keys, a short TTL), or now and then a call that hangs."""
    if rng.random() < 0.9:
        route = f"/cache/value/k{rng.randrange(12)}?delay_s=0.05&ttl_s=2"
        tally.record("/cache/value/{key}", await http.get(route))
    else:
        route = "/cache/hanging?hang_s=0.5&timeout_s=0.2"
        tally.record("/cache/hanging", await http.get(route), allowed=(504,))


ACTORS: tuple[Actor, ...] = (Actor("cache", look_up, 2),)

SLOW_KNOBS: dict[str, float] = {
    "delay_s": 0.1,
    "timeout_s": 0.05,
    "hang_s": 0.1,
    "hold_s": 0.1,
    # calls of POST /cache/clients/run: a new httpx client per call costs ~30 ms of the
    # loop, so 1,000 of them would outlast the request timeout
    "n": 20,
}

DELIBERATE_5XX: dict[str, int] = {
    # the gateway timeout a call with a deadline gives against a hanging upstream
    "/cache/hanging": 504,
}
