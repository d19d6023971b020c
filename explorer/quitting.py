"""Leaving cleanly: quit signals handled like ``q``, and the log's threads let finish."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from typing import Any

from textual.app import App
from textual.widgets import Log

#: ``kill``, a closed terminal and ``kill -INT``: the same graceful quit as ``q``. Textual
#: handles none of them: on the first two the process would die with the terminal left in
#: raw mode; SIGINT was left to asyncio's runner, which cancels the main task, and under
#: load that cancellation could land where Textual absorbs it, leaving the app running.
#: (Ctrl+C at the keyboard is a key in raw mode, not a signal.)
QUIT_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


class QuitSignals:
    """Calls ``on_signal(sig)`` on the loop for each quit signal, while installed."""

    def __init__(self, on_signal: Callable[[signal.Signals], None]) -> None:
        self._on_signal = on_signal
        self._installed: list[signal.Signals] = []

    def install(self) -> None:
        """Handle the quit signals on the running loop (nothing outside the main thread)."""
        loop = asyncio.get_running_loop()
        for sig in QUIT_SIGNALS:
            try:
                loop.add_signal_handler(sig, self._on_signal, sig)
            except (NotImplementedError, RuntimeError, ValueError):
                return  # not the main thread, or no signals here: nothing to install
            self._installed.append(sig)

    def remove(self) -> None:
        """Give the signals back to their defaults; idempotent."""
        loop = asyncio.get_running_loop()
        while self._installed:
            loop.remove_signal_handler(self._installed.pop())


async def let_log_threads_finish(app: App[Any], within_s: float = 1.0) -> None:
    """Wait (briefly) for the Log widgets' measuring threads.

    ``Log.write`` starts a thread worker that reports back with ``call_from_thread``; one
    still running when the app is gone raises NoActiveAppError in its thread. Call it once
    nothing writes to a Log any more.
    """
    threads = [
        worker.wait()
        for worker in list(app.workers)
        if isinstance(worker.node, Log) and not worker.is_finished
    ]
    if threads:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*threads, return_exceptions=True), within_s)
