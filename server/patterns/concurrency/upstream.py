"""The simulated upstream the runs call: ``GET /concurrency/upstream/{name}``.

A route of this same server, reached over real loopback HTTP: it sleeps a drawn latency,
then answers or fails with 503. With a seed its draw is repeatable, so a run knows how
long each of its calls would have taken.
"""

from __future__ import annotations

import random
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field

from server.disconnect import wait_unless_disconnected
from server.params import short_name_in_path
from server.patterns.concurrency.models import MAX_LATENCY_S, MAX_SEED

#: Included by the pattern's router, under its ``/concurrency`` prefix.
upstream_router = APIRouter()

UpstreamName = Annotated[
    str,
    short_name_in_path("Any short name (letters, digits, '_', '.', '-'); it seeds the draw."),
]
Latency = Annotated[
    float, Query(ge=0, le=MAX_LATENCY_S, description="Seconds the upstream waits (0 to 10).")
]
Jitter = Annotated[
    float,
    Query(ge=0, le=MAX_LATENCY_S, description="Up to this many seconds more or less (0 to 10)."),
]
FailRate = Annotated[
    float, Query(ge=0, le=1, description="Probability (0 to 1) that the call fails with 503.")
]
Seed = Annotated[
    int | None,
    Query(
        ge=-MAX_SEED,
        le=MAX_SEED,
        description="Makes the jitter and failure draw repeatable (together with the name).",
    ),
]


class UpstreamReply(BaseModel):
    """A simulated upstream's answer."""

    name: str
    slept_ms: float = Field(description="The latency drawn for this call (it slept that long).")


def simulated_outcome(
    name: str, latency: float, jitter: float, fail: float, seed: int | None
) -> tuple[float, bool]:
    """The upstream's draw: ``(seconds to sleep, whether it fails)``.

    With a seed the draw depends only on ``(seed, name)``, so a run is repeatable and each
    of its upstreams still draws differently. Both numbers are always drawn, in this order,
    so changing ``jitter`` does not change which calls fail.
    """
    rng = random.Random(f"{seed}:{name}") if seed is not None else random.Random()
    delay = max(0.0, latency + rng.uniform(-jitter, jitter))
    fails = rng.random() < fail
    return delay, fails


@upstream_router.get(
    "/upstream/{name}",
    responses={503: {"description": "The simulated failure: `{detail}` names the upstream."}},
)
async def upstream(
    request: Request,
    name: UpstreamName,
    latency: Latency = 0.2,
    jitter: Jitter = 0.0,
    fail: FailRate = 0.0,
    seed: Seed = None,
) -> UpstreamReply:
    """A slow, sometimes failing upstream: sleeps ``latency`` +- ``jitter``, then answers."""
    delay, fails = simulated_outcome(name, latency, jitter, fail, seed)
    # Sleep, unless the caller hangs up first (a cancelled race loser, a deadline).
    await wait_unless_disconnected(request, delay, name=f"upstream:{name}")
    if fails:
        raise HTTPException(503, detail=f"upstream {name} failed (simulated)")
    return UpstreamReply(name=name, slept_ms=round(delay * 1000.0, 3))
