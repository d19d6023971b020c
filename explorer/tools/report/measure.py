"""What one form of a scenario cost: wall time, loop lag, stalls and memory, measured."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from fastasync_probe.monitor import LagStats, Stall
from server.process_stats import rss_bytes

MIB = 1024 * 1024


class RssSampler(threading.Thread):
    """Samples RSS from its own thread, so a frozen event loop does not hide the peak."""

    def __init__(self, interval_s: float = 0.005) -> None:
        super().__init__(name="report-rss", daemon=True)
        self.interval_s = interval_s
        self.baseline = rss_bytes()
        self.peak = self.baseline
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(self.interval_s):
            self.peak = max(self.peak, rss_bytes())

    def finish(self) -> int:
        """Stop sampling; the peak growth over the baseline, in bytes."""
        self._done.set()
        self.join(timeout=1.0)
        self.peak = max(self.peak, rss_bytes())
        return self.peak - self.baseline


@dataclass(frozen=True, slots=True)
class StallSummary:
    """The stalls of one form: how many, how long, and the line that caused most of it."""

    count: int
    total_ms: float
    max_ms: float
    location: str | None

    @classmethod
    def of(cls, stalls: list[Stall]) -> StallSummary:
        by_location: Counter[str] = Counter()
        for stall in stalls:
            by_location[stall.location or f"({stall.kind}, no project frame)"] += int(
                stall.duration_ms * 1000
            )
        top = by_location.most_common(1)[0][0] if by_location else None
        return cls(
            count=len(stalls),
            total_ms=sum(s.duration_ms for s in stalls),
            max_ms=max((s.duration_ms for s in stalls), default=0.0),
            location=top,
        )


@dataclass(frozen=True, slots=True)
class StallMark:
    """One stall of a form, placed on the form's own time axis (seconds from its start)."""

    at_s: float
    duration_ms: float
    location: str | None
    route: str | None

    @classmethod
    def of(cls, stall: Stall, form_started_at: float) -> StallMark:
        """``stall`` placed against the form's start (``time.time()``, as stalls are)."""
        return cls(
            at_s=max(0.0, stall.started_at - form_started_at),
            duration_ms=stall.duration_ms,
            location=stall.location,
            route=stall.route,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "at_s": round(self.at_s, 4),
            "duration_ms": round(self.duration_ms, 2),
            "location": self.location,
            "route": self.route,
        }


@dataclass(slots=True)
class FormResult:
    """One form (right or pitfall) of one scenario, as measured."""

    scenario: str
    form: str  # "right" or "pitfall"
    wall_s: float = 0.0
    requests: int = 0
    lag: LagStats | None = None
    stalls: StallSummary | None = None
    rss_growth_bytes: int = 0
    rss_peak_bytes: int = 0
    note: str = ""
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: the loop's lag over the form: (seconds from its start, lag ms), one per sample
    lag_series: list[tuple[float, float]] = field(default_factory=list)
    #: every stall of the form, where it fell on that time axis
    stall_marks: list[StallMark] = field(default_factory=list)

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.wall_s if self.wall_s > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "form": self.form,
            "wall_s": round(self.wall_s, 4),
            "requests": self.requests,
            "requests_per_s": round(self.requests_per_s, 2),
            "lag_ms": self.lag.as_dict() if self.lag else None,
            "stalls": (
                {
                    "count": self.stalls.count,
                    "total_ms": round(self.stalls.total_ms, 2),
                    "max_ms": round(self.stalls.max_ms, 2),
                    "location": self.stalls.location,
                }
                if self.stalls
                else None
            ),
            "rss_peak_mib": round(self.rss_peak_bytes / MIB, 2),
            "rss_growth_mib": round(self.rss_growth_bytes / MIB, 2),
            "note": self.note,
            "error": self.error,
            **({"extra": self.extra} if self.extra else {}),
            "lag_series": [[round(t, 4), round(lag, 3)] for t, lag in self.lag_series],
            "stall_marks": [mark.as_dict() for mark in self.stall_marks],
        }
