"""The database under load: the soak's client, and the fuzzing's cheap values (see
:mod:`explorer.tools.load`)."""

from __future__ import annotations

import random

import httpx

from explorer.tools.load import Actor, Tally


async def query(http: httpx.AsyncClient, tally: Tally, rng: random.Random) -> None:
    """A user by id (raw SQL or the ORM), the dashboard, a page of posts, the slow report."""
    route = rng.choice(
        [
            f"/db/users/{rng.randrange(1, 260)}",
            f"/db/orm/users/{rng.randrange(1, 260)}",
            "/db/dashboard?latency_ms=20",
            "/db/posts?limit=20&strategy=n_plus_one",
            "/db/posts?limit=20&strategy=prefetch",
            "/db/slow-report?seconds=0.05",
        ]
    )
    response = await http.get(route)
    tally.record(route.split("?")[0].rstrip("0123456789"), response, allowed=(404, 503))


ACTORS: tuple[Actor, ...] = (Actor("db", query, 2),)

SLOW_KNOBS: dict[str, float] = {"timeout_s": 0.05, "seconds": 0.05, "latency_ms": 5}

DELIBERATE_5XX: dict[str, int] = {}
