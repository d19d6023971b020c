"""A scenario: one workload, run once with blocking mode off (right) and once on (pitfall)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from server.runner import ServerHandle

T = TypeVar("T")


class ScenarioError(Exception):
    """The scenario saw something it did not expect (a status, a lost answer)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a form of a scenario did: requests answered, and one line about the result.

    ``extra`` holds the scenario's own measured figures (deliveries, upstream calls, ...):
    they go into the JSON report, and tests can assert on them without parsing the note.
    """

    requests: int
    note: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ScenarioRun:
    """What a scenario gets to work with: a client of the embedded server, and the form."""

    http: httpx.AsyncClient
    server: ServerHandle
    pitfall: bool

    @property
    def base_url(self) -> str:
        return self.server.url


ScenarioFunction = Callable[[ScenarioRun], Awaitable[Outcome]]


@dataclass(frozen=True, slots=True)
class Scenario:
    """A pattern's workload; blocking mode switches the server to the pitfall form."""

    name: str
    right: str
    pitfall: str
    run: ScenarioFunction
    #: run before each form, unmeasured: first-use costs (a process pool starting) are
    #: not what the scenario compares
    warmup: ScenarioFunction | None = None
    #: the pattern's slug: the home it is read from says it (``scenarios_of``), once
    pattern: str = ""

    @property
    def key(self) -> str:
        return f"{self.pattern}/{self.name}"


def expect(response: httpx.Response, *statuses: int) -> httpx.Response:
    """The response, if its status is one of ``statuses`` (200 by default)."""
    allowed = statuses or (200,)
    if response.status_code not in allowed:
        raise ScenarioError(
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code}: {response.text[:200]}"
        )
    return response


async def gather_all(*awaitables: Awaitable[T]) -> list[T]:
    """Every result in order, like ``asyncio.gather``; but when one fails, the others are
    cancelled and awaited before the error propagates (a scenario leaves nothing running).
    """
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        for task in tasks:
            task.cancel()  # a no-op for the ones that finished
        await asyncio.gather(*tasks, return_exceptions=True)


async def fetch_json(
    run: ScenarioRun, path: str, params: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """``GET path`` answered 200: its JSON object."""
    body: dict[str, Any] = expect(await run.http.get(path, params=params)).json()
    return body


async def poll_until(
    read: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    *,
    within_s: float,
    every_s: float,
    late: Callable[[T], str],
) -> T:
    """``read()`` every ``every_s`` until ``done`` says yes of what it read; that is returned.

    Still not done after ``within_s``: :class:`ScenarioError` with ``late`` of the last read.
    """
    deadline = time.perf_counter() + within_s
    while not done(value := await read()):
        if time.perf_counter() > deadline:
            raise ScenarioError(late(value))
        await asyncio.sleep(every_s)
    return value
