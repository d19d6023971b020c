"""The correctness pattern under load: the soak's clients, the fuzzing's cheap values and
the 5xx that is its lesson (see :mod:`explorer.tools.load`)."""

from __future__ import annotations

import random

import httpx

from explorer.tools.load import Actor, Tally


async def call_the_helper(http: httpx.AsyncClient, tally: Tally, rng: random.Random) -> None:
    """The row-writing helper, awaited or not."""
    params = {"form": rng.choice(["right", "pitfall"])}
    route = "/correctness/missing-await"
    tally.record(route, await http.post(route, params=params))


async def buy(http: httpx.AsyncClient, tally: Tally, rng: random.Random) -> None:
    """A few buys in memory or SQLite (a reset when sold out: 410)."""
    store = rng.choice(["memory", "sqlite"])
    for _ in range(3):
        params = {"store": store, "form": rng.choice(["right", "pitfall"])}
        response = await http.post("/correctness/race/buy", params=params)
        tally.record("/correctness/race/buy", response, allowed=(410,))
        if response.status_code == 410:
            reset = await http.post("/correctness/race/reset", params={"store": store})
            tally.record("/correctness/race/reset", reset)


async def swallow(http: httpx.AsyncClient, tally: Tally, rng: random.Random) -> None:
    """A swallow demo of either kind and form."""
    params = {"kind": rng.choice(["task", "gather"]), "form": rng.choice(["right", "pitfall"])}
    tally.record("/correctness/swallow", await http.post("/correctness/swallow", params=params))


ACTORS: tuple[Actor, ...] = (
    Actor("correctness/missing-await", call_the_helper),
    Actor("correctness/race", buy),
    Actor("correctness/swallow", swallow),
)
SLOW_KNOBS: dict[str, float] = {
    # guide fixes: the debounce delay a trigger waits (guide form) or schedules
    "delay_s": 0.01,
    # deadlock: how long a hang lasts at most, a lock is held, the timeout form waits
    "bound_s": 0.1,
    "hold_s": 0.01,
    "acquire_s": 0.01,
}
DELIBERATE_5XX: dict[str, int] = {
    # guide fixes: the upload sandbox holds 50 files until reset: storage, not a crash
    "/correctness/upload": 507,
}
