"""Worker processes for CPU-bound work: the right way to keep a CPU loop off the event loop.

A thread would not do: pure-Python CPU work holds the GIL, so the loop would still only run
in the gaps the interpreter's switch interval leaves.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class CpuPool:
    """A process pool started on first use and shut down by the app's lifespan."""

    def __init__(self, workers: int) -> None:
        self._workers = max(1, workers)
        self._executor: ProcessPoolExecutor | None = None

    @property
    def started(self) -> bool:
        return self._executor is not None

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """Run ``fn(*args)`` in a worker process and await its result."""
        if self._executor is None:
            # spawn, not fork: forking a process that runs threads (the watchdog, the
            # UI) copies their locks in whatever state they are in.
            self._executor = ProcessPoolExecutor(
                max_workers=self._workers, mp_context=multiprocessing.get_context("spawn")
            )
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def close(self) -> None:
        """Cancel queued work, let running work finish, reap the processes.

        ``shutdown(wait=True)`` blocks, so it runs on a short-lived thread of its own
        (not the loop's default executor, which would outlive the app).
        """
        executor, self._executor = self._executor, None
        if executor is None:
            return
        loop = asyncio.get_running_loop()
        done = asyncio.Event()

        def shut_down() -> None:
            executor.shutdown(wait=True, cancel_futures=True)
            loop.call_soon_threadsafe(done.set)

        thread = threading.Thread(target=shut_down, name="cpu-pool-shutdown")
        thread.start()
        await done.wait()
        thread.join()
