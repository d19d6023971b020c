"""``fastasync-explorer bench``: what the explorer costs, and how well it measures.

In one run, in alternating rounds, each figure against its baseline:

- idle CPU (from ``/proc``) of the real TUI in a pseudo-terminal, gauges live, and of
  ``fastasync-explorer serve`` (the same app, no UI);
- requests/s of ``GET /basics/async?delay=0`` under wrk, TUI versus ``serve``;
- requests/s of a bare FastAPI app (``explorer.tools.bare_app``) with the loop monitor
  started versus without: the monitor's own cost;
- idle event-loop lag of the TUI versus a bare ``asyncio.run`` loop with the same monitor;
- stall accuracy: a ``time.sleep(d)`` inside ``async def`` against what the watchdog
  reports for it.

Everything runs as child processes, each stopped in a ``finally`` so no server outlives
the benchmark, and every wait is bounded.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

import httpx

from explorer.tools.bare_app import PATH as BARE_PATH
from explorer.tools.bench_figures import (
    BLOCKING_ROUTE,
    LOAD_PATH,
    STALL_DELAYS_S,
    STALL_REPEATS,
    WARMUP_S,
    BenchReport,
    IdleLag,
    LoadResult,
    StallRow,
    render,
)
from explorer.tools.bench_kit import (
    REQUEST_TIMEOUT_S,
    BenchError,
    base_url,
    explorer_process,
    free_port,
    progress,
    serve_process,
    write_json,
)
from explorer.tools.overhead import bare_app_process, idle_cpu_percent, require_wrk, run_wrk
from fastasync_probe.monitor import Stall

#: how long a stall may take to show up in /monitor after its request answered (the
#: watchdog publishes from its own thread once the loop moves on, within a few polls)
STALL_PUBLISH_TIMEOUT_S = 2.0

#: the bare-loop baseline: the same LoopMonitor on an asyncio loop that does nothing
BARE_LOOP_SCRIPT = """\
import asyncio, json, sys
from fastasync_probe.monitor import LoopMonitor

async def main(idle: float) -> None:
    monitor = LoopMonitor.for_loop(asyncio.get_running_loop())
    monitor.start()
    try:
        await asyncio.sleep(idle)
        lag = monitor.lag(idle)
    finally:
        monitor.stop()
    print(json.dumps({**lag.as_dict(), "samples": lag.samples}))

asyncio.run(main(float(sys.argv[1])))
"""

# -- measurements --------------------------------------------------------------------------


def last_json_line(command: Sequence[str], what: str, timeout_s: float) -> dict[str, Any]:
    """Run ``command`` (a child that prints its figures as one JSON line last) and parse it."""
    try:
        done = subprocess.run(
            command, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"{what} did not finish in time") from None
    lines = done.stdout.decode("utf-8", "replace").strip().splitlines()
    if done.returncode != 0 or not lines:
        err = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise BenchError(
            f"{what} failed (exit {done.returncode})" + (f": {err[-1]}" if err else "")
        )
    try:
        data: dict[str, Any] = json.loads(lines[-1])
    except ValueError as exc:
        raise BenchError(f"{what} printed something unexpected: {exc}") from None
    return data


def load(port: int, args: argparse.Namespace, path: str = LOAD_PATH) -> LoadResult:
    """wrk against ``path`` on ``port``, as the options say."""
    return run_wrk(f"{base_url(port)}{path}", int(args.connections), float(args.duration), WARMUP_S)


def read_monitor(client: httpx.Client, **params: float | int) -> dict[str, Any]:
    """``GET /monitor`` with query params, as JSON."""
    response = client.get("/monitor", params=params)
    response.raise_for_status()
    data: dict[str, Any] = response.json()
    return data


def measure_explorer_idle(client: httpx.Client, pid: int, idle_s: float) -> tuple[IdleLag, float]:
    """Let the TUI sit idle for ``idle_s``: the lag over exactly that stretch, and its CPU %."""
    cpu = idle_cpu_percent(pid, idle_s)
    data = read_monitor(client, window=idle_s)
    lag = IdleLag.of({**data["lag_ms"], "samples": data["samples"]}, "the explorer's /monitor")
    return lag, cpu


def measure_bare_idle(idle_s: float) -> IdleLag:
    """The same monitor on a loop that does nothing: the floor the TUI is compared with."""
    what = "the bare-loop lag probe"
    command = [sys.executable, "-c", BARE_LOOP_SCRIPT, str(idle_s)]
    return IdleLag.of(last_json_line(command, what, idle_s + 30.0), what)


def measure_stalls(client: httpx.Client) -> list[StallRow]:
    """Each blocking sleep once at a time, matched with the stall the watchdog reported."""
    # Startup stalls (imports, first layout) are already in the list: start after them.
    last_seq = max((int(s["seq"]) for s in read_monitor(client)["stalls"]), default=0)
    rows: list[StallRow] = []
    for delay in STALL_DELAYS_S:
        for _ in range(STALL_REPEATS):
            response = client.get("/basics/blocking", params={"delay": delay})
            response.raise_for_status()
            row = StallRow(delay_s=delay, handler_ms=float(response.json()["handler_ms"]))
            matched, last_seq = _await_stall(client, last_seq)
            if matched:
                try:
                    row.stall = Stall.from_dict(matched[0])
                except (KeyError, TypeError, ValueError) as exc:
                    raise BenchError(f"/monitor reported a stall unexpectedly: {exc}") from None
                row.extra_stalls = len(matched) - 1
            rows.append(row)
    return rows


def _await_stall(client: httpx.Client, after: int) -> tuple[list[dict[str, Any]], int]:
    """Stalls of the blocking route published after ``after``, and the new last seq.

    The watchdog publishes a stall once the loop has moved on, which can be a moment after
    the response left, so poll briefly instead of reading once.
    """
    deadline = time.monotonic() + STALL_PUBLISH_TIMEOUT_S
    while True:
        time.sleep(0.02)
        stalls = read_monitor(client, after=after)["stalls"]
        matched = [s for s in stalls if s.get("route") == BLOCKING_ROUTE]
        if matched or time.monotonic() >= deadline:
            last = max((int(s["seq"]) for s in stalls), default=after)
            return matched, last


# -- orchestration -------------------------------------------------------------------------


def _check_args(
    duration: float, connections: int, idle: float, rounds: int, json_path: str | None
) -> None:
    if duration <= 0:
        raise BenchError("--duration must be positive")
    if connections < 1:
        raise BenchError("--connections must be at least 1")
    if not 0 < idle <= 60:
        raise BenchError("--idle must be more than 0 and at most 60 seconds")
    if rounds < 1:
        raise BenchError("--rounds must be at least 1")
    # Fail now rather than after a minute of measuring.
    if json_path and not os.access(os.path.dirname(os.path.abspath(json_path)), os.W_OK):
        raise BenchError(f"cannot write {json_path}: its directory is not writable")


def measure(args: argparse.Namespace) -> BenchReport:
    """Run every measurement; raise BenchError on an expected failure."""
    duration = float(args.duration)
    connections = int(args.connections)
    idle = float(args.idle)
    rounds = int(args.rounds)
    _check_args(duration, connections, idle, rounds, getattr(args, "json", None))
    require_wrk()
    report = BenchReport()
    for n in range(1, rounds + 1):
        # Alternate so drift (thermal, other tenants) hits both sides alike.
        progress(f"round {n}/{rounds}: serve, idle {idle:g} s, then load ...")
        port = free_port()
        with serve_process(port, scratch=True) as serve:
            report.serve_idle_cpu.append(idle_cpu_percent(serve.proc.pid, idle))
            report.serve.append(load(port, args))
        progress(f"  serve: {report.serve[-1].rps:.0f} requests/s")

        progress(f"round {n}/{rounds}: explorer TUI, idle {idle:g} s, then load ...")
        port = free_port()
        with (
            explorer_process(port) as tui,
            httpx.Client(base_url=base_url(port), timeout=REQUEST_TIMEOUT_S) as client,
        ):
            lag, cpu = measure_explorer_idle(client, tui.pid, idle)
            report.explorer_idle.append(lag)
            report.explorer_idle_cpu.append(cpu)
            report.explorer.append(load(port, args))
            progress(f"  explorer: {report.explorer[-1].rps:.0f} requests/s")
            if n == 1:
                progress("  stall accuracy ...")
                report.stalls = measure_stalls(client)

        progress(f"round {n}/{rounds}: a bare asyncio loop idle, the bare FastAPI app ...")
        report.bare_idle.append(measure_bare_idle(idle))
        # which goes first alternates too
        for with_monitor in (n % 2 == 0, n % 2 == 1):
            port = free_port()
            with bare_app_process(port, with_monitor):
                result = load(port, args, BARE_PATH)
            (report.bare_monitor if with_monitor else report.bare).append(result)
    return report


# -- output ------------------------------------------------------------------------------------


def run_bench(args: argparse.Namespace) -> int:
    """``fastasync-explorer bench``: 0 on success, 1 if a stall was missed, 2 on failure."""
    try:
        report = measure(args)
    except BenchError as exc:
        progress(f"fastasync-explorer bench: {exc}")
        return 2
    except httpx.HTTPError as exc:
        progress(f"fastasync-explorer bench: request to the explorer failed: {exc}")
        return 2
    except OSError as exc:
        progress(f"fastasync-explorer bench: {exc}")
        return 2
    except KeyboardInterrupt:
        progress("fastasync-explorer bench: interrupted")
        return 130
    text, figures = render(report, args)
    print(text)
    if args.json and not write_json(args.json, figures, "bench"):
        return 2
    return 1 if figures["stall_accuracy"]["missed"] else 0
