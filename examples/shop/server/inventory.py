"""Stock levels, as the warehouse reports them."""

from __future__ import annotations

import time

#: what the warehouse said at the last count
_COUNTED = {1: 120, 2: 35, 3: 4, 4: 800}


def stock_level(product_id: int) -> int:
    """How many of ``product_id`` are left.

    A blocking call in a plain function: harmless on its own, but this helper is called
    from an ``async def`` route two calls up, where it holds the whole event loop.
    """
    time.sleep(0.08)  # injected: hidden-sleep
    return _COUNTED.get(product_id, 0)
