"""The caching pane's demo menu: what each demonstration shows, right and in blocking mode,
and the fields it reads."""

from __future__ import annotations

from dataclasses import dataclass

from explorer.pane import Teaching
from explorer.patterns.cache.client import SWEEP_KEYS
from server.patterns.cache import router as routes


@dataclass(frozen=True)
class Demo(Teaching):
    """An entry of the demo menu: what it shows, right and in blocking mode."""

    key: str
    label: str
    #: the fields it reads (only these are shown while it is chosen)
    fields: tuple[str, ...]


DEMOS: tuple[Demo, ...] = (
    Demo(
        "get",
        "Get one key",
        ("key", "delay_s", "ttl_s"),
        lesson="The first read calls the slow upstream (a miss); reads within the TTL are hits "
        "(µs); after the TTL the entry has expired: a miss again.",
        pitfall="Blocking mode: the cache has no single flight; a lone read looks the same. "
        "Try Stampede.",
    ),
    Demo(
        "stampede",
        "Stampede",
        ("key", "delay_s", "ttl_s", "callers"),
        lesson="n requests for one cold key at once: the first computes, the others wait for "
        "its result (single flight). The upstream counts one call.",
        pitfall="Blocking mode: no single flight, so every concurrent miss calls the upstream: "
        "a cache stampede, n upstream calls for one value.",
    ),
    Demo(
        "sweep",
        f"Sweep ×{SWEEP_KEYS}",
        ("ttl_s",),
        lesson=f"Read {SWEEP_KEYS} keys into a cache of {routes.CACHE_SIZE}: the least recently "
        "used entries are evicted, so memory stays bounded.",
    ),
    Demo(
        "clients",
        "Shared vs per-request client",
        ("calls", "concurrency"),
        lesson="The same calls with the one lifespan httpx client (pooled, kept-alive "
        "connections) and with a new client per call: requests/s and TCP connections opened.",
    ),
    Demo(
        "hanging",
        "Hanging upstream",
        ("hang_s", "timeout_s"),
        lesson="Call an upstream that hangs, with a timeout: the request answers 504 with a "
        "message as soon as the timeout passes.",
        pitfall="Blocking mode: the call has no timeout, so the request waits the whole hang.",
    ),
)
DEMO_BY_KEY = {demo.key: demo for demo in DEMOS}
