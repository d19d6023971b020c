"""The database pane's requests: what each menu entry sends, over real HTTP, and the figures
it brings back (plain data; :mod:`explorer.patterns.db.results` draws them).

The pane's client shares the server's event loop (and this UI's), so a single timing is at
the mercy of whatever else the loop did at that moment: the comparisons alternate the two
forms and report medians.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from typing import Any

import httpx

#: requests per way in the "fetch one row" comparison
FETCH_REPEATS = 10
#: rounds of each form in the batch and N+1 comparisons (alternated; the median is shown)
PAIR_ROUNDS = 3
#: posts loaded in the N+1 comparison (the N+1 way makes 1 + 2 per post queries)
POSTS = 100
#: extra requests beyond the pool size in the exhaustion demo
EXHAUST_EXTRA = 6
#: the exhaustion demo: each request holds its connection this long; the acquire timeout
HOLD_S = 1.5
ACQUIRE_TIMEOUT_S = 0.5
#: the slow report's query time, and how often another request is sent while it runs
REPORT_S = 0.3
PROBE_EVERY_S = 0.05


async def json_of(request: Any) -> dict[str, Any]:
    """The JSON of a response; an error status raises with the server's ``detail``."""
    response: httpx.Response = await request
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail")
        except ValueError:
            detail = response.text
        raise ValueError(f"HTTP {response.status_code}: {detail}")
    body: dict[str, Any] = response.json()
    return body


async def fetch_three_ways(http: httpx.AsyncClient, backend: str | None) -> dict[str, Any]:
    """One row, ten times each way: the lifespan pool, the session, a pool per request."""
    ways = {
        "lifespan pool": "/db/users/{}",
        "AsyncSession": "/db/orm/users/{}",
        "pool per request": "/db/per-request-pool/users/{}",
    }
    took: dict[str, list[float]] = {via: [] for via in ways}
    opened = dict.fromkeys(ways, 0)
    # Round robin, and the median: a stall of the shared loop lands on one request of one
    # way, not on a whole way's average.
    for user_id in range(1, FETCH_REPEATS + 1):
        for via, path in ways.items():
            began = time.perf_counter()
            user = await json_of(http.get(path.format(user_id)))
            took[via].append(time.perf_counter() - began)
            opened[via] += int(user["connections_opened"])
    missing = await http.get("/db/users/999999")
    return {
        "ways": [
            {"via": via, "ms": 1000 * statistics.median(took[via]), "opened": opened[via]}
            for via in ways
        ],
        "backend": backend,
        "unknown_id": f"{missing.status_code} {missing.json()['detail']}",
    }


async def paired_runs(http: httpx.AsyncClient, key: str, rows: int) -> dict[str, Any]:
    """Batch vs row by row, or prefetch vs N+1: each form ``PAIR_ROUNDS`` times, alternated.

    Each run keeps the route's JSON; ``ms`` becomes the median of the rounds (``ms_runs``
    keeps them all).
    """
    forms = ("batch", "row_by_row") if key == "batch" else ("prefetch", "n_plus_one")
    runs: dict[str, list[dict[str, Any]]] = {form: [] for form in forms}
    for _ in range(PAIR_ROUNDS):
        for form in forms:
            if key == "batch":
                request = http.post("/db/batch-insert", json={"rows": rows, "method": form})
            else:
                request = http.get("/db/posts", params={"limit": POSTS, "strategy": form})
            runs[form].append(await json_of(request))
    paired = []
    for form in forms:
        times = [float(run["ms"]) for run in runs[form]]
        paired.append({**runs[form][-1], "ms": statistics.median(times), "ms_runs": times})
    return {"runs": paired}


async def exhaust(http: httpx.AsyncClient, pool_size: int) -> dict[str, Any]:
    """Pool size + ``EXHAUST_EXTRA`` requests at once, each holding a connection."""
    params = {"seconds": HOLD_S, "timeout_s": ACQUIRE_TIMEOUT_S}

    async def timed() -> tuple[httpx.Response, float]:
        began = time.perf_counter()
        response = await http.get("/db/hold", params=params)
        return response, (time.perf_counter() - began) * 1000

    began = time.perf_counter()
    answers = await asyncio.gather(*(timed() for _ in range(pool_size + EXHAUST_EXTRA)))
    wall = time.perf_counter() - began
    served = [(r.json(), ms) for r, ms in answers if r.status_code == 200]
    refused = [(r.json()["detail"], ms) for r, ms in answers if r.status_code == 503]
    return {
        "requests": len(answers),
        "pool_size": pool_size,
        "hold_s": HOLD_S,
        "timeout_s": ACQUIRE_TIMEOUT_S,
        "ok": len(served),
        "refused": len(refused),
        "other": [r.status_code for r, _ in answers if r.status_code not in (200, 503)],
        "detail": refused[0][0] if refused else None,
        "served_ms": sorted(ms for _, ms in served),
        "refused_ms": sorted(ms for _, ms in refused),
        "waited": sum(1 for body, _ in served if body["waited_ms"] >= 100),
        "max_wait_ms": max((body["waited_ms"] for body, _ in served), default=0.0),
        "wall_ms": wall * 1000,
    }


async def report_with_probes(http: httpx.AsyncClient) -> dict[str, Any]:
    """The slow report, and a small request every ``PROBE_EVERY_S`` while it runs.

    What the report did to everybody else is the longest time in which no other request
    was answered: about ``PROBE_EVERY_S`` when the loop went on serving, the whole query
    when it ran on the loop (these requests come from this UI, on the same frozen loop).
    """
    began = time.perf_counter()
    report = asyncio.ensure_future(
        json_of(http.get("/db/slow-report", params={"seconds": REPORT_S}))
    )
    answered: list[float] = []
    try:
        while not report.done():
            await http.get("/db/status")
            answered.append(time.perf_counter())
            await asyncio.wait([report], timeout=PROBE_EVERY_S)
    finally:
        if not report.done():  # a probe failed: the report is not waited for
            report.cancel()
            await asyncio.gather(report, return_exceptions=True)
    ended = time.perf_counter()
    marks = [began, *answered, ended]
    gaps = [later - earlier for earlier, later in itertools.pairwise(marks)]
    return {
        **report.result(),
        "probes": len(answered),
        "longest_gap_ms": 1000 * max(gaps),
        "wall_ms": 1000 * (ended - began),
    }
