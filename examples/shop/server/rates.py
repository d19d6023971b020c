"""Exchange rates, read from the upstream service."""

from __future__ import annotations

import json
import urllib.request
from typing import Any


async def current_rates(url: str) -> dict[str, Any]:
    """The upstream's rates. An ``async def`` that calls a synchronous HTTP client: the
    loop waits the whole round trip."""
    with urllib.request.urlopen(url, timeout=5) as response:  # injected: sync-http
        rates: dict[str, Any] = json.load(response)
    return rates
