"""The pooling and caching pattern's scenarios. The upstreams are routes of the same server,
reached over loopback HTTP, and they count what reaches them.

- ``stampede``: 50 concurrent requests for one key nobody has cached yet. Right, the
  cache's single flight makes one upstream call and the other 49 wait for it; as the
  pitfall every miss calls the upstream.
- ``hanging``: calls to an upstream that hangs 3 s. Right, the call has a 0.5 s timeout and
  answers 504; as the pitfall it has none and waits out the whole hang.
- ``clients``: 50 upstream calls, 10 at a time. Blocking mode does not change this route:
  the form picks the client, one shared pooled client (right) or a new client per call
  (the pitfall itself, which builds an SSL context on the event loop every time).
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from typing import Any

from explorer.tools.report.scenario import Outcome, Scenario, ScenarioRun, expect, gather_all

STAMPEDE = 50
#: ``source`` of a cache answer: singular and plural, in the order the note lists them
SOURCE_WORDS = (
    ("miss", "miss", "misses"),
    ("coalesced", "coalesced", "coalesced"),
    ("hit", "hit", "hits"),
)
#: long enough for all 50 requests to arrive while the first computation is in flight
#: (on one loop, server and client together, their arrival spreads over a few 100 ms);
#: any request arriving after it finished would be a hit in either form
COMPUTE_S = 1.0


async def cache_stampede(run: ScenarioRun) -> Outcome:
    """50 concurrent requests for one uncached key; the upstream takes 1 s."""
    key = f"report-{uuid.uuid4().hex[:12]}"  # a fresh key: a miss for every request
    params = {"delay_s": COMPUTE_S, "ttl_s": 30}
    try:
        responses = await gather_all(
            *(run.http.get(f"/cache/value/{key}", params=params) for _ in range(STAMPEDE))
        )
        bodies = [expect(r).json() for r in responses]
    finally:
        expect(await run.http.delete("/cache/entries"))  # drop what this form cached
    sources = Counter(str(b["source"]) for b in bodies)
    # each answer says how many calls the upstream has had for the key by then
    calls = max(int(b["upstream_calls"]) for b in bodies)
    how = ", ".join(
        f"{sources[source]} {word if sources[source] == 1 else plural}"
        for source, word, plural in SOURCE_WORDS
        if sources[source]
    )
    calls_text = "1 upstream call" if calls == 1 else f"{calls} upstream calls"
    note = f"{STAMPEDE} concurrent requests for one new key: {calls_text} ({how})"
    extra = {"requests": STAMPEDE, "upstream_calls": calls, "sources": dict(sources)}
    # the upstream calls are real requests too
    return Outcome(STAMPEDE + calls + 1, note, extra)


HANGING = 5
HANG_S = 3.0
TIMEOUT_S = 0.5


async def cache_hanging(run: ScenarioRun) -> Outcome:
    """5 concurrent calls to an upstream that hangs 3 s, with a 0.5 s timeout."""
    params = {"hang_s": HANG_S, "timeout_s": TIMEOUT_S}

    async def answered() -> tuple[int, float]:
        started = time.perf_counter()
        response = expect(await run.http.get("/cache/hanging", params=params), 200, 504)
        return response.status_code, time.perf_counter() - started

    answers = await gather_all(*(answered() for _ in range(HANGING)))
    statuses = Counter(status for status, _ in answers)
    slowest_ms = max(waited for _, waited in answers) * 1000
    how = ", ".join(f"{n} × {status}" for status, n in sorted(statuses.items()))
    note = (
        f"{HANGING} calls to an upstream that hangs {HANG_S:g} s: {how}, "
        f"slowest answer {slowest_ms:.0f} ms"
    )
    extra: dict[str, Any] = {
        "calls": HANGING,
        "statuses": {str(status): n for status, n in statuses.items()},
        "slowest_ms": round(slowest_ms, 1),
    }
    # each call made one upstream call
    return Outcome(2 * HANGING, note, extra)


CLIENT_CALLS = 50
CLIENT_CONCURRENCY = 10


async def cache_clients(run: ScenarioRun) -> Outcome:
    """50 upstream calls, 10 at a time: one shared client, or a new client per call."""
    body = {
        "mode": "per_request" if run.pitfall else "shared",
        "n": CLIENT_CALLS,
        "concurrency": CLIENT_CONCURRENCY,
    }
    report = expect(await run.http.post("/cache/clients/run", json=body)).json()
    note = (
        f"{report['ok']} calls ({report['errors']} failed): "
        f"{report['connections_opened']} new TCP connections, "
        f"{report['clients_created']} new clients"
    )
    extra = {
        key: report[key]
        for key in ("mode", "ok", "errors", "connections_opened", "clients_created", "wall_ms")
    }
    return Outcome(1 + int(report["upstream_calls"]), note, extra)


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("stampede", "single flight", "every miss computes", cache_stampede),
    Scenario("hanging", "0.5 s timeout", "no timeout", cache_hanging),
    Scenario("clients", "one shared client", "a client per call", cache_clients),
)
