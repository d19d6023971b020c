"""The two real resources a child app opens: an SQLite connection and an HTTP client.

Each open and close is written in the run's :class:`EventLog`, in order, and every opened
resource is kept as an :class:`Opened`, so that after the child app's life the route can
ask each one whether it is really still open (the driver's own state, not a flag of ours).
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiosqlite
import httpx

#: the child app's database file, in the data directory
CHILD_DATABASE = "lifespan-child.sqlite3"


class StartupFailed(RuntimeError):
    """The demo's own, declared failure: the second resource does not open (fail_at=second)."""


@dataclass
class Opened:
    """A resource the child app opened: its name and the driver's object."""

    name: str
    resource: aiosqlite.Connection | httpx.AsyncClient

    def is_open(self) -> bool:
        """Asked of the driver itself: a closed aiosqlite connection has no connection (its
        thread has ended); a closed httpx client says ``is_closed``."""
        if isinstance(self.resource, httpx.AsyncClient):
            return not self.resource.is_closed
        try:
            self.resource.in_transaction  # noqa: B018 - raises once the connection is closed
        except ValueError:
            return False
        return True

    async def close(self) -> None:
        """Close it (nothing happens if it is closed already)."""
        if isinstance(self.resource, httpx.AsyncClient):
            await self.resource.aclose()
        else:
            with contextlib.suppress(ValueError, sqlite3.Error):
                await self.resource.close()


@dataclass
class EventLog:
    """What happened during one child app's life, in order, with the time of each step."""

    started: float = field(default_factory=time.perf_counter)
    events: list[tuple[float, str]] = field(default_factory=list)
    opened: list[Opened] = field(default_factory=list)

    def say(self, text: str) -> None:
        self.events.append((round((time.perf_counter() - self.started) * 1000.0, 1), text))


async def open_database(data_dir: Path, log: EventLog) -> aiosqlite.Connection:
    """Resource 1: a real SQLite connection (its own thread) to a file in the data dir."""
    db = await aiosqlite.connect(data_dir / CHILD_DATABASE)
    log.opened.append(Opened("database", db))
    log.say("opened database")
    return db


async def close_database(db: aiosqlite.Connection, log: EventLog) -> None:
    await db.close()
    log.say("closed database")


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every child's client: building one loads the CA bundle, ~30 ms
    of the shared loop each time."""
    return ssl.create_default_context()


async def open_http_client(fail: bool, log: EventLog) -> httpx.AsyncClient:
    """Resource 2: an HTTP client with its connection pool; ``fail``: it does not open."""
    if fail:
        log.say("opening http client failed: StartupFailed")
        raise StartupFailed("the second resource (http client) failed to open (fail_at=second)")
    client = httpx.AsyncClient(timeout=2.0, verify=_tls())
    log.opened.append(Opened("http client", client))
    log.say("opened http client")
    return client


async def close_http_client(client: httpx.AsyncClient, log: EventLog) -> None:
    await client.aclose()
    log.say("closed http client")
