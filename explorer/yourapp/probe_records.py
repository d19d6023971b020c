"""What the probe's JSON says, typed: its identity, a monitor reading, a stall in full.

The probe runs in another process and speaks JSON (``fastasync_probe``'s HTTP protocol);
these read it back into the monitor's own records (``MonitorSnapshot``, ``LagWindow``,
``Stall`` with its frames and victims) so that the shared widgets (the latency bar) take
them as they are. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastasync_probe.monitor import LagStats, LagWindow, MonitorSnapshot, Stall
from fastasync_probe.monitor.records import Frame


class ProbeError(Exception):
    """The probe did not answer, or answered something this explorer cannot read."""


@dataclass(frozen=True, slots=True)
class ProbeInfo:
    """``GET /_fastasync``: which probe, in which process, measuring how."""

    version: str
    protocol: int
    pid: int
    loop: str
    method: str
    precision_ms: float
    stall_threshold_ms: float
    #: the precision of a stall that begins while the app rests (nothing in flight)
    rest_precision_ms: float | None = None

    @property
    def measuring(self) -> str:
        """``selector, exact`` or ``heartbeat, ±5 ms (±100 ms at rest)``: how far the
        figures can be trusted."""
        if self.method == "selector":
            return "selector, exact"
        shown = f"{self.method}, ±{self.precision_ms:g} ms"
        rest = self.rest_precision_ms
        if rest is not None and rest > self.precision_ms:
            shown += f" (±{rest:g} ms at rest)"
        return shown

    @property
    def loop_name(self) -> str:
        """The loop's class without its module path (``uvloop.Loop`` → ``Loop``) unless
        the module says which loop it is (``uvloop``)."""
        module, _, name = self.loop.rpartition(".")
        return f"{module.split('.')[0]}.{name}" if module else name


def culprit_of(stall: Stall) -> Frame | None:
    """The innermost frame in the user's own code (None when none was sampled)."""
    return next((frame for frame in stall.frames if frame.own), None)


def worst_wait_ms(stall: Stall) -> float:
    """The longest any other request waited for ``stall``."""
    return max((victim.waited_ms for victim in stall.victims), default=0.0)


@dataclass(frozen=True, slots=True)
class MonitorReading:
    """``GET /_fastasync/monitor``: the rolling figures and the stalls after a seq."""

    lag: LagStats
    utilization: float | None
    stall_count: int
    stall_total_ms: float
    stall_in_progress_ms: float | None
    in_flight: int
    stalls: tuple[Stall, ...]
    windows: tuple[LagWindow, ...]

    def snapshot(self) -> MonitorSnapshot:
        """The latency bar's input."""
        return MonitorSnapshot(
            lag=self.lag,
            utilization=self.utilization,
            stall_count=self.stall_count,
            stall_total_ms=self.stall_total_ms,
            windows=self.windows,
            stalls=self.stalls,
        )


@dataclass(frozen=True, slots=True)
class SourceLines:
    """``GET /_fastasync/source``: lines of the user's file around one line."""

    file: str
    path: str
    first_line: int
    line: int
    lines: tuple[str, ...]


def _lag_stats(data: dict[str, Any], samples: int = 0) -> LagStats:
    return LagStats(
        p50=float(data["p50"]),
        p95=float(data["p95"]),
        p99=float(data["p99"]),
        max=float(data["max"]),
        samples=samples,
    )


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def info_of(data: dict[str, Any]) -> ProbeInfo:
    """Read ``GET /_fastasync``; ProbeError when it is not a probe's answer."""
    try:
        if data["probe"] != "fastasync_probe":
            raise ProbeError(f"not a fastasync probe: {data['probe']!r}")
        return ProbeInfo(
            version=str(data["version"]),
            protocol=int(data["protocol"]),
            pid=int(data["pid"]),
            loop=str(data["loop"]),
            method=str(data["method"]),
            precision_ms=float(data["precision_ms"]),
            stall_threshold_ms=float(data["stall_threshold_ms"]),
            rest_precision_ms=_float_or_none(data.get("rest_precision_ms")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ProbeError(f"the probe's answer cannot be read ({exc!r})") from exc


def reading_of(data: dict[str, Any]) -> MonitorReading:
    """Read ``GET /_fastasync/monitor``; ProbeError on another shape."""
    try:
        return MonitorReading(
            lag=_lag_stats(data["lag_ms"], int(data.get("samples") or 0)),
            utilization=_optional_float(data.get("utilization")),
            stall_count=int(data["stall_count"]),
            stall_total_ms=float(data["stall_total_ms"]),
            stall_in_progress_ms=_optional_float(data.get("stall_in_progress_ms")),
            in_flight=int(data.get("in_flight") or 0),
            stalls=tuple(Stall.from_dict(stall) for stall in data["stalls"]),
            windows=tuple(window_of(window) for window in data.get("windows") or ()),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ProbeError(f"the probe's monitor answer cannot be read ({exc!r})") from exc


def window_of(data: dict[str, Any]) -> LagWindow:
    """One of ``GET /monitor``'s ``windows`` (``LagWindow.as_dict``), oldest first."""
    return LagWindow(
        seq=int(data["seq"]),
        ended_at=datetime.fromisoformat(data["ended_at"]).timestamp(),
        lag=_lag_stats(data["lag_ms"]),
        utilization=_optional_float(data.get("utilization")),
    )


def source_of(data: dict[str, Any]) -> SourceLines:
    """Read ``GET /_fastasync/source``."""
    return SourceLines(
        file=str(data["file"]),
        path=str(data["path"]),
        first_line=int(data["first_line"]),
        line=int(data["line"]),
        lines=tuple(str(line) for line in data["lines"]),
    )
