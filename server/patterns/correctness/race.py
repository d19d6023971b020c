"""Race condition: concurrent requests read a stock level, ``await``, write ``read - 1``.

The client fires N buys at once. With the pitfall, buyers that read the same level before
any of them wrote overwrite each other: the stock ends higher than N sales should leave it
(lost updates). With the fix (an ``asyncio.Lock`` in memory, an atomic ``UPDATE`` in a
database) every sale counts. The timeline records each buy's read and write, so the
interleaving is visible.

- ``POST /race/reset?store=memory|sqlite|postgres&stock=N``: start again at ``stock``.
- ``POST /race/buy?store=..&form=right|pitfall``: one sale (409 when sold out).
- ``GET /race?store=..``: expected vs actual, lost updates, and the timeline.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel, Field

from server.deps import BlockingMode, provided
from server.patterns.correctness.models import Form, FormQuery, chosen
from server.patterns.correctness.race_stores import (
    MemoryStore,
    PgStore,
    SqliteStore,
    Store,
    StoreUnavailable,
)
from server.patterns.db.urls import BadDatabaseUrl, parse_url
from server.settings import Settings

StoreName = Literal["memory", "sqlite", "postgres"]
#: the most buys (and so the largest stock) one run takes
MAX_STOCK = 500
NO_PG = (
    "no PostgreSQL configured: start with --database-url postgresql://user@host/db "
    "(or FASTASYNC_DATABASE_URL), as the db pattern does"
)

StoreQuery = Annotated[StoreName, Query(description="memory, sqlite or postgres")]


class Step(BaseModel):
    """One buy: its order of arrival, what it read and wrote, and when it began (before any
    wait for the lock) and was done, in ms since the reset."""

    seq: int
    read: int
    wrote: int | None
    began_ms: float
    done_ms: float


@dataclass
class Run:
    """One store's run since its last reset."""

    stock: int = 0
    sold: int = 0
    began: float = 0.0
    seq: int = 0
    form: Form | None = None
    timeline: deque[Step] = field(default_factory=lambda: deque(maxlen=MAX_STOCK))


class RaceLab:
    """The three stores (opened on first use) and each one's run, for the app's life."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stores: dict[StoreName, Store] = {}
        self.runs: dict[StoreName, Run] = {}
        self._opening = asyncio.Lock()

    async def store(self, name: StoreName) -> Store:
        """``name``'s store, opened once; :class:`StoreUnavailable` with the reason."""
        async with self._opening:
            if name not in self.stores:
                self.stores[name] = await self._open(name)
                self.runs[name] = Run()
            return self.stores[name]

    async def _open(self, name: StoreName) -> Store:
        if name == "memory":
            return MemoryStore()
        if name == "sqlite":
            return await SqliteStore.open(self.settings.data_dir)
        url = self.settings.database_url
        if not url:
            raise StoreUnavailable(NO_PG)
        try:
            target = parse_url(url)
        except BadDatabaseUrl as exc:
            raise StoreUnavailable(f"the database URL is not usable: {exc}") from None
        if target.backend != "postgresql":
            raise StoreUnavailable(NO_PG)
        return await PgStore.open(target.dsn, target.schema)

    async def close(self) -> None:
        """Close every store opened (the app is stopping)."""
        for store in self.stores.values():
            with contextlib.suppress(Exception):
                await store.close()
        self.stores.clear()


LabDep = Annotated[RaceLab, Depends(provided(RaceLab))]


class RaceOut(BaseModel):
    """A store's run: what N sales should have left, what is left, and how."""

    store: StoreName
    form: Form | None = Field(description="The form of the last buy (None before any).")
    stock: int = Field(description="The stock at reset.")
    sold: int = Field(description="Buys answered 200 since reset.")
    expected: int = Field(description="stock - sold: what every sale counted would leave.")
    actual: int = Field(description="The level in the store now.")
    lost: int = Field(description="actual - expected: sales whose write was overwritten.")
    timeline: list[Step]


class BuyOut(BaseModel):
    """One sale."""

    store: StoreName
    form: Form
    step: Step


async def opened(lab: RaceLab, name: StoreName) -> Store:
    try:
        return await lab.store(name)
    except StoreUnavailable as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None


async def summary(lab: RaceLab, name: StoreName, store: Store) -> RaceOut:
    run = lab.runs[name]
    actual = await store.level()
    expected = run.stock - run.sold
    return RaceOut(
        store=name,
        form=run.form,
        stock=run.stock,
        sold=run.sold,
        expected=expected,
        actual=actual,
        lost=actual - expected,
        timeline=sorted(run.timeline, key=lambda s: s.seq),
    )


router = APIRouter()
UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    409: {"description": "The store is not available here (no PostgreSQL configured)."}
}


@router.post("/race/reset", responses=UNAVAILABLE)
async def reset(
    lab: LabDep,
    store: StoreQuery = "memory",
    stock: Annotated[int, Query(ge=1, le=MAX_STOCK, description="The level to start at.")] = 50,
) -> RaceOut:
    """Start again: the level set to ``stock``, the counts and timeline emptied."""
    chosen_store = await opened(lab, store)
    await chosen_store.reset(stock)
    lab.runs[store] = Run(stock=stock, began=asyncio.get_running_loop().time())
    return await summary(lab, store, chosen_store)


@router.post(
    "/race/buy",
    responses={**UNAVAILABLE, 410: {"description": "Sold out: the level is 0."}},
)
async def buy(
    lab: LabDep, blocking: BlockingMode, store: StoreQuery = "memory", form: FormQuery = None
) -> BuyOut:
    """Sell one: read, await, write read - 1 (pitfall) or locked / atomic (right)."""
    taken = chosen(form, blocking)
    chosen_store = await opened(lab, store)
    run = lab.runs[store]
    loop = asyncio.get_running_loop()
    run.seq += 1
    seq = run.seq
    began = loop.time()
    if taken == "pitfall":
        read, wrote = await chosen_store.buy_racy()
    else:
        read, wrote = await chosen_store.buy_safe()
    ended = loop.time()
    step = Step(
        seq=seq,
        read=read,
        wrote=wrote,
        began_ms=round((began - run.began) * 1000, 2),
        done_ms=round((ended - run.began) * 1000, 2),
    )
    run.timeline.append(step)
    run.form = taken
    if wrote is None:
        raise HTTPException(status.HTTP_410_GONE, f"sold out: the level read was {read}")
    run.sold += 1
    return BuyOut(store=store, form=taken, step=step)


@router.get("/race", responses=UNAVAILABLE)
async def race(lab: LabDep, store: StoreQuery = "memory") -> RaceOut:
    """Expected vs actual since the last reset, the lost updates, and the timeline."""
    return await summary(lab, store, await opened(lab, store))
