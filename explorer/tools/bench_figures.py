"""The figures of ``fastasync-explorer bench``: what one run measured, and its report.

``explorer.tools.bench`` measures; this module holds the results and turns them into the
printed tables and the JSON of ``--json``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from explorer.tools.bench_kit import BenchError, fmt, format_table, header_line
from fastasync_probe.monitor import Stall

LOAD_PATH = "/basics/async?delay=0"
BLOCKING_ROUTE = "GET /basics/blocking"
STALL_DELAYS_S = (0.020, 0.050, 0.200, 1.000)
STALL_REPEATS = 3
WARMUP_S = 1.0
#: what the JSON report keeps of each row's stall
STALL_FIELDS = ("duration_ms", "blocked_ms", "cpu_ms", "kind", "location", "seq")

#: the targets of the instrument's cost: (what, the bound, True when the figure must stay
#: at or under it); the summary table says each figure's verdict against its own
TARGETS: dict[str, tuple[str, float, bool]] = {
    "explorer_idle_cpu": ("idle CPU, TUI in a terminal, gauges live (% of a core)", 2.0, True),
    "serve_idle_cpu": ("idle CPU, serve (% of a core)", 1.0, True),
    "throughput": (f"requests/s of {LOAD_PATH}, TUI ÷ serve", 0.95, False),
    "monitor": ("bare FastAPI app, monitor started ÷ not", 0.98, False),
    "idle_lag": ("idle loop-lag p99, TUI ÷ bare asyncio loop", 2.0, True),
}
THROUGHPUT_TARGET = TARGETS["throughput"][1]

# -- results -------------------------------------------------------------------------------


@dataclass(slots=True)
class LoadResult:
    """One ``explorer.tools.loadgen`` run."""

    requests: int
    errors: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float

    def as_dict(self) -> dict[str, Any]:
        """The figures for the JSON report."""
        return {
            "requests": self.requests,
            "errors": self.errors,
            "seconds": self.seconds,
            "rps": self.rps,
            "latency_ms": {"p50": self.p50_ms, "p99": self.p99_ms},
        }


@dataclass(slots=True)
class IdleLag:
    """Loop lag percentiles (ms) over an idle stretch."""

    p50: float
    p99: float
    max: float
    samples: int

    @classmethod
    def of(cls, data: dict[str, Any], source: str) -> IdleLag:
        """From ``{"p50": ..., "p99": ..., "max": ..., "samples": ...}``."""
        try:
            return cls(
                float(data["p50"]), float(data["p99"]), float(data["max"]), int(data["samples"])
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise BenchError(f"{source} printed something unexpected: {exc}") from None

    def as_dict(self) -> dict[str, Any]:
        """The figures for the JSON report."""
        return {"p50": self.p50, "p99": self.p99, "max": self.max, "samples": self.samples}


@dataclass(slots=True)
class StallRow:
    """One blocking request and the stall the monitor reported for it (None: missed)."""

    delay_s: float
    handler_ms: float
    stall: Stall | None = None
    #: more stalls on the same route for this one request (a split stall)
    extra_stalls: int = 0

    @property
    def missed(self) -> bool:
        """True when the monitor reported no stall for this sleep."""
        return self.stall is None

    @property
    def blocked_ms(self) -> float | None:
        """The stall's off-CPU part: what a ``time.sleep`` is measured by."""
        return None if self.stall is None else self.stall.blocked_ms

    @property
    def error_vs_delay_pct(self) -> float | None:
        """Relative error of blocked_ms against the requested sleep, in %."""
        if self.blocked_ms is None:
            return None
        return (self.blocked_ms - self.delay_s * 1000.0) / (self.delay_s * 1000.0) * 100.0

    @property
    def error_vs_handler_pct(self) -> float | None:
        """Relative error of blocked_ms against the sleep the handler measured, in %."""
        if self.blocked_ms is None or self.handler_ms <= 0:
            return None
        return (self.blocked_ms - self.handler_ms) / self.handler_ms * 100.0

    def as_dict(self) -> dict[str, Any]:
        """The figures for the JSON report."""
        return {
            "delay_ms": round(self.delay_s * 1000.0, 3),
            "handler_ms": round(self.handler_ms, 3),
            **(
                {key: self.stall.as_dict()[key] for key in STALL_FIELDS}
                if self.stall
                else dict.fromkeys(STALL_FIELDS)
            ),
            "error_vs_delay_pct": _round(self.error_vs_delay_pct),
            "error_vs_handler_pct": _round(self.error_vs_handler_pct),
            "extra_stalls": self.extra_stalls,
            "missed": self.missed,
        }


@dataclass(slots=True)
class BenchReport:
    """Everything one ``bench`` run measured: one entry a round in each list."""

    serve: list[LoadResult] = field(default_factory=list)
    explorer: list[LoadResult] = field(default_factory=list)
    explorer_idle: list[IdleLag] = field(default_factory=list)
    bare_idle: list[IdleLag] = field(default_factory=list)
    #: % of one core over the idle stretch
    serve_idle_cpu: list[float] = field(default_factory=list)
    explorer_idle_cpu: list[float] = field(default_factory=list)
    #: the bare FastAPI yardstick without and with the loop monitor
    bare: list[LoadResult] = field(default_factory=list)
    bare_monitor: list[LoadResult] = field(default_factory=list)
    stalls: list[StallRow] = field(default_factory=list)

    def per_round(self) -> dict[str, list[float]]:
        """Each figure of :data:`TARGETS`, round by round (ratios are taken per round)."""
        return {
            "explorer_idle_cpu": list(self.explorer_idle_cpu),
            "serve_idle_cpu": list(self.serve_idle_cpu),
            "throughput": _ratios(self.explorer, self.serve),
            "monitor": _ratios(self.bare_monitor, self.bare),
            "idle_lag": [
                e.p99 / b.p99
                for e, b in zip(self.explorer_idle, self.bare_idle, strict=True)
                if b.p99 > 0
            ],
        }


def _ratios(over: Sequence[LoadResult], under: Sequence[LoadResult]) -> list[float]:
    """Requests/s of ``over`` ÷ ``under``, pair by pair (pairs ran back to back)."""
    return [a.rps / b.rps for a, b in zip(over, under, strict=True)]


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


# -- the report ---------------------------------------------------------------------------


def _spread_pct(results: Sequence[LoadResult]) -> float:
    rps = [r.rps for r in results]
    return (max(rps) - min(rps)) / statistics.median(rps) * 100.0


def _throughput(report: BenchReport, args: argparse.Namespace) -> list[str]:
    rounds = len(report.serve)
    ratio = statistics.median(_ratios(report.explorer, report.serve))
    verdict = _verdict("throughput", ratio)
    headers = ["server", *(f"round {i + 1}" for i in range(rounds)), "median rps"]
    # spread = (max - min) / median of the rounds: how much to trust a ratio near target
    headers += ["spread %", "p50 ms", "p99 ms", "errors"]
    rows = [
        [
            name,
            *(f"{r.rps:.0f}" for r in results),
            f"{_median_rps(results):.0f}",
            f"{_spread_pct(results):.1f}",
            f"{statistics.median(r.p50_ms for r in results):.2f}",
            f"{statistics.median(r.p99_ms for r in results):.2f}",
            str(sum(r.errors for r in results)),
        ]
        for name, results in (("serve (no UI)", report.serve), ("explorer TUI", report.explorer))
    ]
    return [
        f"1. Throughput: GET {LOAD_PATH}, wrk with {args.connections} connections, "
        f"{args.duration:g} s after {WARMUP_S:g} s warm-up, {rounds} round(s), median",
        format_table(headers, rows),
        f"  explorer/serve, median of the rounds' ratios: {ratio:.3f}   "
        f"(target >= {THROUGHPUT_TARGET:.2f})   {verdict}",
        "",
    ]


def _verdict(key: str, value: float) -> str:
    _, bound, at_most = TARGETS[key]
    return "PASS" if (value <= bound if at_most else value >= bound) else "MISS"


def _summary(report: BenchReport, args: argparse.Namespace) -> list[str]:
    """The instrument's cost: every figure with its rounds, its median and its target."""
    per_round = report.per_round()
    rounds = max(len(values) for values in per_round.values())
    rows = []
    for key, values in per_round.items():
        what, bound, at_most = TARGETS[key]
        digits = ".1f" if key.endswith("cpu") else ".3f"
        median = statistics.median(values) if values else None
        cells = [fmt(v, digits) for v in values] + ["-"] * (rounds - len(values))
        target = f"{'<=' if at_most else '>='} {bound:g}"
        verdict = "-" if median is None else _verdict(key, median)
        rows.append([what, *cells, fmt(median, digits), target, verdict])
    headers = ["figure", *(f"round {i + 1}" for i in range(rounds)), "median", "target", ""]
    return [
        f"The instrument's cost: {rounds} alternating round(s), idle {args.idle:g} s, load by "
        f"wrk -c{args.connections} for {args.duration:g} s after {WARMUP_S:g} s",
        format_table(headers, rows),
        "",
    ]


def _idle(report: BenchReport, args: argparse.Namespace) -> list[str]:
    rows = [
        [name, f"{lag.p50:.3f}", f"{lag.p99:.3f}", f"{lag.max:.3f}", str(lag.samples)]
        for name, lags in (
            ("explorer TUI", report.explorer_idle),
            ("bare asyncio", report.bare_idle),
        )
        for lag in lags
    ]
    return [
        f"2. Idle loop lag over {args.idle:g} s (ms; 10 ms sampling timer), a row per round",
        format_table(["loop", "p50", "p99", "max", "samples"], rows),
        "",
    ]


def _monitor_cost(report: BenchReport) -> list[str]:
    rows = [
        [name, *(f"{r.rps:.0f}" for r in results), f"{_median_rps(results):.0f}"]
        for name, results in (("no monitor", report.bare), ("monitor", report.bare_monitor))
    ]
    headers = ["bare FastAPI app", *(f"round {i + 1}" for i in range(len(report.bare)))]
    return [
        "4. The monitor alone: one async def route on the asyncio loop, requests/s",
        format_table([*headers, "median"], rows),
        "",
    ]


def _stalls(stalls: Sequence[StallRow]) -> list[str]:
    missed = sum(row.missed for row in stalls)
    rows = [
        [
            f"{row.delay_s * 1000:.0f}",
            f"{row.handler_ms:.2f}",
            "missed" if row.stall is None else f"{row.stall.duration_ms:.2f}",
            "missed" if row.stall is None else f"{row.stall.blocked_ms:.2f}",
            fmt(row.error_vs_delay_pct, "+.2f"),
            fmt(row.error_vs_handler_pct, "+.2f"),
            (row.stall and row.stall.location) or "-",
        ]
        for row in stalls
    ]
    headers = ["d ms", "handler ms", "stall ms", "blocked ms", "err vs d %"]
    headers += ["err vs handler %", "location"]
    extra = sum(row.extra_stalls for row in stalls)
    return [
        f"3. Stall accuracy: time.sleep(d) in async def (GET /basics/blocking), "
        f"{STALL_REPEATS} each, explorer TUI",
        format_table(headers, rows),
        "  stall ms: wall time the loop ran nothing else; blocked ms: its off-CPU part",
        f"  detected {len(stalls) - missed}/{len(stalls)}"
        + (f", {missed} MISSED" if missed else "")
        + (f", {extra} extra stall(s) on the same route" if extra else ""),
    ]


def _median_rps(results: Sequence[LoadResult]) -> float:
    return statistics.median(r.rps for r in results)


def render(report: BenchReport, args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """The text report and the same figures as a JSON-ready dict."""
    lines = [header_line(), "", *_summary(report, args), *_throughput(report, args)]
    lines += [*_idle(report, args), *_stalls(report.stalls), "", *_monitor_cost(report)]
    serve_median, explorer_median = _median_rps(report.serve), _median_rps(report.explorer)
    ratio = statistics.median(_ratios(report.explorer, report.serve))
    figures: dict[str, Any] = {
        "environment": {
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        },
        "throughput": {
            "path": LOAD_PATH,
            "connections": args.connections,
            "duration_s": args.duration,
            "warmup_s": WARMUP_S,
            "rounds": len(report.serve),
            "serve": [r.as_dict() for r in report.serve],
            "explorer": [r.as_dict() for r in report.explorer],
            "serve_median_rps": round(serve_median, 1),
            "serve_spread_pct": round(_spread_pct(report.serve), 2),
            "explorer_spread_pct": round(_spread_pct(report.explorer), 2),
            "explorer_median_rps": round(explorer_median, 1),
            "ratio": round(ratio, 4),
            "target": THROUGHPUT_TARGET,
            "pass": ratio >= THROUGHPUT_TARGET,
        },
        "cost": {
            key: {
                "what": TARGETS[key][0],
                "rounds": [round(v, 4) for v in values],
                "median": _round(statistics.median(values), 4) if values else None,
                "target": TARGETS[key][1],
                "at_most": TARGETS[key][2],
                "pass": bool(values) and _verdict(key, statistics.median(values)) == "PASS",
            }
            for key, values in report.per_round().items()
        },
        "idle_lag_ms": {
            "idle_s": args.idle,
            "explorer": [lag.as_dict() for lag in report.explorer_idle],
            "bare_asyncio": [lag.as_dict() for lag in report.bare_idle],
        },
        "monitor": {
            "bare": [r.as_dict() for r in report.bare],
            "bare_with_monitor": [r.as_dict() for r in report.bare_monitor],
        },
        "stall_accuracy": {
            "route": BLOCKING_ROUTE,
            "rows": [row.as_dict() for row in report.stalls],
            "missed": sum(row.missed for row in report.stalls),
        },
    }
    return "\n".join(lines), figures
