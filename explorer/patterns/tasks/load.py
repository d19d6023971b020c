"""Background tasks under load: the soak's clients, and the fuzzing's cheap values (see
:mod:`explorer.tools.load`)."""

from __future__ import annotations

import random

import httpx

from explorer.tools.load import Actor, Tally, listen_sse


async def submit(http: httpx.AsyncClient, tally: Tally, rng: random.Random) -> None:
    """A job that sleeps or fails, queued, fired and forgotten, or as a background task."""
    spec = {"kind": rng.choice(["sleep", "fail"]), "duration_s": 0.05}
    route = rng.choice(["/tasks/queue", "/tasks/fire-and-forget", "/tasks/background"])
    body: object = {"jobs": [spec, spec]} if route == "/tasks/background" else spec
    tally.record(route, await http.post(route, json=body), allowed=(503,))


async def follow_jobs(http: httpx.AsyncClient, tally: Tally, rng: random.Random) -> None:
    """A subscriber of the jobs' SSE stream that leaves after a while."""
    await listen_sse(http, tally, "/tasks/stream", rng.uniform(0.5, 3.0))


ACTORS: tuple[Actor, ...] = (Actor("tasks", submit, 2), Actor("tasks/stream", follow_jobs, 2))

SLOW_KNOBS: dict[str, float] = {"duration_s": 0.05, "delay_s": 0.1}

DELIBERATE_5XX: dict[str, int] = {}
