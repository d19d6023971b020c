"""What the stream pattern keeps and counts, and the figures ``/stream/stats`` and the
HTML report show from it: downloads, uploads, the server's memory and descriptors."""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from typing import Any

from fastasync_probe.monitor import LoopMonitor
from server.patterns.stream.files import SampleFiles
from server.patterns.stream.memory import RssWatch
from server.patterns.stream.uploads import UploadStore
from server.patterns.tasks.jobs import JobStore


@dataclass
class DownloadBook:
    """What ``/stream/stats`` reports about downloads, kept by :class:`Tracked`."""

    active: int = 0
    completed: int = 0
    aborted: int = 0
    bytes_sent: int = 0
    #: the newest file download's RSS, at its start and at its peak
    last_download: RssWatch | None = None


@dataclass
class StreamState:
    files: SampleFiles
    uploads: UploadStore
    downloads: DownloadBook


def memory() -> dict[str, int]:
    """Resident set size now and at its peak, in bytes (Linux /proc; else getrusage)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status_file:
            fields = dict(line.split(":", 1) for line in status_file if ":" in line)
        return {
            "rss_bytes": int(fields["VmRSS"].split()[0]) * 1024,
            "rss_peak_bytes": int(fields["VmHWM"].split()[0]) * 1024,
        }
    except (OSError, KeyError, ValueError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return {"rss_bytes": peak, "rss_peak_bytes": peak}


def open_fds() -> int | None:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return None


def stream_stats(state: StreamState) -> dict[str, Any]:
    book = state.downloads
    return {
        "downloads_active": book.active,
        "downloads_completed": book.completed,
        "downloads_aborted": book.aborted,
        "bytes_sent": book.bytes_sent,
        "uploads_receiving": state.uploads.receiving,
        "uploads_stored": len(state.uploads.expiry),
        "uploads_deleted": state.uploads.deleted,
        "uploads_refused": state.uploads.refused,
        "generating": state.files.busy,
        **memory(),
        "open_fds": open_fds(),
        "last_download": None if book.last_download is None else book.last_download.as_dict(),
    }


# -- the HTML report's sections -------------------------------------------------------------

Rows = tuple[tuple[str, ...], list[tuple[Any, ...]]]


def process_section(state: StreamState) -> Rows:
    stats = stream_stats(state)
    return ("figure", "value"), [
        (k, v) for k, v in stats.items() if v is not None and not isinstance(v, dict)
    ]


async def files_section(state: StreamState) -> Rows:
    return ("name", "bytes"), [(f.name, f"{f.size:,}") for f in await state.files.listing()]


def jobs_section(jobs: JobStore | None) -> Rows:
    if jobs is None:
        return ("state", "jobs"), []
    return ("state", "jobs"), list(jobs.counts().items())


def stalls_section(monitor: LoopMonitor) -> Rows:
    stalls = monitor.stalls_after(0)[-10:]
    return ("ms", "kind", "where", "route"), [
        (f"{s.duration_ms:.1f}", s.kind, s.location, s.route) for s in stalls
    ]
