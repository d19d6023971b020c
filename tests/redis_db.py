"""The suite's Redis: databases of its own on the machine's server, never a user's 0.

``FASTASYNC_TEST_REDIS_URL`` names the server (default ``redis://127.0.0.1:6379``);
``.ci/run`` sets it and ``FASTASYNC_REQUIRE_REDIS``, which makes the queue tests fail, not
skip, when Redis does not answer. Every app the suite starts uses :data:`SUITE_DB` (through
``FASTASYNC_REDIS_URL``); the queue tests use :data:`QUEUE_DB`, emptied before and after
each. At the end of the run nothing may be left: no worker process, no key, no connection.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import redis

SERVER_ENV = "FASTASYNC_TEST_REDIS_URL"
REQUIRE_ENV = "FASTASYNC_REQUIRE_REDIS"
SUITE_DB = 13
QUEUE_DB = 14


def server_url() -> str:
    return os.environ.get(SERVER_ENV, "redis://127.0.0.1:6379").rstrip("/")


def url_of(db: int) -> str:
    return f"{server_url()}/{db}"


def client(db: int) -> redis.Redis:
    return redis.Redis.from_url(url_of(db), socket_connect_timeout=1)


def answers() -> bool:
    try:
        with client(SUITE_DB) as probe:
            return bool(probe.ping())
    except redis.RedisError:
        return False


def require() -> None:
    """Skip, or fail when the run requires Redis, if Redis does not answer."""
    if answers():
        return
    message = f"Redis does not answer at {server_url()}"
    if os.environ.get(REQUIRE_ENV):
        pytest.fail(f"{message}, and {REQUIRE_ENV} is set")
    pytest.skip(f"{message} (.ci/run makes sure it does)")


def worker_processes() -> list[int]:
    """Pids of queue worker processes on this machine (read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"server.patterns.queue.worker" in command:
            found.append(int(entry.name))
    return found


def connections(db: int) -> list[str]:
    """The other clients connected to ``db`` (this probe's own connection left out)."""
    with client(db) as probe:
        own = probe.client_id()
        return [
            f"{c['addr']} {c.get('cmd', '')}"
            for c in probe.client_list()
            if int(c["db"]) == db and int(c["id"]) != own
        ]


def keys(db: int) -> list[str]:
    with client(db) as probe:
        return [k.decode() for k in probe.keys("*")]


def empty(db: int) -> None:
    with client(db) as probe:
        probe.flushdb()
