"""What the probe costs the sample shop: ``bench --probe`` (and ``--probe-cost`` alone).

The shop under plain uvicorn without the probe and with it, on asyncio and on uvloop, in
alternating rounds. Per round: the process's CPU while nothing is asked of it, then wrk on
each route of :data:`COST_ROUTES`: requests/s, and the server's CPU per request over the
same run (all its threads, the probe's watchdog included). CPU per request is the steadier
figure on a shared virtual machine: requests/s moves with whatever else the host runs,
while the work a request takes does not.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx

from explorer.tools.bench_kit import (
    Child,
    base_url,
    child_process,
    fmt,
    format_table,
    free_port,
    progress,
)
from explorer.tools.bench_rivals import TARGETS
from explorer.tools.overhead import cpu_seconds, idle_cpu_percent, pinned, run_wrk
from explorer.tools.shop_sample import require_shop

LOOPS = ("asyncio", "uvloop")
HEALTH = "/health"
#: the routes the cost is measured on, each with its multiple of ``--connections``: the
#: trivial one (the probe's worst case: nothing else to spend time on) and the catalogue
#: (a 5 ms await, as a database read would be, and a list through a response model),
#: with four times the connections: 32 connections each waiting 5 ms cap it at 6,400
#: requests/s, below what the core can serve, and the cost would hide in the idle time.
#: The shop's other routes hide its injected stalls.
COST_ROUTES = {HEALTH: 1, "/products": 4}
#: the server under test on one core, wrk on the other
SERVER_CORE, WRK_CORE = 0, 1


def _healthy(port: int) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(base_url(port) + HEALTH, timeout=1.0).status_code == 200
    return False


@contextlib.contextmanager
def shop_served(
    variant: str, loop: str, scratch: Path, core: int | None = None
) -> Iterator[tuple[Child, str]]:
    """The shop as ``variant`` under plain uvicorn on ``loop``: its child and base URL
    (held to ``core`` when given).

    A plain environment plus the scratch folder with the rivals' wrappers: the user's app
    never gets the explorer's packages on its path.
    """
    shop = require_shop()
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", TARGETS[variant], "--app-dir", str(shop)]
    command += ["--loop", loop, "--port", str(port), "--log-level", "warning"]
    if core is not None:
        command = pinned(command, core)
    env = dict(os.environ, PYTHONPATH=str(scratch))
    what = f"the shop ({variant}, {loop})"
    with child_process(command, port, what, ready=_healthy, env=env) as child:
        yield child, base_url(port)


def overhead(args: argparse.Namespace, scratch: Path) -> dict[str, dict[str, list[float]]]:
    """Requests/s, server CPU per request and idle CPU of the shop without and with the
    probe, per loop and per route of :data:`COST_ROUTES`; the server on one core and wrk
    on the other (when there are two)."""
    figures: dict[str, dict[str, list[float]]] = {}
    for n in range(int(args.rounds)):
        for loop in LOOPS:
            order = ("plain", "probe") if n % 2 == 0 else ("probe", "plain")
            for variant in order:
                progress(f"round {n + 1}/{args.rounds}: {variant} on {loop} ...")
                with shop_served(variant, loop, scratch, core=SERVER_CORE) as (child, url):
                    idle = idle_cpu_percent(child.proc.pid, float(args.idle))
                    idle_entry = figures.setdefault(f"{loop}/{variant}", {"idle_cpu": []})
                    idle_entry["idle_cpu"].append(idle)
                    for route, times in COST_ROUTES.items():
                        connections = times * int(args.connections)
                        rps, cpu_us = _loaded(url + route, child.proc.pid, connections, args)
                        entry = figures.setdefault(
                            f"{loop}/{variant}{route}", {"rps": [], "cpu_us": []}
                        )
                        entry["rps"].append(rps)
                        entry["cpu_us"].append(cpu_us)
                        progress(f"  {route}: {rps:.0f} requests/s, {cpu_us:.0f} µs CPU each")
                progress(f"  idle {idle:.2f} % of a core")
    return figures


def _loaded(url: str, pid: int, connections: int, args: argparse.Namespace) -> tuple[float, float]:
    """wrk against ``url``: requests/s, and the server's CPU µs per request meanwhile
    (all its threads: the probe's watchdog included)."""
    began: list[float] = []
    load = run_wrk(
        url,
        connections,
        float(args.duration),
        1.0,
        core=WRK_CORE,
        on_counted=lambda: began.append(cpu_seconds(pid)),
    )
    cpu_us = (cpu_seconds(pid) - began[0]) / max(1, load.requests) * 1e6
    return load.rps, cpu_us


def render_cost(costs: dict[str, dict[str, list[float]]]) -> str:
    """The cost table: per loop and route, medians of the rounds, ratios beside them."""
    rows = []
    for loop in LOOPS:
        for route in COST_ROUTES:
            plain, probe = costs[f"{loop}/plain{route}"], costs[f"{loop}/probe{route}"]
            rps_plain, rps_probe = statistics.median(plain["rps"]), statistics.median(probe["rps"])
            cpu_plain = statistics.median(plain["cpu_us"])
            cpu_probe = statistics.median(probe["cpu_us"])
            rows.append(
                [
                    loop,
                    f"GET {route}",
                    fmt(rps_plain, ".0f"),
                    fmt(rps_probe, ".0f"),
                    fmt(rps_probe / rps_plain if rps_plain else None, ".3f"),
                    fmt(cpu_plain, ".0f"),
                    fmt(cpu_probe, ".0f"),
                    fmt(cpu_plain / cpu_probe if cpu_probe else None, ".3f"),
                ]
            )
    idle_rows = [
        [
            loop,
            fmt(statistics.median(costs[f"{loop}/plain"]["idle_cpu"]), ".2f"),
            fmt(statistics.median(costs[f"{loop}/probe"]["idle_cpu"]), ".2f"),
        ]
        for loop in LOOPS
    ]
    more = ", ".join(f"{route} with {n}x" for route, n in COST_ROUTES.items() if n > 1)
    return "\n".join(
        [
            "What the probe costs under wrk (median of the rounds; server and wrk on a core "
            f"each; {more} the connections)",
            format_table(
                [
                    "loop",
                    "route",
                    "req/s without",
                    "req/s with",
                    "with ÷ without",
                    "CPU µs/req w/o",
                    "with",
                    "w/o ÷ with",
                ],
                rows,
            ),
            "  CPU µs/req: the server process's CPU (all threads) over the counted run ÷ its "
            "requests; w/o ÷ with is the throughput the probe leaves when the core is the limit",
            "",
            "Idle: % of a core used by the process when nothing is asked of it",
            format_table(["loop", "without", "with"], idle_rows),
        ]
    )
