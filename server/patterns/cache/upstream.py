"""What the cache pattern's loopback upstream has seen: calls per key, TCP peers per run.

The upstream is a route of this same server, reached over real loopback HTTP. Counting at
the upstream side is what makes the figures honest: a call the cache saved never arrives,
and a new TCP connection shows up as a new client ``(host, port)`` (every connection gets
its own ephemeral port on the caller's side).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

#: keys and runs remembered (least recently used forgotten first): memory stays bounded
MAX_KEYS = 4096
MAX_RUNS = 64


class UpstreamLedger:
    """Counters the upstream routes update and the pattern routes read back."""

    def __init__(self) -> None:
        self._calls: OrderedDict[str, int] = OrderedDict()
        self._peers: OrderedDict[str, set[tuple[str, int]]] = OrderedDict()
        self._run_calls: dict[str, int] = {}
        self.total_calls = 0

    def record_call(self, key: str) -> int:
        """One more call for ``key``; returns how many it has had."""
        count = self._calls.pop(key, 0) + 1
        self._calls[key] = count
        if len(self._calls) > MAX_KEYS:
            self._calls.popitem(last=False)
        self.total_calls += 1
        return count

    def calls(self, key: str) -> int:
        """Calls the upstream has served for ``key`` (0 if none, or forgotten)."""
        return self._calls.get(key, 0)

    def record_peer(self, run: str, peer: tuple[str, int] | None) -> None:
        """A request of ``run`` arrived from ``peer`` (the caller's end of its connection)."""
        peers = self._peers.pop(run, set())
        if peer is not None:
            peers.add(peer)
        self._peers[run] = peers
        self._run_calls[run] = self._run_calls.get(run, 0) + 1
        while len(self._peers) > MAX_RUNS:
            gone, _ = self._peers.popitem(last=False)
            self._run_calls.pop(gone, None)
        self.total_calls += 1

    def connections(self, run: str) -> int:
        """Distinct TCP connections the requests of ``run`` came in on."""
        return len(self._peers.get(run, ()))

    def run_calls(self, run: str) -> int:
        """Requests of ``run`` that reached the upstream."""
        return self._run_calls.get(run, 0)


def computed_value(key: str) -> str:
    """What the upstream computes for ``key``: a digest, the same every time."""
    return hashlib.sha256(f"fastasync-explorer:{key}".encode()).hexdigest()[:16]
