"""What an SSE response needs before its first byte, and what undoes it after its last.

A request's plan is checked by a dependency (a generator cannot send a 4xx once it has
started), and what a stream sets up (a subscription, the books ``/sse/stats`` reads) is
undone by a dependency with ``yield``: FastAPI exits it when the response ends, whatever
ends it (the router's module doc says why not the generator's own ``finally``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Literal, get_args

import anyio
from fastapi import Depends, Header, HTTPException, Query, Response, status

from server.deps import provided
from server.patterns.sse.bus import BadEventId, Gap, Subscriber
from server.patterns.sse.feeds import SseHub, TickerBooks

log = logging.getLogger("fastasync.sse")

Topic = Literal["tick", "stall", "job"]
TOPICS: tuple[Topic, ...] = get_args(Topic)
#: names a ticker response's books in ``GET /sse/stats`` ("tickers")
TICKER_HEADER = "X-Ticker-Stream"


HubDep = Annotated[SseHub, Depends(provided(SseHub))]
LastEventId = Annotated[
    str | None,
    Header(
        alias="Last-Event-ID",
        max_length=64,
        description="Sent by EventSource when it reconnects: resume after this event.",
    ),
]


#: what FastAPI's SSE machinery may raise at teardown when the client left mid-send
STREAM_GONE = (anyio.BrokenResourceError, anyio.ClosedResourceError)


@asynccontextmanager
async def open_stream(hub: SseHub) -> AsyncIterator[None]:
    """Count a stream from its first byte to the end of its teardown (see the module doc)."""
    hub.stream_started()
    try:
        yield
    except* STREAM_GONE:
        # A normal departure, not an error: FastAPI's keep-alive task hit the closed stream.
        log.debug("SSE client left mid-stream (fastapi discussion #15725)")
    finally:
        hub.stream_finished()


def bad_request(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_400_BAD_REQUEST, detail=detail)


@dataclass(frozen=True)
class FeedPlan:
    """A feed request, checked before the response starts (a generator cannot send a 4xx)."""

    topics: frozenset[str]
    heartbeat_s: float
    cursor: int
    gap: Gap | None


async def feed_plan(
    hub: HubDep,
    last_event_id: LastEventId = None,
    topics: Annotated[
        str,
        Query(max_length=100, description="Comma-separated: tick, stall, job."),
    ] = "tick,stall,job",
    heartbeat: Annotated[
        float,
        Query(ge=0.5, le=60, allow_inf_nan=False, description="Idle seconds between heartbeats."),
    ] = 15.0,
) -> FeedPlan:
    wanted = frozenset(t.strip() for t in topics.split(",") if t.strip())
    unknown = wanted - set(TOPICS)
    if not wanted or unknown:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=f"topics must be some of {', '.join(TOPICS)}; got {topics[:100]!r}",
        )
    if last_event_id is None:
        return FeedPlan(wanted, heartbeat, hub.bus.last_seq, None)
    try:
        seq = hub.bus.parse_id(last_event_id)
    except BadEventId as exc:
        raise bad_request(str(exc)) from None
    cursor, gap = hub.bus.resume_point(seq)
    return FeedPlan(wanted, heartbeat, cursor, gap)


async def feed_subscription(
    hub: HubDep, plan: Annotated[FeedPlan, Depends(feed_plan)]
) -> AsyncIterator[Subscriber]:
    """Subscribed for exactly as long as the response lives, whatever ends it.

    A dependency with ``yield`` rather than the generator's own ``finally``: FastAPI
    exits it when the response ends, where a generator parked at ``yield`` would wait
    for the garbage collector (the router's module doc).
    """
    subscriber = hub.bus.subscribe(plan.topics)
    try:
        async with open_stream(hub):
            yield subscriber
    finally:
        hub.bus.unsubscribe(subscriber)


async def ticker_stream(hub: HubDep, response: Response) -> AsyncIterator[TickerBooks]:
    """The ticker response's books, closed by FastAPI when the response ends.

    Bookkeeping for ``/sse/stats`` only; the header tells the client which books are its.
    """
    books = hub.open_ticker()
    response.headers[TICKER_HEADER] = str(books.stream)
    try:
        async with open_stream(hub):
            yield books
    finally:
        books.gone = True
