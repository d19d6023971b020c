"""Plain data the monitor produces: lag statistics, windows and stalls."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

StallKind = Literal["blocking", "cpu", "gc"]


def percentile(sorted_values: Sequence[float], q: float, *, interpolate: bool = False) -> float:
    """The ``q``-th percentile (0 to 100) of an already sorted sequence (0.0 when empty).

    Nearest rank by default: always one of the values. ``interpolate=True``: linear
    between the two closest ranks, the cut ``statistics.quantiles(method="inclusive")``
    makes (to the bit, for a whole ``q``).
    """
    if not sorted_values:
        return 0.0
    if interpolate:
        return _interpolated(sorted_values, q)
    rank = max(1, math.ceil(q / 100.0 * len(sorted_values)))
    return sorted_values[rank - 1]


def _interpolated(sorted_values: Sequence[float], q: float) -> float:
    last = len(sorted_values) - 1
    # statistics.quantiles' own arithmetic, so that the figures are the same
    lower, delta = divmod(q * last, 100)
    j = int(lower)
    if j >= last:
        return sorted_values[last]
    return (sorted_values[j] * (100 - delta) + sorted_values[j + 1] * delta) / 100


@dataclass(frozen=True, slots=True)
class LagStats:
    """Event-loop lag percentiles in milliseconds over some set of samples."""

    p50: float = 0.0
    p95: float = 0.0
    p99: float = 0.0
    max: float = 0.0
    samples: int = 0

    @classmethod
    def of(cls, lags_ms: Sequence[float]) -> LagStats:
        ordered = sorted(lags_ms)
        return cls(
            p50=percentile(ordered, 50),
            p95=percentile(ordered, 95),
            p99=percentile(ordered, 99),
            max=ordered[-1] if ordered else 0.0,
            samples=len(ordered),
        )

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 3) for k, v in asdict(self).items() if k != "samples"}


@dataclass(frozen=True, slots=True)
class LagWindow:
    """One short window of sampling: the unit the live sparkline plots."""

    seq: int
    ended_at: float  # unix time
    lag: LagStats
    utilization: float | None  # busy share of the window, 0..1 (None: not measurable)

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "ended_at": iso(self.ended_at),
            "lag_ms": self.lag.as_dict(),
            "utilization": None if self.utilization is None else round(self.utilization, 4),
        }


@dataclass(frozen=True, slots=True)
class Victim:
    """A request that was in flight while the loop stalled, and so waited for it."""

    request_id: str
    #: the route template of a request still in flight when the stall was published
    #: (``GET /products/{id}``); the method and path of one already finished by then
    route: str
    #: how much of the stall fell inside the request's life: the time it waited
    waited_ms: float

    def as_dict(self) -> dict[str, Any]:
        return {"request_id": self.request_id, "route": self.route, "waited_ms": self.waited_ms}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Victim:
        return cls(str(data["request_id"]), str(data["route"]), float(data["waited_ms"]))


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame of a stall's stack; ``own`` when it is the user's code, not a library's."""

    path: str  # short: "server/inventory.py"
    file: str  # absolute
    line: int
    function: str
    own: bool

    def __str__(self) -> str:
        return f"{self.path}:{self.line} in {self.function}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "file": self.file,
            "line": self.line,
            "function": self.function,
            "own": self.own,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Frame:
        return cls(
            str(data["path"]),
            str(data["file"]),
            int(data["line"]),
            str(data["function"]),
            bool(data["own"]),
        )


@dataclass(frozen=True, slots=True)
class Stall:
    """A stretch during which the loop ran no other callback, reported after it ended."""

    seq: int
    started_at: float  # unix time
    duration_ms: float
    kind: StallKind
    location: str | None  # "server/patterns/basics/router.py:42 in async_sleep"
    route: str | None  # "GET /basics/async"
    filename: str | None = None  # absolute path of the blamed frame, for code views
    lineno: int | None = None
    cpu_ms: float = 0.0  # loop-thread CPU time within the stall
    gc_ms: float = 0.0  # garbage-collector pauses within the stall
    stack: tuple[str, ...] = field(default=())
    #: the request the loop was serving (the culprit's), when it was serving one
    request_id: str | None = None
    #: the other requests in flight during the stall: who paid for it
    victims: tuple[Victim, ...] = field(default=())
    #: the stack again, innermost first, each frame marked own code or library
    frames: tuple[Frame, ...] = field(default=())

    @property
    def blocked_ms(self) -> float:
        """Off-CPU time within the stall: the blocking call itself (sleep, I/O, lock)."""
        return max(0.0, self.duration_ms - self.cpu_ms)

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "started_at": iso(self.started_at),
            "duration_ms": round(self.duration_ms, 3),
            "blocked_ms": round(self.blocked_ms, 3),
            "cpu_ms": round(self.cpu_ms, 3),
            "kind": self.kind,
            "location": self.location,
            "route": self.route,
            "gc_ms": round(self.gc_ms, 3),
            "stack": list(self.stack),
            "request_id": self.request_id,
            "victims": [v.as_dict() for v in self.victims],
            "frames": [f.as_dict() for f in self.frames],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Stall:
        """A stall read back from :meth:`as_dict`'s JSON (``GET /monitor``, another process).

        Raises KeyError, TypeError or ValueError on something else.
        """
        return cls(
            seq=int(data["seq"]),
            started_at=datetime.fromisoformat(data["started_at"]).timestamp(),
            duration_ms=float(data["duration_ms"]),
            kind=data["kind"],
            location=data["location"],
            route=data["route"],
            cpu_ms=float(data["cpu_ms"]),
            gc_ms=float(data["gc_ms"]),
            stack=tuple(data["stack"]),
            request_id=data.get("request_id"),
            victims=tuple(Victim.from_dict(v) for v in data.get("victims", ())),
            frames=tuple(Frame.from_dict(f) for f in data.get("frames", ())),
            filename=_culprit_file(data),
            lineno=_culprit_line(data),
        )


@dataclass(frozen=True, slots=True)
class MonitorSnapshot:
    """Everything a gauge needs at one moment."""

    lag: LagStats
    utilization: float | None
    stall_count: int
    stall_total_ms: float
    windows: tuple[LagWindow, ...]
    stalls: tuple[Stall, ...]


def _culprit_file(data: dict[str, Any]) -> str | None:
    """The absolute file of the culprit frame, from ``frames`` (not in older JSON)."""
    own = [f for f in data.get("frames", ()) if f.get("own")]
    return str(own[0]["file"]) if own else None


def _culprit_line(data: dict[str, Any]) -> int | None:
    own = [f for f in data.get("frames", ()) if f.get("own")]
    return int(own[0]["line"]) if own else None


def iso(unix_time: float) -> str:
    """ISO 8601 UTC with milliseconds."""
    return datetime.fromtimestamp(unix_time, UTC).isoformat(timespec="milliseconds")
