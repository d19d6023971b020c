"""The server process's own footprint: memory, file descriptors, threads, asyncio tasks."""

from __future__ import annotations

import asyncio
import os
import resource
from dataclasses import dataclass
from pathlib import Path

_PAGE = os.sysconf("SC_PAGE_SIZE")
_PROC = Path("/proc/self")


def rss_bytes() -> int:
    """Resident set size now (Linux); the lifetime peak where /proc is missing."""
    try:
        return int((_PROC / "statm").read_text().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def open_fds() -> int | None:
    """Open file descriptors (sockets and files included); None without /proc."""
    try:
        return len(os.listdir(_PROC / "fd"))
    except OSError:
        return None


def os_threads() -> int | None:
    """Threads of the process as the OS counts them (thread pools included)."""
    try:
        for line in (_PROC / "status").read_text().splitlines():
            if line.startswith("Threads:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


@dataclass(frozen=True, slots=True)
class ProcessStats:
    """One reading of the process's footprint."""

    pid: int
    rss_bytes: int
    peak_rss_bytes: int
    open_fds: int | None
    threads: int | None
    asyncio_tasks: int

    @classmethod
    def now(cls) -> ProcessStats:
        """Read it; call on the loop's thread (the task count is that loop's)."""
        rss = rss_bytes()
        # the kernel's high-water mark is updated lazily: never report it under "now"
        peak = max(rss, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
        return cls(
            pid=os.getpid(),
            rss_bytes=rss,
            peak_rss_bytes=peak,
            open_fds=open_fds(),
            threads=os_threads(),
            asyncio_tasks=len(asyncio.all_tasks()),
        )
