"""Small helpers for the sentences the panes write."""

from __future__ import annotations


def counted(count: int, noun: str) -> str:
    """``1 stall``, ``3 stalls``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"
