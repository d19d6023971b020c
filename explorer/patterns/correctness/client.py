"""The correctness tabs' requests, over real HTTP: one missing-await call, a race of N
concurrent buys, one swallow demo. What the tabs show as their client code."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import httpx

Reply = dict[str, Any]


def form_param(form: str) -> dict[str, str]:
    """The ``form`` query parameter; none when the tab follows blocking mode."""
    return {} if form == "mode" else {"form": form}


def answer(response: httpx.Response) -> Reply:
    """The JSON of a 2xx; else ``ValueError`` with the server's sentence."""
    body: Reply = response.json()
    if not response.is_success:
        raise ValueError(f"HTTP {response.status_code}: {body.get('detail')}")
    return body


async def missing_await(http: httpx.AsyncClient, form: str) -> Reply:
    """One call of the row-writing helper, awaited or not."""
    return answer(await http.post("/correctness/missing-await", params=form_param(form)))


@dataclass
class Race:
    """A race of concurrent buys: the server's summary and each buy's status."""

    summary: Reply
    statuses: list[int] = field(default_factory=list)


async def race(http: httpx.AsyncClient, store: str, form: str, n: int) -> Race:
    """Reset ``store`` to ``n`` items, fire ``n`` buys at once, read expected vs actual."""
    answer(await http.post("/correctness/race/reset", params={"store": store, "stock": n}))
    params = {"store": store, **form_param(form)}

    async def buy() -> int:
        return (await http.post("/correctness/race/buy", params=params)).status_code

    statuses = list(await asyncio.gather(*(buy() for _ in range(n))))
    summary = answer(await http.get("/correctness/race", params={"store": store}))
    return Race(summary, statuses)


async def swallow(http: httpx.AsyncClient, kind: str, form: str) -> Reply:
    """One run of the ``kind`` demo (task or gather)."""
    params = {"kind": kind, **form_param(form)}
    return answer(await http.post("/correctness/swallow", params=params))
