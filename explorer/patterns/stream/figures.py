"""The Streaming pane's figures: the transfer, and the server's memory beside it.

The memory lesson is the download's **peak** RSS growth, which the server measures itself
(``last_download`` in ``GET /stream/stats``): in the pitfall the whole file sits in memory
only while it is being sent, and the loop (so any poll) is blocked while it is read, so
the RSS "now" a client sees between two polls may already be back down.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from rich.text import Text

MiB = 1024 * 1024
#: a peak above this share of the file means the file was held in memory
HELD_SHARE = 0.5


@dataclass
class Transfer:
    """A download in flight: counters the refresh timer reads."""

    name: str
    total: int
    received: int = 0
    started: float = 0.0
    finished: float | None = None
    outcome: str = "running"

    @property
    def rate(self) -> float:
        elapsed = (self.finished or time.monotonic()) - self.started
        return self.received / elapsed if elapsed > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        rate = self.rate
        return (self.total - self.received) / rate if rate > 0 else None


def peak_growth(transfer: Transfer | None, server: dict[str, Any]) -> int | None:
    """How far the server's RSS rose above its start during ``transfer`` (bytes)."""
    last = server.get("last_download")
    if transfer is None or not last or last.get("name") != transfer.name:
        return None
    growth: int = last["peak_growth_bytes"]
    return growth


def transfer_text(transfer: Transfer | None, server: dict[str, Any]) -> Text:
    """Four lines: the transfer, RSS now, the peak during the download, the books."""
    text = Text(no_wrap=True, overflow="ellipsis")
    t = transfer
    if t is None:
        text.append("no download yet: r downloads a file of the size above", style="dim")
    else:
        eta = t.eta_s
        text.append(
            f"{t.received / MiB:,.1f} / {t.total / MiB:,.1f} MiB  {t.rate / MiB:,.1f} MiB/s  "
            f"ETA {'-' if eta is None or t.finished else f'{eta:.1f} s'}  {t.outcome}"
        )
    rss = server.get("rss_bytes")
    last = server.get("last_download")
    text.append("\nserver ", style="bold")
    text.append(f"RSS {0 if rss is None else rss / MiB:,.1f} MiB now")
    if rss is not None and last and t is not None and last.get("name") == t.name:
        text.append(f" ({(rss - last['rss_before_bytes']) / MiB:+,.1f} since it started)")
    text.append("\n       ")
    growth = peak_growth(t, server)
    if growth is None or t is None:
        text.append("peak during the download: -", style="dim")
    else:
        held = growth >= HELD_SHARE * t.total
        text.append("peak during the download ")
        text.append(f"{growth / MiB:+,.1f} MiB", style="bold red" if held else "bold green")
        text.append(f" ({growth / max(t.total, 1):.2f}× the {t.total / MiB:,.0f} MiB file)")
    text.append(
        f"\n       downloads active {server.get('downloads_active', '-')}  "
        f"aborted {server.get('downloads_aborted', '-')}  open fds {server.get('open_fds', '-')}  "
        f"uploads kept {server.get('uploads_stored', '-')}"
    )
    return text
