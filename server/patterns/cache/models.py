"""The cache pattern's answers: the upstream's, the cache's, and the hanging call's."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class Computed(BaseModel):
    """What the upstream computed for a key."""

    key: str
    value: str
    call: int = Field(description="The upstream's call count for this key, this call included.")


class EchoReply(BaseModel):
    """The upstream's answer to a client-run call."""

    run: str
    peer_port: int | None = Field(description="The caller's port: one per TCP connection.")


class HangReply(BaseModel):
    held_ms: float
    caller_gave_up: bool


class CachedValue(BaseModel):
    """``GET /cache/value/{key}``."""

    key: str
    value: str
    source: Literal["hit", "miss", "coalesced"] = Field(
        description="hit: from the cache; miss: this request computed it; coalesced: it "
        "waited for a computation another request had started (single flight)."
    )
    single_flight: bool = Field(description="False in blocking mode: every miss computes.")
    expired: bool = Field(
        description="True: the key was cached but past its TTL, so it was computed again."
    )
    took_ms: float
    age_s: float = Field(description="How long ago the value was computed.")
    expires_in_s: float
    computed_by_call: int = Field(description="Which upstream call for this key produced it.")
    upstream_calls: int = Field(description="Calls the upstream has had for this key so far.")


class CacheStatsOut(BaseModel):
    """``GET /cache/stats``: the cache's counters since the server started (or a reset)."""

    size: int
    maxsize: int
    hits: int
    misses: int = Field(description="Lookups that called the upstream.")
    coalesced: int = Field(description="Misses that waited for a computation in flight.")
    expired: int = Field(description="Entries found (or swept) past their TTL.")
    evictions: int = Field(description="Live entries dropped to stay within maxsize (LRU).")
    errors: int = Field(description="Computations that failed (never cached).")
    in_flight: int = Field(description="Computations running now.")
    single_flight: bool
    upstream_calls: int = Field(description="Calls the loopback upstream has served in all.")


class Cleared(BaseModel):
    dropped: int
    stats: CacheStatsOut


class HangingOut(BaseModel):
    """``GET /cache/hanging`` when the upstream answered (in blocking mode: at last)."""

    hang_s: float
    timeout_s: float | None = Field(description="None: the call had no timeout (blocking mode).")
    waited_ms: float
    note: str
