"""What each pattern's ``explorer/patterns/<slug>/load.py`` declares, and how it is read.

Every pattern's ``load.py`` holds three names, read for each slug of
:data:`server.patterns.PATTERNS`:

- ``ACTORS: tuple[Actor, ...]``: the soak's clients of the pattern (``explorer.tools.soak``
  runs them all at once, for minutes).
- ``SLOW_KNOBS: dict[str, float]``: for each parameter of the pattern's routes that only
  makes a handler slower or heavier (a sleep, a size, a count), the cheap value the API
  fuzzing (``tests/test_fuzz.py``) lowers a generated in-range value to.
- ``DELIBERATE_5XX: dict[str, int]``: path -> the 5xx status that is the pattern's lesson
  (documented, and it must say why), not a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import httpx
from httpx_sse import aconnect_sse

from explorer.patterns import part_of


@dataclass
class Tally:
    """Every answer, by route and status; anything unexplained is a failure."""

    statuses: Counter[tuple[str, str]] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    def record(self, route: str, response: httpx.Response, allowed: Sequence[int] = ()) -> None:
        """Count ``response``; a status outside 2xx and ``allowed`` is a failure, and so
        is an allowed refusal whose body does not say why (no ``detail``)."""
        status = response.status_code
        self.statuses[(route, str(status))] += 1
        clear = 200 <= status < 300 or status in allowed
        if clear and status >= 400:
            # a refusal must say why
            clear = "detail" in response.json()
        if not clear:
            self.failures.append(f"{route}: {status} {response.text[:200]}")

    def error(self, route: str, error: Exception) -> None:
        """Count a request that got no answer at all: always a failure."""
        self.statuses[(route, type(error).__name__)] += 1
        self.failures.append(f"{route}: {type(error).__name__}: {error}")


#: one visit of a soak client: a request or a few, each answer recorded in the tally
Act = Callable[[httpx.AsyncClient, Tally, random.Random], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Actor:
    """A kind of soak client: its name (in failure lines), what it does, how many at once."""

    name: str
    act: Act
    count: int = 1


async def listen_sse(
    http: httpx.AsyncClient, tally: Tally, path: str, seconds: float, allowed: Sequence[int] = ()
) -> None:
    """Follow the SSE stream at ``path`` for ``seconds``, then leave (the server's generator
    must go with the client)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            async with aconnect_sse(http, "GET", path) as source:
                tally.record(path.split("?")[0], source.response, allowed)
                async for _ in source.aiter_sse():
                    pass


def actors_of(slug: str) -> tuple[Actor, ...]:
    """``explorer.patterns.<slug>.load.ACTORS``."""
    actors: tuple[Actor, ...] = part_of(slug, "load").ACTORS
    return actors


def slow_knobs_of(slug: str) -> dict[str, float]:
    """``explorer.patterns.<slug>.load.SLOW_KNOBS``."""
    knobs: dict[str, float] = part_of(slug, "load").SLOW_KNOBS
    return knobs


def deliberate_5xx_of(slug: str) -> dict[str, int]:
    """``explorer.patterns.<slug>.load.DELIBERATE_5XX``."""
    statuses: dict[str, int] = part_of(slug, "load").DELIBERATE_5XX
    return statuses
