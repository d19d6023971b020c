"""The app's event bus behind ``/sse/feed``: ids, a bounded replay ring, cheap fan-out.

One ``EventBus`` per app, opened by the ``sse`` router's lifespan. Publishers (the ticker,
the stall and job pumps) call :meth:`EventBus.publish`, which never waits. Subscribers do
not get a queue each: they keep a cursor (the last sequence number they sent) and read
the ring from there. So:

- ids are ``<epoch>-<seq>``: ``seq`` grows by one per event, and ``epoch`` is random per
  bus, so an id from before a restart is recognised as foreign instead of silently
  matching an unrelated event of the new run;
- resuming from ``Last-Event-ID`` is reading the ring after that seq: no gap, no
  duplicate, as long as the ring still holds the next event. When it does not (the
  client was away for longer than the ring covers, or the id is from another run),
  :meth:`EventBus.since` says exactly which sequence numbers were lost;
- memory is bounded by the ring whatever the number of subscribers, and a slow
  subscriber costs nothing until it falls off the ring's end (then it is told).
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

#: events the ring keeps for resuming clients
RING_CAPACITY = 1024

_ID = re.compile(r"^([0-9a-f]{6})-([0-9]{1,18})$")


@dataclass(frozen=True, slots=True)
class BusEvent:
    """One published event."""

    seq: int
    topic: str
    data: dict[str, Any]
    published_at: float  # unix time, for delivery lag
    #: the ``data:`` line, encoded once for every subscriber (``published_at`` included)
    json: str


@dataclass(frozen=True, slots=True)
class Gap:
    """Events a resuming client can no longer get: ``first``..``last`` inclusive."""

    first: int
    last: int
    reason: str


@dataclass(eq=False)
class Subscriber:
    """One open feed: what it asked for and what it was sent (for ``/sse/stats``)."""

    topics: frozenset[str]
    since: float = field(default_factory=time.time)
    delivered: int = 0


class BadEventId(ValueError):
    """A ``Last-Event-ID`` this bus never issued in any form."""


class EventBus:
    """Monotonic ids, a fixed-size ring, and one wake-up per publish for all subscribers."""

    def __init__(self, capacity: int = RING_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.epoch = secrets.token_hex(3)
        self.capacity = capacity
        # A list used as a circular buffer: event ``seq`` lives at ``seq % capacity``, so
        # reading a subscriber's tail costs what it returns (a deque would walk to it).
        self._ring: list[BusEvent | None] = [None] * capacity
        self.last_seq = 0
        self.published: Counter[str] = Counter()
        self.subscribers: set[Subscriber] = set()
        # Replaced on every publish; waiters hold the one they saw. ``Event.wait`` is
        # cancel-safe per waiter, where a shared future would be cancelled for everyone.
        self._wakeup = asyncio.Event()
        self.closed = False

    # -- ids ------------------------------------------------------------------------------

    def event_id(self, seq: int) -> str:
        return f"{self.epoch}-{seq}"

    def parse_id(self, text: str) -> int | None:
        """The seq of one of this bus's ids; ``None`` for a well-formed id of another run.

        :class:`BadEventId` for anything else (no client of ours can have sent it).
        """
        match = _ID.match(text.strip())
        if match is None:
            raise BadEventId(f"Last-Event-ID {text[:40]!r} is not an id this feed issues")
        epoch, seq = match.group(1), int(match.group(2))
        return seq if epoch == self.epoch else None

    @property
    def oldest_seq(self) -> int:
        """The oldest seq the ring still holds (``last_seq + 1`` when it is empty)."""
        return max(1, self.last_seq - self.capacity + 1) if self.last_seq else 1

    # -- publishing -----------------------------------------------------------------------

    def publish(self, topic: str, data: dict[str, Any]) -> BusEvent:
        """Append an event and wake every subscriber. Never waits."""
        self.last_seq += 1
        now = time.time()
        payload = json.dumps({**data, "published_at": now}, separators=(",", ":"), default=str)
        event = BusEvent(self.last_seq, topic, data, now, payload)
        self._ring[event.seq % self.capacity] = event
        self.published[topic] += 1
        self._wake()
        return event

    def close(self) -> None:
        """Wake every subscriber for the last time: feeds end when they see ``closed``."""
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        waking, self._wakeup = self._wakeup, asyncio.Event()
        waking.set()

    # -- subscribing ----------------------------------------------------------------------

    def subscribe(self, topics: Iterable[str]) -> Subscriber:
        subscriber = Subscriber(frozenset(topics))
        self.subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.discard(subscriber)

    def resume_point(self, seq: int | None) -> tuple[int, Gap | None]:
        """Where a client that last saw ``seq`` continues, and what it lost, if anything.

        ``seq`` is from :meth:`parse_id` (``None``: an id from another run of the server).
        """
        if seq is None:
            return self.last_seq, Gap(
                0, self.last_seq, "the id is from an earlier run of the server"
            )
        if seq > self.last_seq:
            return self.last_seq, Gap(
                self.last_seq + 1, seq, "the id is ahead of this feed's last event"
            )
        if seq < self.oldest_seq - 1:
            gap = Gap(seq + 1, self.oldest_seq - 1, "older than the replay buffer")
            return self.oldest_seq - 1, gap
        return seq, None

    def after(self, seq: int) -> list[BusEvent]:
        """Events with a seq above ``seq`` that the ring still holds, oldest first."""
        start = max(seq + 1, self.oldest_seq)
        events = []
        for s in range(start, self.last_seq + 1):
            event = self._ring[s % self.capacity]
            assert event is not None  # every seq from oldest_seq to last_seq is in the ring
            events.append(event)
        return events

    async def wait_after(self, seq: int) -> None:
        """Return once an event newer than ``seq`` exists, or the bus is closed."""
        while self.last_seq <= seq and not self.closed:
            await self._wakeup.wait()

    def topic_counts(self) -> dict[str, int]:
        """Open subscribers per topic."""
        counts: Counter[str] = Counter()
        for subscriber in self.subscribers:
            counts.update(subscriber.topics)
        return dict(counts)
