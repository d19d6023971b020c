"""``fastasync-explorer bench queue``: the durable queue's figures, in one run.

Against ``fastasync-explorer serve`` started as a child process (stopped in a ``finally``),
on the Redis of ``--redis-url``:

1. Scale: ``--jobs`` sleep jobs of ``--seconds`` each with 1, 2 and 4 worker processes (one
   job at a time per worker): wall time and jobs/s beside the ideal, jobs × seconds ÷ workers.
2. CPU off the loop: the server's loop lag (p99, max, over the run) while 4 workers run
   4 CPU jobs of ``--cpu-seconds``, against the same jobs as ``BackgroundTasks`` in the
   server (its CPU process pool of 2, started beforehand; then on the loop itself:
   blocking mode).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

import httpx

from explorer.patterns.queue import demos
from explorer.patterns.queue.client import QueueClient, QueueUnavailable
from explorer.tools.bench_kit import (
    BenchError,
    base_url,
    bench_parser,
    fmt,
    format_table,
    free_port,
    header_line,
    progress,
    say,
    serve_process,
    write_json,
)
from server.settings import default_redis_url

CPU_WORKERS = 4


def build_parser() -> Any:
    parser = bench_parser("queue", __doc__ or "", json_option=True)
    parser.add_argument("--jobs", type=int, default=100, help="jobs per scale batch")
    parser.add_argument("--seconds", type=float, default=1.0, help="seconds each job sleeps")
    parser.add_argument(
        "--workers", default="1,2,4", help="worker counts to compare (comma-separated)"
    )
    parser.add_argument("--cpu-seconds", type=float, default=2.0, help="CPU seconds per job")
    parser.add_argument("--redis-url", default=None, help="Redis (default as the explorer's)")
    return parser


@contextlib.contextmanager
def redis_for_children(url: str) -> Iterator[None]:
    """The serve child reads its Redis from the environment (as the explorer does)."""
    saved = os.environ.get("FASTASYNC_REDIS_URL")
    os.environ["FASTASYNC_REDIS_URL"] = url
    try:
        yield
    finally:
        if saved is None:
            del os.environ["FASTASYNC_REDIS_URL"]
        else:
            os.environ["FASTASYNC_REDIS_URL"] = saved


async def lag_while(
    http: httpx.AsyncClient, queue: QueueClient, backend: str, cpu_s: float
) -> dict[str, float]:
    """The server's lag p99 and max over a batch of CPU jobs on ``backend``."""
    began = time.perf_counter()
    ids = await queue.enqueue("cpu", cpu_s, CPU_WORKERS, backend)
    listing = await queue.until(backend, ids, CPU_WORKERS, within_s=cpu_s * CPU_WORKERS + 60)
    if listing.count("done") < CPU_WORKERS:
        raise BenchError(f"{CPU_WORKERS - listing.count('done')} CPU jobs unfinished on {backend}")
    window = time.perf_counter() - began
    report = (await http.get("/monitor", params={"window": round(window + 0.5, 1)})).json()
    return {"wall_s": window, "p99_ms": report["lag_ms"]["p99"], "max_ms": report["lag_ms"]["max"]}


async def measure(args: Any, url: str) -> dict[str, Any]:
    counts = [int(n) for n in args.workers.split(",")]
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as http:
        queue = QueueClient(http)
        await queue.require_redis()
        await queue.clear()
        try:
            rows = await demos.scale(queue, args.jobs, args.seconds, counts, progress=progress)
            await queue.scale(CPU_WORKERS)
            await queue.workers_ready(CPU_WORKERS)
            progress(f"{CPU_WORKERS} CPU jobs of {args.cpu_seconds:g} s on {CPU_WORKERS} workers")
            queued = await lag_while(http, queue, "redis", args.cpu_seconds)
            await queue.scale(0)
            # the server's process pool starts on first use: started first, unmeasured
            (await http.post("/basics/pool")).raise_for_status()
            progress(f"the same {CPU_WORKERS} CPU jobs as BackgroundTasks, in the process pool")
            pooled = await lag_while(http, queue, "inprocess", args.cpu_seconds)
            progress(f"the same {CPU_WORKERS} CPU jobs as BackgroundTasks, on the loop")
            await http.put("/monitor/blocking", json={"enabled": True})
            try:
                on_loop = await lag_while(http, queue, "inprocess", args.cpu_seconds)
            finally:
                await http.put("/monitor/blocking", json={"enabled": False})
        finally:
            with contextlib.suppress(QueueUnavailable, httpx.HTTPError):
                await queue.scale(0)
                await queue.clear()
    return {
        "scale": [
            {
                "workers": r.workers,
                "jobs": r.jobs,
                "seconds": r.seconds,
                "wall_s": r.wall_s,
                "ideal_s": r.ideal_s,
                "jobs_per_s": r.jobs_per_s,
            }
            for r in rows
        ],
        "cpu": {"redis": queued, "pool": pooled, "loop": on_loop},
    }


def render(figures: dict[str, Any], args: Any) -> str:
    scale = figures["scale"]
    first = scale[0]
    rows = [
        [
            str(r["workers"]),
            fmt(r["wall_s"], ".2f"),
            fmt(r["ideal_s"], ".2f"),
            fmt(r["wall_s"] / r["ideal_s"], ".3f"),
            fmt(r["jobs_per_s"], ".1f"),
        ]
        for r in scale
    ]
    cpu = figures["cpu"]
    lag_rows = [
        [
            where,
            fmt(cpu[key]["p99_ms"], ".1f"),
            fmt(cpu[key]["max_ms"], ".1f"),
            fmt(cpu[key]["wall_s"], ".2f"),
        ]
        for key, where in (
            ("redis", f"Redis queue, {CPU_WORKERS} worker processes"),
            ("pool", "BackgroundTasks, CPU process pool"),
            ("loop", "BackgroundTasks, on the loop"),
        )
    ]
    return "\n".join(
        [
            header_line("bench queue"),
            "",
            f"1. Scale: {first['jobs']} × {first['seconds']:g} s sleep jobs, "
            "one at a time per worker",
            format_table(["workers", "wall s", "ideal s", "wall/ideal", "jobs/s"], rows),
            "",
            f"2. The server's loop while {CPU_WORKERS} CPU jobs of {args.cpu_seconds:g} s run",
            format_table(["where the jobs ran", "lag p99 ms", "lag max ms", "wall s"], lag_rows),
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    """0 on success, 2 when the benchmark could not run."""
    args = build_parser().parse_args(argv)
    try:
        counts = [int(n) for n in args.workers.split(",")]
    except ValueError:
        counts = []
    problems = [
        (not 1 <= args.jobs <= 1000, "--jobs must be 1 to 1000"),
        (not 0 < args.seconds <= 4, "--seconds must be more than 0 and at most 4"),
        (not 0 < args.cpu_seconds <= 4, "--cpu-seconds must be more than 0 and at most 4"),
        (not counts or not all(1 <= n <= 8 for n in counts), "--workers: counts of 1 to 8"),
    ]
    for bad, message in problems:
        if bad:
            say(f"bench queue: {message}", error=True)
            return 2
    redis_url = args.redis_url or default_redis_url()
    try:
        with redis_for_children(redis_url), serve_process(port := free_port(), scratch=True):
            figures = asyncio.run(measure(args, base_url(port)))
    except (BenchError, QueueUnavailable, httpx.HTTPError, OSError) as exc:
        say(f"bench queue: {type(exc).__name__}: {exc}", error=True)
        return 2
    except KeyboardInterrupt:
        say("bench queue: interrupted", error=True)
        return 130
    say(render(figures, args))
    if args.json and not write_json(args.json, figures, "bench queue"):
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
