"""Streaming under load: the soak's client, and the fuzzing's cheap values and the 5xx
that is a lesson (see :mod:`explorer.tools.load`)."""

from __future__ import annotations

import random

import httpx

from explorer.tools.load import Actor, Tally


async def transfer(http: httpx.AsyncClient, tally: Tally, rng: random.Random) -> None:
    """A download cut short or read whole, an upload, a CSV export."""
    choice = rng.random()
    if choice < 0.5:
        names = [f["name"] for f in (await http.get("/stream/files")).json()]
        if not names:
            made = await http.post("/stream/files", json={"size_bytes": 4 * 1024 * 1024})
            tally.record("/stream/files (new)", made, allowed=(201, 507))
            return
        async with http.stream("GET", f"/stream/files/{rng.choice(names)}") as response:
            tally.record("/stream/files/{name}", response)
            limit = rng.randrange(1, 5 * 1024 * 1024)
            read = 0
            async for chunk in response.aiter_bytes():
                read += len(chunk)
                if read > limit:
                    break  # the client leaves mid-way
    elif choice < 0.8:
        body = rng.randbytes(rng.randrange(1, 256 * 1024))
        tally.record("/stream/uploads", await http.post("/stream/uploads", content=body), (507,))
    else:
        tally.record("/stream/export.csv", await http.get("/stream/export.csv"))


ACTORS: tuple[Actor, ...] = (Actor("stream", transfer, 2),)

SLOW_KNOBS: dict[str, float] = {
    "delay": 0.02,
    # bytes a request makes the server write or generate
    "size_bytes": 65_536,
}

DELIBERATE_5XX: dict[str, int] = {
    # too many uploads waiting for their delayed cleanup: storage, not a crash
    "/stream/uploads": 507,
}
