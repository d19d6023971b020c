"""``fastasync-explorer bench --task-inspector``: what the task inspector costs the server.

Requests/s of ``GET /basics/async?delay=0`` under wrk against the real TUI in a
pseudo-terminal, three ways, in alternating rounds: the task book off (``--no-task-book``,
the explorer without the inspector), the book on with the Tasks tab hidden (the default),
and the tab shown (``t`` typed: a snapshot a second). Ratios against the first, side by
side. Every child is stopped in a ``finally`` and every wait is bounded.
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import dataclass, field

import httpx

from explorer.tools.bench_figures import LOAD_PATH, WARMUP_S, LoadResult
from explorer.tools.bench_kit import (
    REQUEST_TIMEOUT_S,
    BenchError,
    base_url,
    explorer_process,
    fmt,
    format_table,
    free_port,
    header_line,
    progress,
    say,
    write_json,
)
from explorer.tools.overhead import require_wrk, run_wrk


@dataclass(frozen=True)
class Variant:
    """One way of running the TUI."""

    name: str
    options: tuple[str, ...] = ()
    keys: bytes = b""


VARIANTS = (
    Variant("task book off (baseline)", ("--no-task-book",)),
    Variant("Tasks tab hidden"),
    Variant("Tasks tab shown", keys=b"t"),
)


@dataclass
class Figures:
    """Each variant's runs and the snapshot cost the shown tab reported."""

    runs: dict[str, list[LoadResult]] = field(default_factory=dict)
    snapshot_ms: list[float] = field(default_factory=list)


def _one(variant: Variant, args: argparse.Namespace, figures: Figures) -> LoadResult:
    port = free_port()
    with (
        explorer_process(port, options=variant.options, keys=variant.keys),
        httpx.Client(base_url=base_url(port), timeout=REQUEST_TIMEOUT_S) as client,
    ):
        result = run_wrk(
            f"{base_url(port)}{LOAD_PATH}", int(args.connections), float(args.duration), WARMUP_S
        )
        if variant.keys:
            response = client.get("/monitor/tasks", params={"limit": 1000})
            response.raise_for_status()
            figures.snapshot_ms.append(float(response.json()["cost_ms"]))
    return result


def measure(args: argparse.Namespace) -> Figures:
    """Alternating rounds of the three variants (the order rotates each round)."""
    if float(args.duration) <= 0 or int(args.connections) < 1 or int(args.rounds) < 1:
        raise BenchError("--duration, --connections and --rounds must be positive")
    require_wrk()
    figures = Figures({v.name: [] for v in VARIANTS})
    for n in range(int(args.rounds)):
        order = VARIANTS[n % 3 :] + VARIANTS[: n % 3]
        for variant in order:
            progress(f"round {n + 1}/{args.rounds}: {variant.name} ...")
            result = _one(variant, args, figures)
            figures.runs[variant.name].append(result)
            progress(f"  {result.rps:.0f} requests/s")
    return figures


def render(figures: Figures) -> tuple[str, dict[str, object]]:
    """The table (median of the rounds, ratio to the baseline) and the same as JSON."""
    base = statistics.median(r.rps for r in figures.runs[VARIANTS[0].name])
    rows, data = [], {}
    for variant in VARIANTS:
        runs = figures.runs[variant.name]
        rps = statistics.median(r.rps for r in runs)
        p99 = statistics.median(r.p99_ms for r in runs)
        ratio = rps / base if base else None
        rows.append([variant.name, fmt(rps, ".0f"), fmt(p99, ".2f"), fmt(ratio, ".3f")])
        data[variant.name] = {"rps": rps, "p99_ms": p99, "ratio": ratio, "rounds": len(runs)}
    snapshot = statistics.median(figures.snapshot_ms) if figures.snapshot_ms else None
    text = "\n".join(
        [
            header_line("bench --task-inspector"),
            f"requests/s of {LOAD_PATH} against the TUI (median of the rounds)",
            format_table(["explorer", "requests/s", "p99 ms", "÷ baseline"], rows),
            f"  a snapshot of every task (shown tab, under load): {fmt(snapshot, '.2f')} ms",
        ]
    )
    return text, {"variants": data, "snapshot_ms": snapshot}


def run_task_inspector_bench(args: argparse.Namespace) -> int:
    """0 on success, 2 on failure."""
    try:
        figures = measure(args)
    except (BenchError, httpx.HTTPError, OSError) as exc:
        progress(f"fastasync-explorer bench --task-inspector: {exc}")
        return 2
    except KeyboardInterrupt:
        progress("fastasync-explorer bench --task-inspector: interrupted")
        return 130
    text, data = render(figures)
    say(text)
    if args.json and not write_json(args.json, data, "bench --task-inspector"):
        return 2
    return 0
