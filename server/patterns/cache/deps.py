"""What the cache pattern's routes share: the lifespan's parts, and their parameters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import httpx
from fastapi import Depends, Query, Request

from server.deps import provided
from server.params import short_name_in_path
from server.patterns.cache.models import Computed
from server.patterns.cache.ttl_cache import TTLCache
from server.patterns.cache.upstream import UpstreamLedger
from server.state import state_of

#: the one shared client's pool: calls beyond it wait for a free connection
POOL_SIZE = 50
#: every call the shared client makes has these; a per-request client gets the same
CLIENT_TIMEOUT = httpx.Timeout(10.0, connect=2.0, pool=5.0)
#: the parameters' bounds: the upstream's latency, its hang, a value's time to live
MAX_DELAY_S = 5.0
MAX_HANG_S = 30.0
MAX_TTL_S = 300.0


@dataclass(frozen=True)
class CacheParts:
    """What the cache pattern's lifespan opens: the cache, the upstream's ledger, a client."""

    cache: TTLCache[str, Computed]
    #: what the loopback upstream has counted
    ledger: UpstreamLedger
    #: the one pooled client every call of this pattern shares (unless told not to)
    client: httpx.AsyncClient


PartsDep = Annotated[CacheParts, Depends(provided(CacheParts))]


async def get_cache(parts: PartsDep) -> TTLCache[str, Computed]:
    """The lifespan-owned TTL cache."""
    return parts.cache


async def get_ledger(parts: PartsDep) -> UpstreamLedger:
    """What the loopback upstream has counted."""
    return parts.ledger


async def get_shared_client(parts: PartsDep) -> httpx.AsyncClient:
    """The one pooled client every call of this pattern shares (unless told not to)."""
    return parts.client


CacheDep = Annotated[TTLCache[str, Computed], Depends(get_cache)]
LedgerDep = Annotated[UpstreamLedger, Depends(get_ledger)]
SharedClient = Annotated[httpx.AsyncClient, Depends(get_shared_client)]

Key = Annotated[str, short_name_in_path("Cache key: 1-64 letters, digits, '_', '.', '-'.")]
Delay = Annotated[
    float, Query(ge=0, le=MAX_DELAY_S, description="Seconds the upstream takes (0 to 5).")
]
Ttl = Annotated[
    float, Query(gt=0, le=MAX_TTL_S, description="Seconds a computed value stays (to 300).")
]


def upstream_url(request: Request, path: str) -> str:
    """The absolute URL of one of our upstream routes, on this server's own address."""
    base = state_of(request.app).base_url or str(request.base_url)
    return f"{base.rstrip('/')}/cache/upstream/{path}"
