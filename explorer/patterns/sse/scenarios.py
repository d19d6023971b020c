"""The SSE pattern's scenario: clients that leave a ticker, and what keeps running after.

Each client opens ``GET /sse/ticker`` (a never-ending ticker), reads a few ticks and hangs
up. Right, the generator does its own ticking, so the disconnect ends everything. As the
pitfall, the ticking lives in a producer task the generator started and nothing cancels:
the stream ends, the producer goes on ticking for no one. ``GET /sse/stats`` counts those
producers and the ticks they make; ``DELETE /sse/leaked`` ends them afterwards.
"""

from __future__ import annotations

import asyncio
from typing import Any

from explorer.tools.report.scenario import (
    Outcome,
    Scenario,
    ScenarioError,
    ScenarioRun,
    expect,
    fetch_json,
    gather_all,
    poll_until,
)

CLIENTS = 20
TICKS_READ = 5
TICK_INTERVAL_S = 0.02
#: how long the producers are watched after the clients have left
WATCH_S = 1.0
#: how long the server may take to end the streams of clients that left
SETTLE_S = 5.0
#: one client's whole visit, whatever happens
LISTEN_TIMEOUT_S = 10.0


async def sse_stats(run: ScenarioRun) -> dict[str, Any]:
    """``GET /sse/stats``."""
    return await fetch_json(run, "/sse/stats")


async def read_ticks(run: ScenarioRun) -> int:
    """Open the ticker, read ``TICKS_READ`` tick events, hang up; the ticks read."""
    params = {"interval": TICK_INTERVAL_S}
    ticks = 0
    async with (
        asyncio.timeout(LISTEN_TIMEOUT_S),
        run.http.stream("GET", "/sse/ticker", params=params) as response,
    ):
        if response.status_code != 200:
            await response.aread()
            expect(response)
        async for line in response.aiter_lines():
            field, _, value = line.partition(":")
            if field == "event" and value.strip() == "tick":
                ticks += 1
                if ticks == TICKS_READ:
                    break
    # leaving the block closes the connection mid-stream: the server sees a disconnect
    return ticks


async def streams_back_to(run: ScenarioRun, streams: int) -> dict[str, Any]:
    """Wait until the server has ended the streams of the clients that left."""
    return await poll_until(
        lambda: sse_stats(run),
        lambda stats: stats["streams"] <= streams,
        within_s=SETTLE_S,
        every_s=0.02,
        late=lambda stats: (
            f"{stats['streams'] - streams} SSE stream(s) still open "
            f"{SETTLE_S:g} s after their clients left"
        ),
    )


async def sse_ticker_left(run: ScenarioRun) -> Outcome:
    """20 clients each read 5 ticks of a 20 ms ticker and leave: what is still ticking?"""
    before = await sse_stats(run)
    requests = 1
    try:
        try:
            ticks = await gather_all(*(read_ticks(run) for _ in range(CLIENTS)))
        except TimeoutError:
            raise ScenarioError(
                f"a ticker client did not get {TICKS_READ} ticks within {LISTEN_TIMEOUT_S:g} s"
            ) from None
        requests += CLIENTS
        if sum(ticks) != CLIENTS * TICKS_READ:
            raise ScenarioError(f"{sum(ticks)} ticks read, expected {CLIENTS * TICKS_READ}")
        left = await streams_back_to(run, before["streams"])
        await asyncio.sleep(WATCH_S)
        later = await sse_stats(run)
        requests += 2
    finally:
        # whatever happened, no producer outlives the form
        ended = int(expect(await run.http.delete("/sse/leaked")).json()["cancelled"])
        requests += 1
    leaked = later["leaked_producers"] - before["leaked_producers"]
    unread = later["unread_ticks"] - left["unread_ticks"]
    if leaked <= 0:
        note = f"{CLIENTS} clients read {TICKS_READ} ticks and left: no producer left running"
    else:
        note = (
            f"{CLIENTS} clients left; {leaked} producers still ticking for no one "
            f"({unread:,} ticks in {WATCH_S:g} s) until DELETE /sse/leaked ended {ended}"
        )
    extra = {
        "clients": CLIENTS,
        "ticks_read": sum(ticks),
        "leaked_producers": leaked,
        "unread_ticks": unread,
        "watched_s": WATCH_S,
        "ended_by_delete": ended,
    }
    return Outcome(requests, note, extra)


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "ticker-left",
        "generator ticks itself",
        "producer task left running",
        sse_ticker_left,
    ),
)
