"""Server-Sent Events on ``fastapi.sse``: a live feed with ids and resume, a ticker.

- ``GET /sse/feed``: the app's own bus (``tick``, ``stall``, ``job`` events) with ids,
  a ``retry`` hint, ``heartbeat`` events when idle, and resume from ``Last-Event-ID``
  out of a bounded replay ring (a ``missed`` event when the ring no longer covers it).
- ``GET /sse/ticker``: a per-connection ticker; its ticks are numbered, so it resumes too.
- ``GET /sse/stats``: live generators, subscribers, per-topic counts, leaked producers.

How a disconnect ends a stream here (FastAPI 0.165, Starlette 1.10, checked, not assumed):
FastAPI runs the path function's generator in a producer task, inside a task group
entered on the request's exit stack. When the client goes away Starlette's disconnect
listener cancels the response, the exit stack unwinds and the task group is cancelled.
A generator suspended at an ``await`` then gets ``CancelledError`` and its ``finally``
runs at once. But one suspended at ``yield`` - its last event still waiting to be
handed over, common in a burst (37 of 100 clients leaving together, measured) - is
never resumed: its ``finally`` waits for the garbage collector. So what must be undone
(the subscription, the books) is undone by a dependency with ``yield``, which FastAPI
exits on the same exit stack right after the task group: deterministic, within a loop
turn of the disconnect. The same dependency absorbs a known FastAPI race on disconnect
(its keep-alive task hitting the closed stream, fastapi discussion #15725) that would
otherwise log a traceback for a normal client departure.

What no disconnect ends is work the generator handed to a task of its own: that is the
pitfall shown in blocking mode.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, status
from fastapi.responses import HTMLResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent

from server.deps import BlockingMode
from server.patterns.sse.bus import Gap, Subscriber
from server.patterns.sse.deps import TICKER_HEADER as TICKER_HEADER
from server.patterns.sse.deps import (
    FeedPlan,
    HubDep,
    LastEventId,
    bad_request,
    feed_plan,
)
from server.patterns.sse.deps import feed_subscription as feed_subscription
from server.patterns.sse.deps import ticker_stream as ticker_stream
from server.patterns.sse.feeds import LEAK_QUEUE, MAX_LEAKED, SseHub, TickerBooks, tick_value
from server.patterns.sse.models import LeakedOut, TickIntervalIn, TickIntervalOut
from server.patterns.tasks.jobs import JobStore
from server.state import state_of

#: the reconnection delay browsers are told to use (ms)
RETRY_MS = 1000
#: a ticker's bounds: interval (s) and ticks
TICKER_MIN_S = 0.01
TICKER_MAX_S = 60.0
TICKER_MAX_COUNT = 1_000_000


@asynccontextmanager
async def sse_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """One hub (bus + pumps) for the app's life; at exit, feeds end and every task is awaited.

    Router lifespans nest in include order (``PATTERNS``), so the job store of the
    ``tasks`` pattern, when mounted, is open here; without it the feed has no job topic.
    """
    state = state_of(app)
    hub = SseHub(state.monitor, state.find(JobStore))
    hub.start()
    async with state.opened(SseHub, hub, hub.close):
        yield


router = APIRouter(prefix="/sse", tags=["sse"], lifespan=sse_lifespan)


# -- /sse/feed ------------------------------------------------------------------------------


@router.get("/feed", response_class=EventSourceResponse)
async def feed(
    hub: HubDep,
    plan: Annotated[FeedPlan, Depends(feed_plan)],
    subscriber: Annotated[Subscriber, Depends(feed_subscription)],
) -> AsyncIterator[ServerSentEvent]:
    """SSE: the app's events from the bus, resumable, with heartbeats when idle."""
    bus = hub.bus
    cursor = plan.cursor
    yield ServerSentEvent(
        event="hello", retry=RETRY_MS, data={"last_id": bus.event_id(bus.last_seq)}
    )
    if plan.gap is not None:
        yield ServerSentEvent(event="missed", data=gap_report(plan.gap))
    while not bus.closed:
        for event in bus.after(cursor):
            cursor = event.seq
            if event.topic in plan.topics:
                subscriber.delivered += 1
                yield ServerSentEvent(
                    event=event.topic, id=bus.event_id(event.seq), raw_data=event.json
                )
        try:
            async with asyncio.timeout(plan.heartbeat_s):
                await bus.wait_after(cursor)
        except TimeoutError:
            # No id: a heartbeat must not move the client's Last-Event-ID.
            yield ServerSentEvent(event="heartbeat", data={"at": time.time()})


def gap_report(gap: Gap) -> dict[str, Any]:
    """What a ``missed`` event says: which sequence numbers are gone, and why."""
    return {
        "first_seq": gap.first,
        "last_seq": gap.last,
        "count": max(0, gap.last - gap.first + 1),
        "reason": gap.reason,
    }


# -- /sse/ticker ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TickerPlan:
    interval_s: float
    after: int  # the last tick the client has (0: none)
    last: int | None  # the tick the stream ends on (None: never)


async def ticker_plan(
    hub: HubDep,
    blocking: BlockingMode,
    last_event_id: LastEventId = None,
    interval: Annotated[
        float,
        Query(
            ge=TICKER_MIN_S, le=TICKER_MAX_S, allow_inf_nan=False, description="Seconds per tick."
        ),
    ] = 1.0,
    count: Annotated[
        int | None,
        Query(ge=1, le=TICKER_MAX_COUNT, description="End after this tick (default: never)."),
    ] = None,
) -> TickerPlan:
    after = 0
    if last_event_id is not None:
        if not last_event_id.isdigit() or len(last_event_id) > 9:
            raise bad_request(f"Last-Event-ID {last_event_id[:40]!r} is not a tick number")
        after = int(last_event_id)
    if blocking and len(hub.leaked) >= MAX_LEAKED:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail=f"{MAX_LEAKED} leaked ticker producers are already running (the "
            "pitfall's cap); DELETE /sse/leaked ends them",
        )
    return TickerPlan(interval, after, count)


def tick_event(n: int) -> ServerSentEvent:
    return ServerSentEvent(
        event="tick", id=str(n), data={"n": n, "value": tick_value(n), "sent_at": time.time()}
    )


@router.get("/ticker", response_class=EventSourceResponse)
async def ticker(
    hub: HubDep,
    plan: Annotated[TickerPlan, Depends(ticker_plan)],
    books: Annotated[TickerBooks, Depends(ticker_stream)],
    blocking: BlockingMode,
) -> AsyncIterator[ServerSentEvent]:
    """SSE: numbered ticks; ``Last-Event-ID: n`` resumes at tick n+1.

    Right: the generator does the ticking itself, so when FastAPI cancels it on
    disconnect nothing is left running. Pitfall (blocking mode): the ticking is handed
    to a producer task that nothing cancels (see :func:`leaky_ticker`).
    """
    if blocking:
        async for event in leaky_ticker(hub, plan, books):
            yield event
        return
    n = plan.after
    yield ServerSentEvent(comment=f"ticker from {n + 1}", retry=RETRY_MS)
    while plan.last is None or n < plan.last:
        n += 1
        hub.tick_made(books)  # for nobody if the client is gone: never, once cancelled
        yield tick_event(n)
        await asyncio.sleep(plan.interval_s)


async def leaky_ticker(
    hub: SseHub, plan: TickerPlan, books: TickerBooks
) -> AsyncIterator[ServerSentEvent]:
    """The pitfall: a producer task fills a queue, the generator drains it.

    When the client leaves, FastAPI cancels this generator - but the producer is a
    separate task nobody cancels, so it keeps ticking for no one until its count runs
    out (never, by default). Bounded for the demo: at most ``MAX_LEAKED`` at once (the
    route answers 503 beyond), a full queue drops, and the hub cancels them at shutdown
    or on ``DELETE /sse/leaked``. The fix: cancel the producer where the stream's
    cleanup runs - or have no producer task at all, as ``ticker`` does.
    """
    queue: asyncio.Queue[int | None] = asyncio.Queue(maxsize=LEAK_QUEUE)

    async def produce() -> None:
        n = plan.after
        while plan.last is None or n < plan.last:
            n += 1
            hub.tick_made(books)  # for nobody once the client has gone
            if not queue.full():
                queue.put_nowait(n)
            await asyncio.sleep(plan.interval_s)
        await queue.put(None)  # the end; waits for ever if the client left

    producer = asyncio.create_task(produce(), name="sse-leaky-producer")
    hub.adopt_leak(producer)  # only so the demo stays bounded; the route never cancels it
    books.producer = producer
    yield ServerSentEvent(comment=f"ticker from {plan.after + 1} (producer task)")
    while (n := await queue.get()) is not None:
        yield tick_event(n)


# -- a real browser ------------------------------------------------------------------------

#: A page for any browser: its own EventSource on the feed, each event written into the page
#: (``chromium --headless --dump-dom`` prints it; tests/test_sse.py does just that).
BROWSER_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>fastasync-explorer: SSE feed</title></head>
<body>
<h1>EventSource on /sse/feed</h1>
<p id="state">connecting</p>
<ol id="events"></ol>
<script>
const wanted = Number(new URLSearchParams(location.search).get("events") || "3");
const list = document.getElementById("events");
const state = document.getElementById("state");
const source = new EventSource("/sse/feed?topics=tick&heartbeat=1");
source.onopen = () => { state.textContent = "open"; };
source.onerror = () => { state.textContent = "error (the browser will retry)"; };
source.addEventListener("tick", (event) => {
  const item = document.createElement("li");
  item.textContent = `id=${event.lastEventId} tick ${event.data}`;
  list.appendChild(item);
  if (list.children.length >= wanted) {
    source.close();
    state.textContent = `done: ${wanted} events`;
  }
});
</script>
</body></html>
"""


@router.get("/browser", response_class=HTMLResponse)
async def browser_page() -> HTMLResponse:
    """A page whose own ``EventSource`` follows the feed: open it in any browser."""
    return HTMLResponse(BROWSER_PAGE)


# -- control and figures --------------------------------------------------------------------


@router.put("/tick-interval")
async def set_tick_interval(body: TickIntervalIn, hub: HubDep) -> TickIntervalOut:
    """How often the bus ticker publishes a ``tick`` event (0.05 to 10 s)."""
    hub.set_tick_interval(body.interval_s)
    return TickIntervalOut(interval_s=hub.tick_interval_s)


@router.delete("/leaked")
async def end_leaked(hub: HubDep) -> LeakedOut:
    """Cancel the producers the pitfall left running (and wait for them to end)."""
    tasks = list(hub.leaked)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return LeakedOut(cancelled=len(tasks))


@router.get("/stats")
async def sse_stats(hub: HubDep) -> dict[str, Any]:
    """Live generators, subscribers (per topic), events published and delivered, leaks."""
    return hub.stats()
