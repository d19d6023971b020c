"""Blocking mode: one switch for the whole app that turns every pattern into its pitfall."""

from __future__ import annotations

import logging
from collections.abc import Callable

log = logging.getLogger("fastasync.blocking")


class BlockingSwitch:
    """The app-wide blocking-mode flag, with listeners for whoever draws it."""

    def __init__(self, enabled: bool = False) -> None:
        self._enabled = enabled
        self._listeners: list[Callable[[bool], None]] = []

    @property
    def enabled(self) -> bool:
        return self._enabled

    def set(self, enabled: bool) -> bool:
        """Switch; returns the new state. Listeners hear about real changes only."""
        if enabled != self._enabled:
            self._enabled = enabled
            log.info(
                "blocking mode %s", "ON: handlers take their pitfall form" if enabled else "off"
            )
            for listener in list(self._listeners):
                listener(enabled)
        return self._enabled

    def toggle(self) -> bool:
        return self.set(not self._enabled)

    def subscribe(self, listener: Callable[[bool], None]) -> Callable[[], None]:
        """Call ``listener(enabled)`` on every change; returns the unsubscribe function."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)
