"""Server logs into the UI: a logging handler that only queues, drained by the log pane.

Nothing may write to the terminal behind Textual's back, and records arrive from any
thread (threadpool handlers, the watchdog), so ``emit`` just appends to a bounded deque;
the UI drains it on its own timer, in batches.
"""

from __future__ import annotations

import logging
from collections import deque

#: Loggers that would flood the pane with one line per UI request.
QUIET_LOGGERS = ("httpx", "httpcore", "uvicorn.access", "asyncio")


class QueueingLogHandler(logging.Handler):
    """Keeps the last ``capacity`` formatted records for the log pane."""

    def __init__(self, capacity: int = 2000) -> None:
        super().__init__(logging.INFO)
        self.lines: deque[str] = deque(maxlen=capacity)
        self.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
        )

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:  # a logging handler must never raise into the caller
            self.handleError(record)

    def drain(self) -> list[str]:
        """Everything queued since the last drain (oldest first)."""
        drained = []
        while self.lines:
            drained.append(self.lines.popleft())
        return drained


class RootLogCapture:
    """Route the root logger to one handler while the UI runs, then restore it."""

    def __init__(self, handler: logging.Handler) -> None:
        self.handler = handler
        self._saved: tuple[list[logging.Handler], int] | None = None
        self._quiet_levels: dict[str, int] = {}

    def install(self) -> None:
        root = logging.getLogger()
        self._saved = (root.handlers[:], root.level)
        root.handlers = [self.handler]
        root.setLevel(logging.INFO)
        for name in QUIET_LOGGERS:
            logger = logging.getLogger(name)
            self._quiet_levels[name] = logger.level
            logger.setLevel(logging.WARNING)

    def uninstall(self) -> None:
        if self._saved is None:
            return
        root = logging.getLogger()
        root.handlers, level = self._saved
        root.setLevel(level)
        for name, old in self._quiet_levels.items():
            logging.getLogger(name).setLevel(old)
        self._saved = None
