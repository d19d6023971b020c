"""Soak: mixed load on every pattern for minutes, blocking mode toggled, footprint tracked.

``python -m explorer.tools.soak --minutes 10`` starts ``fastasync-explorer serve`` in a child
process, drives every pattern at once from this process over loopback (HTTP, SSE and
WebSockets), flips blocking mode every ``--toggle-s`` seconds, and samples the server's
``GET /monitor/process`` (RSS, open file descriptors, OS threads, asyncio tasks). At the end
it prints each figure's least-squares slope per minute after a warm-up, and every status it
got. It exits 1 if any request was answered with an unexplained status or not at all.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from explorer.tools.bench_kit import base_url, free_port, serve_process
from explorer.tools.load import Act, Actor, Tally, actors_of
from server.patterns import PATTERNS

SAMPLE_EVERY_S = 5.0
REQUEST_TIMEOUT_S = 30.0
#: how long the server may take to start (a busy machine imports slowly)
START_TIMEOUT_S = 30.0
FIGURES = ("rss_bytes", "open_fds", "threads", "asyncio_tasks")


@dataclass
class Sample:
    at_s: float
    figures: dict[str, float]


async def monitor(http: httpx.AsyncClient, tally: Tally, rng: random.Random) -> None:
    """The monitor's own client: what the explorer's gauges poll."""
    tally.record("/monitor", await http.get("/monitor"))


def all_actors() -> tuple[Actor, ...]:
    """The monitor's own client, then every pattern's (``explorer/patterns/<slug>/load.py``)."""
    return (Actor("monitor", monitor, 1), *(a for slug in PATTERNS for a in actors_of(slug)))


async def run_actor(
    name: str, actor: Act, http: httpx.AsyncClient, tally: Tally, seed: int, until: float
) -> None:
    rng = random.Random(seed)
    while time.monotonic() < until:
        try:
            await actor(http, tally, rng)
        except httpx.HTTPError as error:
            tally.error(name, error)
        await asyncio.sleep(rng.uniform(0.0, 0.05))


async def toggle_blocking(http: httpx.AsyncClient, every_s: float, until: float) -> int:
    enabled, flips = False, 0
    while time.monotonic() + every_s < until:
        await asyncio.sleep(every_s)
        enabled = not enabled
        (await http.put("/monitor/blocking", json={"enabled": enabled})).raise_for_status()
        flips += 1
    (await http.put("/monitor/blocking", json={"enabled": False})).raise_for_status()
    return flips


async def sample(http: httpx.AsyncClient, started: float, until: float) -> list[Sample]:
    samples: list[Sample] = []
    while time.monotonic() < until:
        response = await http.get("/monitor/process")
        response.raise_for_status()
        data = response.json()
        figures = {name: float(data[name]) for name in FIGURES if data[name] is not None}
        samples.append(Sample(time.monotonic() - started, figures))
        await asyncio.sleep(SAMPLE_EVERY_S)
    return samples


def slope_per_minute(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of ``(seconds, value)`` points, per minute."""
    if len(points) < 2:
        return 0.0
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return statistics.linear_regression(xs, ys).slope * 60.0


async def soak(url: str, minutes: float, toggle_s: float, warmup_s: float) -> int:
    started = time.monotonic()
    until = started + minutes * 60.0
    tally = Tally()
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=50)
    async with (
        httpx.AsyncClient(base_url=url, timeout=REQUEST_TIMEOUT_S, limits=limits) as http,
        httpx.AsyncClient(base_url=url, timeout=REQUEST_TIMEOUT_S) as control,
        asyncio.TaskGroup() as group,
    ):
        sampler = group.create_task(sample(control, started, until))
        toggler = group.create_task(toggle_blocking(control, toggle_s, until))
        for actor in all_actors():
            for index in range(actor.count):
                seed = hash((actor.name, index)) & 0xFFFF
                group.create_task(run_actor(actor.name, actor.act, http, tally, seed, until))
    samples = sampler.result()
    print_results(samples, tally, toggler.result(), minutes, warmup_s)
    return 1 if tally.failures else 0


def print_results(
    samples: list[Sample], tally: Tally, flips: int, minutes: float, warmup_s: float
) -> None:
    steady = [s for s in samples if s.at_s >= warmup_s] or samples
    print(f"\nsoak: {minutes:g} min, blocking mode flipped {flips} times, {len(samples)} samples")
    print(f"slopes after a {warmup_s:g} s warm-up (least squares, per minute):")
    print(f"  {'figure':<14} {'first':>12} {'last':>12} {'min':>12} {'max':>12} {'slope/min':>12}")
    for name in FIGURES:
        points = [(s.at_s, s.figures[name]) for s in steady if name in s.figures]
        if not points:
            continue
        values = [v for _, v in points]
        scale, unit = (1024 * 1024, " MiB") if name == "rss_bytes" else (1, "")
        row = [values[0], values[-1], min(values), max(values), slope_per_minute(points)]
        cells = " ".join(f"{v / scale:>12.2f}" for v in row)
        print(f"  {name + unit:<14} {cells}")
    total = sum(tally.statuses.values())
    print(f"\n{total} requests answered:")
    for (route, status), count in sorted(tally.statuses.items()):
        print(f"  {route:<28} {status:<22} {count:>8}")
    if tally.failures:
        print(f"\n{len(tally.failures)} unexplained answers or errors, first ones:")
        for failure in tally.failures[:10]:
            print(f"  {failure}")
    else:
        print("\nevery request answered, or refused with a status that says why")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m explorer.tools.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--toggle-s", type=float, default=30.0, help="blocking mode flip period")
    parser.add_argument("--warmup-s", type=float, default=60.0, help="left out of the slopes")
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.toggle_s <= 0 or args.warmup_s < 0:
        parser.error("--minutes and --toggle-s must be positive, --warmup-s not negative")
    port = free_port()
    with serve_process(port, scratch=True, ready_timeout_s=START_TIMEOUT_S) as server:
        try:
            return asyncio.run(soak(base_url(port), args.minutes, args.toggle_s, args.warmup_s))
        finally:
            code = server.stop()
            print(f"server exited with {code}; its log: {server.log_bytes} bytes")
            if code != 0:
                print(server.log_tail(3000))


if __name__ == "__main__":
    sys.exit(main())
