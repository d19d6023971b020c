"""An asyncio TTL cache with an LRU size bound and single-flight misses.

Why our own and not a library: ``cachetools.TTLCache`` is synchronous, so concurrent
misses for one key all compute (it has no notion of a computation in flight);
``async-lru``'s ``alru_cache`` does share one in-flight call per key and has a TTL, but it
caches a function's arguments rather than named keys, and counts only hits and misses. The
pane needs to show expiries, evictions, coalesced waiters and what is in flight, and to
switch the single flight off to show the stampede. That is about a hundred lines, so it is
here, with no new dependency.

The computation runs in a task the cache owns, and every caller awaits it through
``asyncio.shield``: a caller that goes away (client disconnect, a timeout) does not cancel
the computation the other waiters share. :meth:`TTLCache.close` cancels whatever is still
in flight, so nothing outlives the lifespan that opened the cache.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

#: how a lookup was answered: from the cache, by computing, or by waiting for a computation
#: another caller had already started (single flight)
Source = Literal["hit", "miss", "coalesced"]


@dataclass(frozen=True)
class Entry(Generic[V]):
    """A cached value and its lifetime (``time.monotonic()`` seconds)."""

    value: V
    stored_at: float
    expires_at: float


@dataclass(frozen=True)
class Lookup(Generic[V]):
    """The answer to one :meth:`TTLCache.get_or_compute`."""

    value: V
    source: Source
    entry: Entry[V]
    #: the key was cached but past its TTL: dropped, and computed again (or joined)
    expired: bool = False


@dataclass(frozen=True)
class CacheStats:
    """Counters since the cache was opened (or last reset)."""

    size: int
    maxsize: int
    hits: int
    misses: int
    coalesced: int
    expired: int
    evictions: int
    errors: int
    in_flight: int


class CacheClosed(RuntimeError):
    """The cache was closed (the app is shutting down)."""


class TTLCache(Generic[K, V]):
    """Values by key, each for ``ttl_s`` seconds, at most ``maxsize`` (least recently used
    goes first), with concurrent misses for one key sharing one computation."""

    def __init__(self, maxsize: int, clock: Callable[[], float] = time.monotonic) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.maxsize = maxsize
        self._clock = clock
        self._entries: OrderedDict[K, Entry[V]] = OrderedDict()
        #: the computation in flight per key (single-flight mode)
        self._flights: dict[K, asyncio.Task[Entry[V]]] = {}
        #: computations nobody else may join (the stampede): held so none is lost
        self._loose: set[asyncio.Task[Entry[V]]] = set()
        self._closed = False
        self.reset_stats()

    def reset_stats(self) -> None:
        """Zero the counters (the entries stay)."""
        self.hits = self.misses = self.coalesced = 0
        self.expired = self.evictions = self.errors = 0

    def stats(self) -> CacheStats:
        """The counters and sizes now."""
        return CacheStats(
            size=len(self._entries),
            maxsize=self.maxsize,
            hits=self.hits,
            misses=self.misses,
            coalesced=self.coalesced,
            expired=self.expired,
            evictions=self.evictions,
            errors=self.errors,
            in_flight=len(self._flights) + len(self._loose),
        )

    def peek(self, key: K) -> Entry[V] | None:
        """The live entry for ``key``, without counting a hit or touching its LRU place."""
        entry = self._entries.get(key)
        if entry is None or entry.expires_at <= self._clock():
            return None
        return entry

    def clear(self) -> int:
        """Drop every entry (computations in flight go on); returns how many were dropped."""
        dropped = len(self._entries)
        self._entries.clear()
        return dropped

    async def get_or_compute(
        self,
        key: K,
        compute: Callable[[], Awaitable[V]],
        ttl_s: float,
        *,
        single_flight: bool = True,
    ) -> Lookup[V]:
        """The cached value of ``key``, or ``await compute()`` stored for ``ttl_s`` seconds.

        With ``single_flight`` a miss while the same key is already being computed waits
        for that computation instead of starting another. Without it, every concurrent
        miss computes on its own: the cache stampede. A failed computation is not cached;
        its exception reaches every caller that waited for it.
        """
        if self._closed:
            raise CacheClosed("the cache is closed")
        entry = self._entries.get(key)
        expired = False
        if entry is not None:
            if entry.expires_at > self._clock():
                self._entries.move_to_end(key)  # most recently used
                self.hits += 1
                return Lookup(entry.value, "hit", entry)
            del self._entries[key]
            self.expired += 1
            expired = True
        if single_flight and (flight := self._flights.get(key)) is not None:
            self.coalesced += 1
            entry = await asyncio.shield(flight)
            return Lookup(entry.value, "coalesced", entry, expired)
        self.misses += 1
        flight = asyncio.create_task(self._compute(key, compute, ttl_s), name=f"cache:{key}")
        if single_flight:
            self._flights[key] = flight
        else:
            self._loose.add(flight)
        flight.add_done_callback(lambda done: self._landed(key, done))
        # shield: if this caller is cancelled, the computation goes on for the others
        entry = await asyncio.shield(flight)
        return Lookup(entry.value, "miss", entry, expired)

    async def _compute(self, key: K, compute: Callable[[], Awaitable[V]], ttl_s: float) -> Entry[V]:
        value = await compute()
        now = self._clock()
        entry = Entry(value, now, now + ttl_s)
        self._store(key, entry)
        return entry

    def _store(self, key: K, entry: Entry[V]) -> None:
        if self._closed:
            return
        self._entries[key] = entry
        self._entries.move_to_end(key)
        if len(self._entries) <= self.maxsize:
            return
        # Over the bound: dead entries go first (they are expiries, not evictions), then
        # the least recently used live ones.
        now = self._clock()
        for stale in [k for k, e in self._entries.items() if e.expires_at <= now and k != key]:
            del self._entries[stale]
            self.expired += 1
        while len(self._entries) > self.maxsize:
            self._entries.popitem(last=False)
            self.evictions += 1

    def _landed(self, key: K, flight: asyncio.Task[Entry[V]]) -> None:
        """A computation ended: forget it, and count (and so retrieve) its failure."""
        if self._flights.get(key) is flight:
            del self._flights[key]
        self._loose.discard(flight)
        if not flight.cancelled() and flight.exception() is not None:
            self.errors += 1

    async def close(self) -> None:
        """Refuse new lookups, cancel the computations in flight and wait for them."""
        self._closed = True
        flights = [*self._flights.values(), *self._loose]
        for flight in flights:
            flight.cancel()
        await asyncio.gather(*flights, return_exceptions=True)
        self._entries.clear()
