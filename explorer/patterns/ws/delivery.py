"""What each bot is still waiting for: the age of the oldest message sent but not received.

Delivery percentiles count only the messages that arrived. A room that has stopped
delivers nothing, so its p50 and p99 keep the values of the last messages that got
through (a few ms) while every new message waits. The figure that tells the truth is the
age of the oldest message still on its way: per bot, the oldest message the swarm sent
after that bot joined and that the bot has not received; the worst over the bots.

Every message is known by its ``sent_at`` stamp (the server sends it back unchanged), and
stamps are strictly increasing, so send order is index order. Each bot keeps the index of
the oldest message it still waits for and the set of later ones that already arrived
(messages from different bots reach the room over different sockets, so a bot may see
them out of send order). Work per message is a dict lookup and a set operation; the age is
computed when someone reads it, at the pace of a display.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Iterable

#: stamps kept at most; beyond this the oldest are forgotten (and the age understated):
#: at 5,000 msg/s that is 20 s of a room that delivers nothing to some bot
MAX_PENDING = 100_000


class Undelivered:
    """Per bot, which of the swarm's messages have not reached it yet."""

    def __init__(self, max_pending: int = MAX_PENDING) -> None:
        self.max_pending = max_pending
        #: send stamps, oldest first; ``_stamps[0]`` is the message with index ``_base``
        self._stamps: deque[float] = deque()
        self._base = 0
        self._index: dict[float, int] = {}
        #: sends that failed: no bot waits for them
        self._void: set[int] = set()
        #: per bot: the index of the oldest message it waits for (``sent`` when none)
        self._next: dict[str, int] = {}
        #: per bot: indices past ``_next`` that have arrived already
        self._ahead: dict[str, set[int]] = {}
        self._last_stamp = 0.0

    @property
    def sent(self) -> int:
        """Messages stamped so far (the next message's index)."""
        return self._base + len(self._stamps)

    def join(self, bot: str) -> None:
        """``bot`` waits for every message sent from now on."""
        self._next[bot] = self.sent
        self._ahead[bot] = set()

    def leave(self, bot: str) -> None:
        """``bot`` is gone: it waits for nothing any more."""
        self._next.pop(bot, None)
        self._ahead.pop(bot, None)

    def stamp(self) -> tuple[float, int]:
        """A ``sent_at`` for the next message (``perf_counter``, strictly increasing), and
        the message's index. Taken before the send: the echo may arrive before it returns."""
        now = time.perf_counter()
        stamp = now if now > self._last_stamp else math.nextafter(self._last_stamp, math.inf)
        self._last_stamp = stamp
        index = self.sent
        self._stamps.append(stamp)
        self._index[stamp] = index
        if len(self._stamps) > self.max_pending:
            self._forget_before(self._base + len(self._stamps) - self.max_pending)
        return stamp, index

    def failed(self, index: int) -> None:
        """The send of message ``index`` failed: nobody waits for it."""
        self._void.add(index)
        for bot, waiting in list(self._next.items()):
            if waiting == index:
                self._advance(bot, index + 1)

    def received(self, bot: str, stamp: float) -> None:
        """``bot`` got the message stamped ``stamp`` (messages not ours are ignored)."""
        index = self._index.get(stamp)
        waiting = self._next.get(bot)
        if index is None or waiting is None:
            return
        if index == waiting:
            self._advance(bot, index + 1)
        elif index > waiting:
            self._ahead[bot].add(index)

    def _advance(self, bot: str, index: int) -> None:
        ahead = self._ahead[bot]
        sent = self.sent
        while index < sent and (index in ahead or index in self._void):
            ahead.discard(index)
            index += 1
        self._next[bot] = index

    def oldest_age_s(self, bots: Iterable[str], now: float | None = None) -> float:
        """Seconds the oldest message any of ``bots`` still waits for has been on its way
        (0.0 when they have everything); forgets what every bot has received."""
        now = time.perf_counter() if now is None else now
        sent = self.sent
        oldest = min((self._next.get(bot, sent) for bot in bots), default=sent)
        self._forget_before(min(self._next.values(), default=sent))
        if oldest >= sent:
            return 0.0
        return max(0.0, now - self._stamps[max(oldest, self._base) - self._base])

    def _forget_before(self, index: int) -> None:
        """Drop the stamps of messages before ``index``: no bot waits for them (or, past
        ``max_pending``, they are given up on)."""
        while self._base < index and self._stamps:
            stamp = self._stamps.popleft()
            del self._index[stamp]
            self._void.discard(self._base)
            self._base += 1
        for bot, waiting in list(self._next.items()):
            if waiting < self._base:
                ahead = self._ahead[bot]
                ahead.difference_update([i for i in ahead if i < self._base])
                self._advance(bot, self._base)
