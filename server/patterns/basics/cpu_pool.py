"""Worker processes for CPU-bound work: the right way to keep a CPU loop off the event loop.

A thread would not do: pure-Python CPU work holds the GIL, so the loop would still only run
in the gaps the interpreter's switch interval leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class CpuPool:
    """A process pool started on first use and shut down by the app's lifespan."""

    def __init__(self, workers: int) -> None:
        self._workers = max(1, workers)
        self._executor: ProcessPoolExecutor | None = None
        #: seconds :meth:`start` took to bring every worker up (None: not measured)
        self.startup_s: float | None = None

    @property
    def started(self) -> bool:
        return self._executor is not None

    @property
    def workers(self) -> int:
        return self._workers

    async def start(self) -> float | None:
        """Start the workers now and time it; None when the pool was already started.

        Each worker is a fresh interpreter (spawn) that imports the work module before it
        can take a job: the first call to a cold pool waits for that. One trivial job per
        worker, submitted together, brings them all up (none is idle yet to take two).
        """
        if self._executor is not None:
            return None
        began = time.perf_counter()
        await asyncio.gather(*(self.run(os.getpid) for _ in range(self._workers)))
        self.startup_s = time.perf_counter() - began
        return self.startup_s

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """Run ``fn(*args)`` in a worker process and await its result."""
        loop = asyncio.get_running_loop()
        # Workers (and multiprocessing's helper process) start inside these calls.
        with _usable_stderr():
            if self._executor is None:
                # spawn, not fork: forking a process that runs threads (the watchdog,
                # the UI) copies their locks in whatever state they are in.
                self._executor = ProcessPoolExecutor(
                    max_workers=self._workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_detach_from_terminal,
                )
            future = loop.run_in_executor(self._executor, fn, *args)
        return await future

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


@contextlib.contextmanager
def _usable_stderr() -> Iterator[None]:
    """Give multiprocessing a real file as ``sys.stderr`` while processes start.

    Textual swaps ``sys.stderr`` for a capture object whose ``fileno()`` is -1, and
    multiprocessing passes that number to its resource-tracker process, which fails with
    "bad value(s) in fds_to_keep". /dev/null is what the helper gets instead.
    """
    try:
        usable = sys.stderr.fileno() >= 0
    except (AttributeError, OSError, ValueError):
        usable = True  # multiprocessing skips a stderr without a descriptor by itself
    if usable:
        yield
        return
    saved = sys.stderr
    with open(os.devnull, "w") as devnull:
        sys.stderr = devnull
        try:
            yield
        finally:
            sys.stderr = saved


def _detach_from_terminal() -> None:
    """Worker initializer: nothing a worker prints may land on the UI's terminal.

    Results and exceptions travel back to the server through the pool's pipes.
    """
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
