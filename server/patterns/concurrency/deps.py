"""The concurrency pattern's one resource: the demo client with its deliberately small pool."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import httpx
from fastapi import Depends

from server.deps import provided

#: The demo client's pool: deliberately small, so an unbounded fan-out runs out of it.
POOL_SIZE = 10
#: How long a call may wait for a free pooled connection before httpx gives up.
POOL_TIMEOUT_S = 1.0
#: Read timeout of the demo client: an upstream slower than this fails with ReadTimeout.
READ_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class DemoClient:
    """The lifespan-owned demo client with the small pool (this pattern's own)."""

    client: httpx.AsyncClient


async def get_concurrency_client(
    demo: Annotated[DemoClient, Depends(provided(DemoClient))],
) -> httpx.AsyncClient:
    """The lifespan-owned demo client with the small pool."""
    return demo.client


ConcurrencyClient = Annotated[httpx.AsyncClient, Depends(get_concurrency_client)]
