"""Small helpers for the sentences the panes write."""

from __future__ import annotations

from typing import Literal


def counted(count: int, noun: str) -> str:
    """``1 stall``, ``3 stalls``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def blocking_notice(enabled: bool) -> tuple[str, str, Literal["warning", "information"]]:
    """What the ``b`` key says: (message, title, severity) for blocking mode ``enabled``."""
    if enabled:
        return (
            "Async handlers now take their pitfall form. Run something and watch the stall.",
            "Blocking mode ON",
            "warning",
        )
    return ("Handlers are back to their right form.", "Blocking mode off", "information")
