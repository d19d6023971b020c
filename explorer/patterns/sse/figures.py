"""The SSE pane's figures: the server's books, the ticker you left, the swarm, your feed.

Plain functions from counters to one ``Text`` of four short lines (each fits the pane's
73 columns at 100×30), so the pane redraws them without measuring anything itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from rich.text import Text

from fastasync_probe.monitor.records import percentile

#: how long the pane watches the server after leaving the ticker
WATCH_S = 1.0


def describe(event: str, data: str) -> str:
    """One short line for an event's data (the JSON as sent when it is not a known kind)."""
    try:
        d = json.loads(data)
        if event == "tick":
            return f"n={d['n']} value={d['value']}"
        if event == "stall":
            # a stall outside any request has no route: print none (never "None")
            route = f" ({d['route']})" if d.get("route") else ""
            return f"{d['duration_ms']:.0f} ms {d['kind']} at {d['location']}{route}"
        if event == "job":
            error = f": {d['error']}" if d.get("error") else ""
            return f"job {d['id']} {d['kind']} {d['state']}{error}"
    except (ValueError, KeyError, TypeError):
        pass
    return data[:160]


@dataclass
class Swarm:
    """The pane's N subscribers: plain counters the refresh timer reads."""

    open: int = 0
    delivered: int = 0
    errors: int = 0
    lags_ms: list[float] = field(default_factory=list)  # the last few thousand

    def record(self, lag_ms: float) -> None:
        self.delivered += 1
        self.lags_ms.append(lag_ms)
        if len(self.lags_ms) > 5000:
            del self.lags_ms[:2500]


@dataclass(frozen=True)
class Leave:
    """The last "Ticker, leave after 3": where it is, and what the server said after."""

    stage: str  # reading, watching, done, error
    ticks: int = 0
    #: the ticker response's books in /sse/stats (after WATCH_S): None until then
    producers: int | None = None
    ticks_for_nobody: int | None = None
    pitfall: bool = False
    error: str = ""


def leave_result(stream: int, ticks: int, stats: dict[str, Any], pitfall: bool) -> Leave:
    """What the server's books say about ticker stream ``stream`` now."""
    books = next((b for b in stats.get("tickers", []) if b.get("stream") == stream), None)
    if books is None:
        return Leave("error", ticks, error=f"stream {stream} is no longer in /sse/stats")
    producers = 1 if books["producer_running"] else 0
    return Leave("done", ticks, producers, books["ticks_for_nobody"], pitfall)


def _leave_line(leave: Leave | None, text: Text) -> None:
    text.append("ticker ", style="bold")
    if leave is None:
        text.append("'Ticker, leave after 3' reads 3 ticks, leaves, then counts", style="dim")
    elif leave.stage == "reading":
        text.append(f"reading ticks… {leave.ticks} of 3")
    elif leave.stage == "watching":
        text.append(f"left after {leave.ticks} ticks; watching the server for {WATCH_S:g} s…")
    elif leave.stage == "error":
        text.append(leave.error, style="bold yellow")
    else:
        leaked = bool(leave.producers or leave.ticks_for_nobody)
        text.append(f"{WATCH_S:g} s after you left: ")
        text.append(
            f"producers {leave.producers}, ticks for nobody {leave.ticks_for_nobody}",
            style="bold red" if leaked else "bold green",
        )
        text.append(" (End leaks)" if leaked else " (stopped)")


def figures_text(server: dict[str, Any], leave: Leave | None, swarm: Swarm, feed: str) -> Text:
    """The four lines under the lesson: each one row, cut rather than wrapped."""
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append("server ", style="bold")
    text.append(
        f"streams {server.get('streams', '-')}  subscribers {server.get('subscribers', '-')}  "
        f"last id {server.get('last_id', '-')}  "
    )
    leaked = server.get("leaked_producers", 0)
    text.append(f"leaked {leaked}", style="bold red" if leaked else "")
    text.append("\n")
    _leave_line(leave, text)
    text.append("\nswarm  ", style="bold")
    lags = sorted(swarm.lags_ms)
    text.append(
        f"open {swarm.open}  delivered {swarm.delivered:,}  "
        f"lag p50 {percentile(lags, 50):.1f} ms  "
        f"p99 {percentile(lags, 99):.1f} ms  errors {swarm.errors}"
    )
    text.append("\nfeed   ", style="bold")
    text.append(feed)
    return text
