"""The load driver: real HTTP requests against a user's app, figures per route.

Each :class:`LoadSpec` gets its own ``concurrency`` workers, and every spec runs at the
same time for its own duration. A worker sends one request, reads the whole response
(a streaming one to its end: a stall inside a stream counts) and starts the next one.
A connection error, a timeout or a 5xx is an error, counted, never raised.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from fastasync_probe.monitor.records import percentile

#: how long a request still in flight when its spec's duration ends may take to finish
#: before it is cut off (and counted as an error): a stuck app must not hold the driver
DRAIN_S = 2.0


@dataclass(frozen=True, slots=True)
class LoadSpec:
    """One route to drive: what to send, by how many workers at once, for how long."""

    method: str
    #: the path, which may carry its own query string ("/quote?items=3")
    path: str
    query: Mapping[str, str] = field(default_factory=dict)
    json_body: Any | None = None
    concurrency: int = 4
    duration_s: float = 5.0

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {self.concurrency}")
        if self.duration_s <= 0:
            raise ValueError(f"duration must be positive, not {self.duration_s}")
        if not self.path.startswith("/"):
            raise ValueError(f"a path starts with '/': {self.path!r}")

    @property
    def route(self) -> str:
        """What the figures of this spec are filed under: ``"GET /products/1"``."""
        return f"{self.method} {self.path}"


@dataclass(frozen=True, slots=True)
class RouteFigures:
    """What driving one route measured so far (latencies in milliseconds)."""

    route: str
    #: every finished attempt, errors included
    requests: int
    #: attempts without a response (connection error, timeout) plus 5xx responses
    errors: int
    #: responses by status code
    statuses: Mapping[int, int]
    p50_ms: float
    p99_ms: float
    max_ms: float
    #: finished attempts per second of driving
    rps: float


class _Tally:
    """The raw counts of one spec, turned into :class:`RouteFigures` on demand."""

    def __init__(self, route: str) -> None:
        self.route = route
        self.latencies_ms: list[float] = []
        self.failures = 0
        self.statuses: Counter[int] = Counter()
        self.started = time.perf_counter()
        self.ended: float | None = None

    def figures(self) -> RouteFigures:
        ordered = sorted(self.latencies_ms)
        elapsed = (self.ended or time.perf_counter()) - self.started
        requests = len(ordered) + self.failures
        server_errors = sum(n for status, n in self.statuses.items() if status >= 500)
        return RouteFigures(
            route=self.route,
            requests=requests,
            errors=self.failures + server_errors,
            statuses=dict(sorted(self.statuses.items())),
            p50_ms=percentile(ordered, 50),
            p99_ms=percentile(ordered, 99),
            max_ms=ordered[-1] if ordered else 0.0,
            rps=requests / elapsed if elapsed > 0 else 0.0,
        )


async def _one_request(
    client: httpx.AsyncClient, spec: LoadSpec, url: httpx.URL, tally: _Tally
) -> None:
    started = time.perf_counter()
    try:
        async with client.stream(spec.method, url, json=spec.json_body) as response:
            async for _ in response.aiter_raw():
                pass
    except (httpx.HTTPError, OSError, TimeoutError):
        tally.failures += 1
        return
    tally.latencies_ms.append((time.perf_counter() - started) * 1000.0)
    tally.statuses[response.status_code] += 1


async def _worker(client: httpx.AsyncClient, spec: LoadSpec, tally: _Tally, end: float) -> None:
    loop = asyncio.get_running_loop()
    # merged, not replaced: httpx's ``params=`` would drop the path's own query string
    url = httpx.URL(spec.path).copy_merge_params(dict(spec.query))
    while loop.time() < end:
        try:
            async with asyncio.timeout_at(end + DRAIN_S):
                await _one_request(client, spec, url, tally)
        except TimeoutError:
            # cut off after the drain: counted, and this worker is done
            tally.failures += 1
            return


async def _drive_one(client: httpx.AsyncClient, spec: LoadSpec, tally: _Tally) -> None:
    end = asyncio.get_running_loop().time() + spec.duration_s
    tally.started = time.perf_counter()
    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(spec.concurrency):
                group.create_task(_worker(client, spec, tally, end))
    finally:
        tally.ended = time.perf_counter()


async def drive(
    client: httpx.AsyncClient,
    specs: Sequence[LoadSpec],
    *,
    on_progress: Callable[[Mapping[str, RouteFigures]], None] | None = None,
    progress_every_s: float = 0.25,
) -> dict[str, RouteFigures]:
    """Drive every spec at once through ``client`` (its ``base_url`` set); figures by route.

    ``on_progress`` gets the figures so far every ``progress_every_s`` while driving, and
    once more at the end. Cancelling stops every worker (their connections closed).
    Two specs for the same route are refused (their figures would mix): ``ValueError``.
    """
    routes = [spec.route for spec in specs]
    if len(set(routes)) != len(routes):
        raise ValueError(f"each route is driven once at a time: {routes}")
    tallies = {spec.route: _Tally(spec.route) for spec in specs}

    def figures() -> dict[str, RouteFigures]:
        return {route: tally.figures() for route, tally in tallies.items()}

    async def report() -> None:
        assert on_progress is not None
        while True:
            await asyncio.sleep(progress_every_s)
            on_progress(figures())

    reporter = asyncio.create_task(report()) if on_progress is not None else None
    try:
        async with asyncio.TaskGroup() as group:
            for spec in specs:
                group.create_task(_drive_one(client, spec, tallies[spec.route]))
    finally:
        if reporter is not None:
            reporter.cancel()
            # the reporter only sleeps and calls back: its CancelledError is the one we
            # sent; anything else is the callback's own error, which is the caller's
            (outcome,) = await asyncio.gather(reporter, return_exceptions=True)
            if isinstance(outcome, Exception):
                raise outcome
    result = figures()
    if on_progress is not None:
        on_progress(result)
    return result
