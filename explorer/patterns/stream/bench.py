"""``python -m explorer.patterns.stream.bench``: the SSE and streaming figures of issue 4.

1. Download MB/s of one sample file through the embedded server (the real TUI in a
   pseudo-terminal) versus ``fastasync-explorer serve``; target ratio >= 0.9.
2. Peak RSS growth of the server while the file streams (target < 32 MiB for 1 GiB),
   read from the server's own ``GET /stream/stats`` at 20 Hz by a side thread.
3. N SSE subscribers (default 1,000) on ``/sse/feed?topics=tick`` with the bus ticking
   at 10 events/s against ``serve``: delivered / expected over a common window, and the
   delivery lag (client receive time - publish time, same host clock) p50/p99.

Children are started and stopped with ``explorer.tools.bench_kit``'s helpers (imported,
not copied) and get a temporary data directory, so no sample file outlives the run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

import httpx
from httpx_sse import aconnect_sse

from explorer.tools.bench_kit import (
    base_url,
    bench_parser,
    explorer_process,
    fmt,
    format_table,
    free_port,
    progress,
    say,
    serve_process,
)
from fastasync_probe.monitor.records import percentile

MiB = 1024 * 1024


@dataclass
class Download:
    mb_s: list[float] = field(default_factory=list)
    rss_growth: list[int] = field(default_factory=list)


def download_rounds(port: int, size: int, rounds: int) -> Download:
    """Create the file, then download it ``rounds`` times, sampling the server's RSS."""
    url = base_url(port)
    result = Download()
    with httpx.Client(base_url=url, timeout=120) as client:
        created = client.post("/stream/files", json={"size_bytes": size})
        created.raise_for_status()
        name = created.json()["name"]
        for _ in range(rounds):
            time.sleep(0.5)  # let the previous round's buffers settle
            before = client.get("/stream/stats").json()["rss_bytes"]
            peak = [before]
            stop = threading.Event()

            def sample(peak: list[int] = peak, stop: threading.Event = stop) -> None:
                with httpx.Client(base_url=url, timeout=10) as side:
                    while not stop.wait(0.05):
                        peak[0] = max(peak[0], side.get("/stream/stats").json()["rss_bytes"])

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            received = 0
            started = time.perf_counter()
            with client.stream("GET", f"/stream/files/{name}") as response:
                response.raise_for_status()
                for chunk in response.iter_raw(1024 * 1024):
                    received += len(chunk)
            elapsed = time.perf_counter() - started
            stop.set()
            sampler.join()
            if received != size:
                raise RuntimeError(f"received {received} of {size} bytes")
            result.mb_s.append(size / MiB / elapsed)
            result.rss_growth.append(peak[0] - before)
        client.delete(f"/stream/files/{name}")
    return result


@dataclass
class Fanout:
    subscribers: int
    connected: int = 0
    delivered: int = 0
    expected: int = 0
    lags_ms: list[float] = field(default_factory=list)
    errors: int = 0


async def sse_fanout(port: int, subscribers: int, seconds: float, rate_hz: float) -> Fanout:
    """``subscribers`` clients on the tick feed; count what each got in a common window."""
    result = Fanout(subscribers)
    received: list[dict[int, float]] = [{} for _ in range(subscribers)]
    limits = httpx.Limits(max_connections=subscribers + 10, max_keepalive_connections=0)
    timeout = httpx.Timeout(60.0, connect=30.0, pool=60.0)
    async with httpx.AsyncClient(base_url=base_url(port), limits=limits, timeout=timeout) as http:
        (await http.put("/sse/tick-interval", json={"interval_s": 1 / rate_hz})).raise_for_status()

        async def subscribe(i: int) -> None:
            got = received[i]
            try:
                async with aconnect_sse(http, "GET", "/sse/feed?topics=tick&heartbeat=30") as s:
                    result.connected += 1
                    async for event in s.aiter_sse():
                        if event.event == "tick":
                            data = event.json()
                            got[data["n"]] = (time.time() - data["published_at"]) * 1000
            except httpx.HTTPError:
                result.errors += 1

        tasks = [asyncio.create_task(subscribe(i)) for i in range(subscribers)]
        try:
            await asyncio.sleep(seconds)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        await http.put("/sse/tick-interval", json={"interval_s": 1.0})
    # The window every subscriber was connected for: from the latest first tick to the
    # earliest last tick, both excluded (a subscriber may have joined or left mid-tick).
    firsts = [min(got) for got in received if got]
    lasts = [max(got) for got in received if got]
    if len(firsts) < subscribers:
        result.expected = subscribers  # someone got nothing: the ratio shows it
        return result
    start, end = max(firsts) + 1, min(lasts) - 1
    window = range(start, end + 1)
    result.expected = subscribers * len(window)
    for got in received:
        for n in window:
            if n in got:
                result.delivered += 1
                result.lags_ms.append(got[n])
    return result


def run(args: argparse.Namespace) -> int:
    size = args.size_mib * MiB
    rows: list[list[str]] = []
    downloads: dict[str, Download] = {}
    servers: list[tuple[str, Callable[[int], AbstractContextManager[object]]]] = [
        ("serve", serve_process),
        ("embedded (TUI)", explorer_process),
    ]
    for label, start in servers:
        port = free_port()
        progress(f"… {label}: {args.rounds} downloads of {args.size_mib} MiB")
        with start(port):
            downloads[label] = download_rounds(port, size, args.rounds)
    for label, d in downloads.items():
        rows.append(
            [
                label,
                f"{statistics.median(d.mb_s):,.0f}",
                " ".join(f"{v:,.0f}" for v in d.mb_s),
                f"{max(d.rss_growth) / MiB:.1f}",
            ]
        )
    ratio = statistics.median(downloads["embedded (TUI)"].mb_s) / statistics.median(
        downloads["serve"].mb_s
    )
    say(f"download of a {args.size_mib} MiB file, {args.rounds} rounds each")
    say(format_table(["server", "MB/s median", "rounds", "peak RSS growth MiB"], rows))
    say(f"  embedded / serve = {ratio:.3f} (target >= 0.9)")
    worst_rss = max(max(d.rss_growth) for d in downloads.values()) / MiB
    say(f"  worst peak RSS growth {worst_rss:.1f} MiB (target < 32 MiB)")

    port = free_port()
    progress(f"… serve: {args.subscribers} SSE subscribers at {args.rate:g}/s")
    with serve_process(port):
        fan = asyncio.run(sse_fanout(port, args.subscribers, args.seconds, args.rate))
    ratio_sse = fan.delivered / fan.expected if fan.expected else float("nan")
    lags = sorted(fan.lags_ms)
    say(
        f"\nSSE fan-out: {args.subscribers} subscribers, {args.rate:g} events/s, "
        f"{args.seconds:g} s (serve)"
    )
    say(
        format_table(
            ["connected", "errors", "delivered", "expected", "ratio", "lag p50 ms", "p99 ms"],
            [
                [
                    str(fan.connected),
                    str(fan.errors),
                    f"{fan.delivered:,}",
                    f"{fan.expected:,}",
                    f"{ratio_sse:.3f}",
                    fmt(percentile(lags, 50) if lags else None, ".1f"),
                    fmt(percentile(lags, 99) if lags else None, ".1f"),
                ]
            ],
        )
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = bench_parser("stream", __doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="download size (MiB)")
    parser.add_argument("--rounds", type=int, default=3, help="downloads per server")
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=10.0, help="ticks per second")
    parser.add_argument("--seconds", type=float, default=15.0, help="fan-out duration")
    args = parser.parse_args(argv)
    if not (1 <= args.size_mib <= 1024 and 1 <= args.rounds <= 20):
        parser.error("--size-mib is 1..1024 and --rounds 1..20")
    if not (1 <= args.subscribers <= 5000 and 0.1 <= args.rate <= 20 and 2 <= args.seconds <= 600):
        parser.error("--subscribers 1..5000, --rate 0.1..20, --seconds 2..600")
    # The children write their sample files here, and it goes when the run ends.
    with tempfile.TemporaryDirectory(prefix="bench-streaming-") as data_home:
        os.environ["XDG_DATA_HOME"] = data_home
        return run(args)


if __name__ == "__main__":
    sys.exit(main())
