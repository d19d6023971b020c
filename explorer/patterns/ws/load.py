"""The WebSocket chat under load: the soak's client (no slow knob nor deliberate 5xx; see
:mod:`explorer.tools.load`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException

from explorer.patterns.ws.bots import ws_url
from explorer.tools.load import Actor, Tally

ROUTE = "/ws/chat/{room}"


async def chat(http: httpx.AsyncClient, tally: Tally, rng: random.Random) -> None:
    """A chat member: joins, talks, reads a little, leaves (abruptly one time in four)."""
    room = f"soak{rng.randrange(3)}"
    url = ws_url(str(http.base_url), f"/ws/chat/{room}?name=s{rng.randrange(10**6)}")
    try:
        async with asyncio.timeout(10):
            async with connect(url) as ws:
                for _ in range(rng.randrange(1, 6)):
                    await ws.send(json.dumps({"type": "message", "text": "x" * 512}))
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(0.2):
                            await ws.recv()
                if rng.random() < 0.25:
                    ws.transport.abort()  # no close frame: the server must clean up anyway
                tally.statuses[(ROUTE, "ok")] += 1
    except TimeoutError:
        tally.statuses[(ROUTE, "slow (>10 s)")] += 1  # naive broadcast behind a slow peer
    except (OSError, WebSocketException) as error:
        code = getattr(getattr(error, "rcvd", None), "code", None)
        if code in (1008, 1013):  # dropped as a slow consumer, or a limit: said why
            tally.statuses[(ROUTE, f"closed {code}")] += 1
        else:
            tally.error(ROUTE, error)


ACTORS: tuple[Actor, ...] = (Actor("ws", chat, 4),)

SLOW_KNOBS: dict[str, float] = {}

DELIBERATE_5XX: dict[str, int] = {}
