"""The task book's own bookkeeping: origins by task, kept weakly, pruned as tasks finish."""

from __future__ import annotations

import asyncio
import gc

from fastasync_probe.monitor import TaskBook, request_tasks


async def _nothing() -> None:
    return None


async def _spawn() -> asyncio.Task[None]:
    """Create a task from inside a task, and hand it back."""
    task = asyncio.get_running_loop().create_task(_nothing())
    await task
    return task


async def test_origin_names_the_creating_line_and_the_request() -> None:
    book = TaskBook.for_loop()
    book.install()
    try:
        me = asyncio.current_task()
        assert me is not None
        request_tasks.enter(me, {"type": "http", "method": "GET", "path": "/x"})
        try:
            task = asyncio.get_running_loop().create_task(_nothing())
            grandchild = asyncio.get_running_loop().create_task(_spawn())
            inner = await grandchild
        finally:
            request_tasks.leave(me)
        origin = book.origin_of(task)
        assert origin is not None
        assert origin.filename == __file__
        assert origin.request is not None
        assert origin.request.route == "GET /x"
        # a task created by a task created for the request: the same request
        inner_origin = book.origin_of(inner)
        assert inner_origin is not None
        assert inner_origin.request == origin.request
        await task
        assert book.origin_of(task) is not None  # finished but alive: still known
        assert task in book.recorded_tasks()
    finally:
        book.uninstall()


async def test_an_object_the_book_never_saw_has_no_origin() -> None:
    book = TaskBook.for_loop()
    book.install()
    try:
        stranger = asyncio.get_running_loop().create_future()
        assert book.origin_of(stranger) is None
        assert book.origin_of(object()) is None
    finally:
        book.uninstall()


async def test_finished_tasks_are_forgotten_and_the_book_stays_bounded() -> None:
    book = TaskBook.for_loop()
    book.install()
    try:
        loop = asyncio.get_running_loop()
        for _ in range(20):
            tasks = [loop.create_task(_nothing()) for _ in range(500)]
            await asyncio.gather(*tasks)
            del tasks
            await asyncio.sleep(0)  # the done callbacks still held the last few
            gc.collect()
        # 10,000 tasks made and gone: the book holds no reference to them, and its
        # entries never reached twice the prune floor plus one batch
        assert len(book) <= 2 * TaskBook.PRUNE_FLOOR + 500
        left = [t for t in book.recorded_tasks() if "_nothing" in repr(t.get_coro())]  # type: ignore[attr-defined]
        assert left == []
    finally:
        book.uninstall()
