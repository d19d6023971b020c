"""CPU-bound work for the basics pattern. Stdlib only: it is imported by worker processes."""

from __future__ import annotations

import os


def crunch(n: int) -> int:
    """A pure-Python CPU loop of ``n`` steps (about 50 ns a step): holds the GIL throughout."""
    total = 0
    for i in range(n):
        total = (total + i * i) % 1_000_000_007
    return total


def crunch_in_worker(n: int) -> tuple[int, int]:
    """:func:`crunch` plus the PID that ran it, so a client can see it left the server."""
    return crunch(n), os.getpid()
