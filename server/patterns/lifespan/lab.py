"""The pattern's own resources, opened by its router's lifespan: the connection pool, the
resources that pitfall runs left open (closed by the cleanup route, or at the latest on
the way out), and the lock that runs one child app at a time."""

from __future__ import annotations

import asyncio
from pathlib import Path

from server.patterns.lifespan.pool import POOL_DATABASE, ConnectionPool
from server.patterns.lifespan.resources import Opened

#: leftovers kept at most; past it the oldest is closed (a soak must not pile them up)
LEFTOVER_LIMIT = 10


class LifespanLab:
    """The pool, the leftovers and the child apps' lock, for the app's life."""

    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool
        self.leftovers: list[Opened] = []
        #: one child app at a time: the on_event form keeps its resources in globals
        self.child_lock = asyncio.Lock()

    @classmethod
    async def open(cls, data_dir: Path) -> LifespanLab:
        return cls(await ConnectionPool.open(data_dir / POOL_DATABASE))

    async def keep(self, left_open: list[Opened]) -> None:
        """Hold what a run left open, until cleanup; the oldest closed past the limit."""
        self.leftovers.extend(left_open)
        while len(self.leftovers) > LEFTOVER_LIMIT:
            await self.leftovers.pop(0).close()

    async def clean_up(self) -> list[str]:
        """Close every leftover: their names."""
        closing, self.leftovers = self.leftovers, []
        for opened in closing:
            await opened.close()
        return [opened.name for opened in closing]

    async def close(self) -> None:
        await self.clean_up()
        await self.pool.close()
