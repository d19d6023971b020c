"""The task inspector: a real deadlock found over HTTP, routes, unread exceptions, restoring.

The tasks run on the test's own loop, which is the server's: ``GET /monitor/tasks`` lists
them as it lists the server's, over real loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fastasync_probe.monitor import (
    LoopMonitor,
    MonitorConfig,
    TaskBook,
    label,
    lock_owners,
    request_tasks,
)
from server.runner import ServerHandle
from server.settings import Settings
from tests.conftest import eventually


async def tasks_of(client: httpx.AsyncClient, **params: float | int) -> dict[str, Any]:
    response = await client.get("/monitor/tasks", params=params)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


async def take_in_order(first: asyncio.Lock, second: asyncio.Lock, pause_s: float) -> None:
    """Take ``first``, then ``second``: two of these in opposite orders deadlock."""
    async with first:
        await asyncio.sleep(pause_s)
        async with second:
            pass


@contextlib.asynccontextmanager
async def deadlock() -> AsyncIterator[tuple[asyncio.Task[None], asyncio.Task[None]]]:
    """Two tasks, two labelled locks, taken in opposite orders: stuck until cancelled."""
    lock_a, lock_b = label(asyncio.Lock(), "lock A"), label(asyncio.Lock(), "lock B")
    one = asyncio.create_task(take_in_order(lock_a, lock_b, 0.05), name="worker-1")
    two = asyncio.create_task(take_in_order(lock_b, lock_a, 0.05), name="worker-2")
    try:
        yield one, two
    finally:
        one.cancel()
        two.cancel()
        await asyncio.gather(one, two, return_exceptions=True)


async def test_a_deadlock_is_reported_within_a_second_with_both_tasks_and_locks(
    client: httpx.AsyncClient, monitor: LoopMonitor
) -> None:
    loop = asyncio.get_running_loop()
    async with deadlock() as (one, two):
        formed_at = loop.time() + 0.05  # both hold their first lock after the pause
        cycles: list[dict[str, Any]] = []
        while not cycles and loop.time() - formed_at < 3.0:
            cycles = (await tasks_of(client))["cycles"]
            await asyncio.sleep(0.05)
        assert cycles, "no cycle reported"
        assert loop.time() - formed_at < 1.0
        (cycle,) = cycles
        assert sorted(cycle["tasks"]) == ["worker-1", "worker-2"]
        assert sorted(cycle["locks"]) == ["lock A", "lock B"]
        assert set(cycle["task_ids"]) == {id(one), id(two)}
        data = await tasks_of(client)
        rows = {row["name"]: row for row in data["tasks"]}
        for name, waits, holds in (
            ("worker-1", "lock B", "lock A"),
            ("worker-2", "lock A", "lock B"),
        ):
            row = rows[name]
            assert "in_cycle" in row["flags"]
            assert row["waits_on"]["kind"] == "lock"
            assert row["waits_on"]["label"] == waits
            assert [held["label"] for held in row["holds"]] == [holds]
            assert row["where"]["file"] == __file__
            assert row["where"]["function"] == "take_in_order"
        # flagged rows come first
        assert {r["name"] for r in data["tasks"][:2]} == {"worker-1", "worker-2"}
        # while it lasts, looked at as the Tasks tab does (once a second), the loop is not
        # held long by a look. (p99 of 200 samples is the second largest: the two
        # that a look may delay. Alone a look costs well under 5 ms; late in the whole
        # suite, with its heap and a busy CI machine, one sample took 15.2 ms: the bound is
        # 50 ms, loose enough for that noise, tight enough to catch a look that walks the
        # heap on the loop.)
        began = loop.time()
        for _ in range(2):
            await asyncio.sleep(1.0)
            assert (await tasks_of(client))["cycles"]
        assert monitor.lag_since(began).p99 < 50.0


async def test_a_long_wait_behind_a_lock_is_flagged_an_idle_sleep_is_not(
    client: httpx.AsyncClient,
) -> None:
    lock = label(asyncio.Lock(), "slow lock")
    await lock.acquire()  # held by the test's own task
    waiter = asyncio.create_task(take_in_order(lock, asyncio.Lock(), 0), name="stuck-behind")
    sleeper = asyncio.create_task(asyncio.sleep(30), name="idle-sleeper")
    try:
        await asyncio.sleep(0.05)
        await tasks_of(client, long_wait_s=0.2)  # the first look at the lock wait
        await asyncio.sleep(0.3)
        rows = {row["name"]: row for row in (await tasks_of(client, long_wait_s=0.2))["tasks"]}
        stuck, idle = rows["stuck-behind"], rows["idle-sleeper"]
        assert stuck["waits_on"]["kind"] == "lock"
        assert stuck["waits_on"]["label"] == "slow lock"
        assert stuck["waiting_s"] >= 0.2
        assert "long_wait" in stuck["flags"]
        assert idle["waits_on"]["kind"] == "sleep"
        assert idle["waiting_s"] >= 0.3  # exact for a sleep: from its timer
        assert idle["flags"] == []
        assert idle["created_at"].startswith("tests/test_task_inspector.py:")
    finally:
        lock.release()
        sleeper.cancel()
        await asyncio.gather(waiter, sleeper, return_exceptions=True)


async def test_a_task_created_in_a_request_handler_carries_its_route(
    client: httpx.AsyncClient,
) -> None:
    run = asyncio.create_task(
        client.post("/concurrency/run", json={"strategy": "gather", "latency": 1.0})
    )
    try:
        spawned: list[dict[str, Any]] = []

        async def look() -> None:
            rows = (await tasks_of(client))["tasks"]
            spawned[:] = [
                r
                for r in rows
                if r["route"] == "POST /concurrency/run"
                and (r["created_at"] or "").startswith("server/patterns/concurrency/")
            ]

        deadline = time.monotonic() + 3.0
        while not spawned and time.monotonic() < deadline:
            await look()
            await asyncio.sleep(0.05)
        assert spawned, "no task of the run carries its route"
        # one request, one id: the handler's own tasks share it
        assert len({r["request_id"] for r in spawned}) == 1
        assert spawned[0]["request_id"].startswith("r")
    finally:
        assert (await run).status_code == 200


async def test_an_exception_nobody_retrieved_is_flagged(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    async def fail() -> None:
        raise ValueError("nobody reads me")

    kept = asyncio.create_task(fail(), name="failed-and-kept")
    dropped = asyncio.create_task(fail(), name="failed-and-dropped")
    await asyncio.sleep(0.05)
    rows = {row["name"]: row for row in (await tasks_of(client))["tasks"]}
    assert rows["failed-and-kept"]["state"] == "done"
    assert "never_retrieved" in rows["failed-and-kept"]["flags"]
    del dropped
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        gc.collect()
        await eventually(lambda: "Task exception was never retrieved" in caplog.text, within=2.0)
    failures = (await tasks_of(client))["never_retrieved"]
    (failure,) = [f for f in failures if f["name"] == "failed-and-dropped"]
    assert failure["exception"] == "ValueError('nobody reads me')"
    assert failure["coro"].endswith("fail")
    # the previous handler still ran: asyncio logged it as it always does
    assert "nobody reads me" in caplog.text
    assert isinstance(kept.exception(), ValueError)  # read now: no second report


@pytest.mark.parametrize(
    "query",
    ["long_wait_s=0", "long_wait_s=5000", "long_wait_s=abc", "limit=0", "limit=1001", "limit=x"],
)
async def test_bad_parameters_are_a_422(client: httpx.AsyncClient, query: str) -> None:
    response = await client.get(f"/monitor/tasks?{query}")
    assert response.status_code == 422
    assert response.json()["detail"]


async def test_the_limit_bounds_the_rows_not_the_counts(client: httpx.AsyncClient) -> None:
    data = await tasks_of(client, limit=1)
    assert len(data["tasks"]) == 1
    assert data["counts"]["listed"] == 1 < data["counts"]["total"]
    assert data["cost_ms"] >= 0


async def test_stopping_restores_the_task_factory_the_handler_and_lock() -> None:
    loop = asyncio.get_running_loop()
    made: list[object] = []

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        made.append(coro)
        return asyncio.Task(coro, loop=loop, **kwargs)

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        loop.default_exception_handler(context)

    loop.set_task_factory(factory)
    loop.set_exception_handler(handler)
    assert "_locked" not in asyncio.Lock.__dict__
    old_lock = asyncio.Lock()
    await old_lock.acquire()  # taken before the book: still right during and after
    monitor = LoopMonitor(loop, MonitorConfig())
    try:
        monitor.start()
        assert isinstance(asyncio.Lock.__dict__["_locked"], property)
        assert loop.get_task_factory() is not factory
        lock = asyncio.Lock()

        async def hold() -> None:
            await lock.acquire()

        holder = asyncio.create_task(hold(), name="holder")
        await holder
        assert made, "the previous factory still makes the tasks"
        assert lock_owners.owner_of(lock) is holder
        assert old_lock.locked()
        assert lock.locked()
        assert lock_owners.owner_of(old_lock) is None  # taken before: owner unknown
    finally:
        monitor.stop()
        loop.set_task_factory(None)
        loop.set_exception_handler(None)
    assert "_locked" not in asyncio.Lock.__dict__
    assert "_fastasync_owner" not in lock.__dict__
    assert lock.locked()
    assert lock.__dict__["_locked"] is True
    lock.release()
    old_lock.release()
    assert not lock.locked()
    assert not old_lock.locked()


async def test_stopping_restores_what_was_there() -> None:
    loop = asyncio.get_running_loop()

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        return asyncio.Task(coro, loop=loop, **kwargs)

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        loop.default_exception_handler(context)

    loop.set_task_factory(factory)
    loop.set_exception_handler(handler)
    monitor = LoopMonitor(loop, MonitorConfig())
    try:
        monitor.start()
        monitor.stop()
        assert loop.get_task_factory() is factory
        assert loop.get_exception_handler() is handler
    finally:
        loop.set_task_factory(None)
        loop.set_exception_handler(None)


async def test_without_the_book_nothing_is_installed() -> None:
    loop = asyncio.get_running_loop()
    monitor = LoopMonitor(loop, MonitorConfig(task_book=False))
    monitor.start()
    try:
        assert loop.get_task_factory() is None
        assert "_locked" not in asyncio.Lock.__dict__
        assert monitor.tasks.snapshot()["counts"]["total"] >= 1  # still lists the tasks
    finally:
        monitor.stop()


async def test_tasks_pending_at_shutdown_are_logged_and_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    handle = ServerHandle(Settings(port=0, data_dir=tmp_path / "data"))
    await handle.start()
    me = asyncio.current_task()
    assert me is not None
    request_tasks.enter(me, {"type": "http", "method": "GET", "path": "/x"})
    try:
        straggler = asyncio.create_task(asyncio.sleep(30), name="straggler")
    finally:
        request_tasks.leave(me)
    try:
        with caplog.at_level(logging.WARNING, logger="fastasync.server"):
            await handle.stop()
        assert "still pending after the server stopped: straggler" in caplog.text
        (kept,) = TaskBook.for_loop().pending_at_shutdown
        assert kept["name"] == "straggler"
        assert kept["route"] == "GET /x"
    finally:
        straggler.cancel()
        await asyncio.gather(straggler, return_exceptions=True)
        TaskBook.for_loop().pending_at_shutdown = []


def test_cycles_are_found_once_each_and_chains_into_them_are_not_cycles() -> None:
    from fastasync_probe.monitor.wait_graph import cycles

    # a -> b -> c -> a; d waits on a (in no cycle itself); e <-> f; g -> h (ends)
    edges = {"d": "a", "a": "b", "b": "c", "c": "a", "e": "f", "f": "e", "g": "h"}
    found = cycles(edges)
    assert sorted(sorted(cycle) for cycle in found) == [["a", "b", "c"], ["e", "f"]]
    assert cycles({"x": "y"}) == []


async def parked_host_task() -> None:
    """Stands for one of the host's own tasks (the explorer's message pumps)."""
    await asyncio.sleep(30)


async def test_the_hosts_own_tasks_are_counted_not_read_unless_asked(
    client: httpx.AsyncClient, monitor: LoopMonitor
) -> None:
    parked = asyncio.create_task(parked_host_task(), name="host pump")
    monitor.tasks.host_coroutines = frozenset({parked_host_task.__qualname__})
    try:
        await asyncio.sleep(0)
        folded = await tasks_of(client)
        assert folded["counts"]["folded"] == 1
        assert "host pump" not in [row["name"] for row in folded["tasks"]]
        whole = (await client.get("/monitor/tasks", params={"fold": "false"})).json()
        assert "folded" not in whole["counts"] or whole["counts"]["folded"] == 0
        assert "host pump" in [row["name"] for row in whole["tasks"]]
        assert whole["counts"]["total"] == folded["counts"]["total"]
    finally:
        monitor.tasks.host_coroutines = frozenset()
        parked.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await parked
