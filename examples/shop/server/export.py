"""The sales export: a CSV streamed in chunks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

#: chunks in one export (the header is the first)
CHUNKS = 10
ROWS_PER_CHUNK = 5


async def sales_csv() -> AsyncIterator[str]:
    """The export, chunk by chunk; the 5th chunk "compresses" with a blocking call."""
    yield "order_id,product_id,quantity\n"
    for chunk in range(1, CHUNKS):
        await asyncio.sleep(0.01)
        if chunk == 4:
            time.sleep(0.06)  # injected: mid-stream
        rows = range(chunk * ROWS_PER_CHUNK, (chunk + 1) * ROWS_PER_CHUNK)
        yield "".join(f"{1000 + row},{row % 4 + 1},{row % 3 + 1}\n" for row in rows)
