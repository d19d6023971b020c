"""SSE under load: the soak's client (the pattern has no slow knob nor deliberate 5xx; see
:mod:`explorer.tools.load`)."""

from __future__ import annotations

import random

import httpx

from explorer.tools.load import Actor, Tally, listen_sse


async def follow_feed(http: httpx.AsyncClient, tally: Tally, rng: random.Random) -> None:
    """The SSE feed, left after a while; sometimes the ticker too (leaks in blocking mode)."""
    path = rng.choice(["/sse/feed?topics=tick,stall,job", "/sse/ticker?interval=0.1&count=20"])
    await listen_sse(http, tally, path, rng.uniform(0.3, 2.0), allowed=(503,))
    if rng.random() < 0.2:  # the leaked producers are capped; end them now and then
        tally.record("/sse/leaked", await http.delete("/sse/leaked"))


ACTORS: tuple[Actor, ...] = (Actor("sse", follow_feed, 3),)

SLOW_KNOBS: dict[str, float] = {}

DELIBERATE_5XX: dict[str, int] = {}
