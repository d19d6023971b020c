"""``python -m explorer.patterns.cache.bench``: pooling and caching figures, in one run.

Against ``fastasync-explorer serve`` started as a child process (stopped in a ``finally``):

1. One shared httpx client versus a new client per request: requests/s, TCP connections
   opened (httpcore's own connect events) and seen at the upstream (distinct client
   ports), and the event-loop stalls the per-request clients caused. ``POST
   /cache/clients/run`` makes the calls inside the server, to its own loopback upstream.
2. TTL cache: the latency of a hit against a miss (a miss calls the upstream, which takes
   ``--delay`` seconds), measured by this process over loopback, and as the server timed it.
3. Single flight: upstream calls made by 20 concurrent misses for one key, with single
   flight and without it (blocking mode).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from explorer.tools.bench_kit import (
    REQUEST_TIMEOUT_S,
    BenchError,
    base_url,
    bench_parser,
    format_table,
    free_port,
    header_line,
    progress,
    say,
    serve_process,
    write_json,
)
from fastasync_probe.monitor.records import percentile

CLIENT_ROUTE = "POST /cache/clients/run"
CALL_FUNCTIONS = ("call_shared", "call_per_request")
STAMPEDE_CALLERS = 20


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else 0.0


def last_stall_seq(client: httpx.Client) -> int:
    response = client.get("/monitor")
    response.raise_for_status()
    return max((s["seq"] for s in response.json()["stalls"]), default=0)


def client_stalls_after(client: httpx.Client, seq: int) -> list[dict[str, Any]]:
    """Stalls after ``seq`` blamed on a client run: its route, or the call functions (the
    run's worker tasks carry no request of their own, so the watchdog names the line)."""
    time.sleep(0.2)  # the watchdog publishes a stall once the loop has moved on
    response = client.get("/monitor", params={"after": seq, "window": 60})
    response.raise_for_status()
    return [
        s
        for s in response.json()["stalls"]
        if s.get("route") == CLIENT_ROUTE
        or any(f"in {name}" in (s.get("location") or "") for name in CALL_FUNCTIONS)
    ]


def client_runs(
    client: httpx.Client, rounds: int, n: int, concurrency: int
) -> dict[str, list[dict[str, Any]]]:
    """``rounds`` pairs of shared and per-request runs; each report, plus its stalls."""
    results: dict[str, list[dict[str, Any]]] = {"shared": [], "per_request": []}
    body = {"n": n, "concurrency": concurrency}
    # warm-up: the first calls of a fresh process pay for imports and the first connections
    client.post("/cache/clients/run", json={**body, "mode": "shared"}).raise_for_status()
    for round_no in range(1, rounds + 1):
        for mode in ("shared", "per_request"):
            progress(f"  clients round {round_no}/{rounds}: {mode}")
            seq = last_stall_seq(client)
            response = client.post("/cache/clients/run", json={**body, "mode": mode})
            response.raise_for_status()
            report: dict[str, Any] = response.json()
            report["stalls"] = client_stalls_after(client, seq)
            results[mode].append(report)
    return results


def timed_get(client: httpx.Client, path: str, params: dict[str, Any]) -> tuple[float, Any]:
    began = time.perf_counter()
    response = client.get(path, params=params)
    elapsed = (time.perf_counter() - began) * 1000
    response.raise_for_status()
    return elapsed, response.json()


def cache_latency(client: httpx.Client, lookups: int, delay_s: float) -> dict[str, Any]:
    """``lookups`` hits (one warm key), then ``lookups`` misses (fresh keys), one at a time.

    Hits first: the misses fill the small cache and evict the warm key (LRU).
    """
    params = {"delay_s": delay_s, "ttl_s": 300}
    figures: dict[str, Any] = {}
    warm = f"bench-warm-{uuid.uuid4().hex[:8]}"
    timed_get(client, f"/cache/value/{warm}", params)
    for kind in ("hit", "miss"):
        client_ms: list[float] = []
        server_ms: list[float] = []
        for _ in range(lookups):
            key = f"bench-{uuid.uuid4().hex[:12]}" if kind == "miss" else warm
            elapsed, reply = timed_get(client, f"/cache/value/{key}", params)
            if reply["source"] != kind:
                raise BenchError(f"expected a {kind}, got {reply['source']} for {key}")
            client_ms.append(elapsed)
            server_ms.append(reply["took_ms"])
        figures[kind] = {
            "client_p50_ms": median(client_ms),
            "client_p95_ms": percentile(sorted(client_ms), 95),
            "server_p50_ms": median(server_ms),
        }
    return figures


def stampede(client: httpx.Client, blocking: bool) -> dict[str, Any]:
    """``STAMPEDE_CALLERS`` concurrent reads of one cold key; the upstream's call count."""
    client.put("/monitor/blocking", json={"enabled": blocking}).raise_for_status()
    key = f"bench-stampede-{uuid.uuid4().hex[:8]}"
    try:
        with ThreadPoolExecutor(STAMPEDE_CALLERS) as pool:
            replies = list(
                pool.map(
                    lambda _: timed_get(client, f"/cache/value/{key}", {"delay_s": 0.3})[1],
                    range(STAMPEDE_CALLERS),
                )
            )
    finally:
        client.put("/monitor/blocking", json={"enabled": False}).raise_for_status()
    return {
        "single_flight": not blocking,
        "upstream_calls": max(r["upstream_calls"] for r in replies),
        "misses": sum(r["source"] == "miss" for r in replies),
        "coalesced": sum(r["source"] == "coalesced" for r in replies),
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    progress(f"starting fastasync-explorer serve on port {port}")
    limits = httpx.Limits(max_connections=STAMPEDE_CALLERS + 5)
    with (
        serve_process(port),
        httpx.Client(
            base_url=base_url(port), timeout=REQUEST_TIMEOUT_S, limits=limits, trust_env=False
        ) as client,
    ):
        runs = client_runs(client, args.rounds, args.calls, args.concurrency)
        progress("  cache: hits and misses")
        latency = cache_latency(client, args.lookups, args.delay)
        progress("  cache: stampede with and without single flight")
        flights = [stampede(client, blocking=False), stampede(client, blocking=True)]
    return {"clients": runs, "cache": latency, "stampede": flights}


def render(figures: dict[str, Any], args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """The report text and a JSON-ready summary."""
    runs = figures["clients"]
    lines = [header_line("bench cache"), ""]
    lines.append(
        f"1. Shared httpx client vs a new client per request: {args.calls} calls, "
        f"{args.concurrency} at a time, to the loopback upstream; {args.rounds} round(s), median"
    )
    rows = []
    summary: dict[str, Any] = {}
    for mode in ("shared", "per_request"):
        reports = runs[mode]
        rps = [r["requests_per_s"] for r in reports]
        stall_ms = [sum(s["duration_ms"] for s in r["stalls"]) for r in reports]
        summary[mode] = {
            "rps_rounds": rps,
            "rps_median": median(rps),
            "connections_opened": [r["connections_opened"] for r in reports],
            "connections_seen": [r["connections_seen"] for r in reports],
            "p50_ms": median([r["latency_ms"]["p50"] for r in reports]),
            "stalls": [len(r["stalls"]) for r in reports],
            "stall_ms": stall_ms,
            "errors": sum(r["errors"] for r in reports),
        }
        s = summary[mode]
        rows.append(
            [
                mode.replace("_", "-"),
                " ".join(f"{v:.0f}" for v in rps),
                f"{s['rps_median']:.0f}",
                f"{s['p50_ms']:.1f}",
                "/".join(str(v) for v in s["connections_opened"]),
                "/".join(str(v) for v in s["connections_seen"]),
                f"{median(s['stalls']):.0f}",
                f"{median(stall_ms):.0f}",
                str(s["errors"]),
            ]
        )
    lines.append(
        format_table(
            [
                "client",
                "rounds rps",
                "median rps",
                "p50 ms",
                "TCP opened",
                "TCP seen",
                "stalls",
                "stall ms",
                "errors",
            ],
            rows,
        )
    )
    ratio = summary["shared"]["rps_median"] / max(summary["per_request"]["rps_median"], 1e-9)
    summary["ratio_shared_per_request"] = ratio
    lines.append(f"  ratio shared/per-request requests/s: {ratio:.1f}")
    lines.append(
        "  TCP opened: httpcore connect_tcp events, per round. TCP seen: distinct client ports "
        "at the upstream,\n  a lower bound (Linux may reuse a loopback port within a run). "
        "stalls, stall ms: event-loop stalls blamed on\n  the run's code by the watchdog "
        "(median per round)."
    )

    cache = figures["cache"]
    lines.append("")
    lines.append(
        f"2. TTL cache: {args.lookups} misses (upstream takes {args.delay * 1000:.0f} ms) and "
        f"{args.lookups} hits, one at a time"
    )
    lines.append(
        format_table(
            ["lookup", "client p50 ms", "client p95 ms", "server p50 ms"],
            [
                [
                    kind,
                    f"{cache[kind]['client_p50_ms']:.2f}",
                    f"{cache[kind]['client_p95_ms']:.2f}",
                    f"{cache[kind]['server_p50_ms']:.3f}",
                ]
                for kind in ("miss", "hit")
            ],
        )
    )
    miss_hit = cache["miss"]["client_p50_ms"] / max(cache["hit"]["client_p50_ms"], 1e-9)
    lines.append(f"  ratio miss/hit p50 (client side): {miss_hit:.1f}")

    lines.append("")
    lines.append(f"3. {STAMPEDE_CALLERS} concurrent misses for one key (upstream takes 300 ms)")
    lines.append(
        format_table(
            ["single flight", "upstream calls", "misses", "coalesced"],
            [
                [
                    "on" if f["single_flight"] else "off (blocking mode)",
                    str(f["upstream_calls"]),
                    str(f["misses"]),
                    str(f["coalesced"]),
                ]
                for f in figures["stampede"]
            ],
        )
    )
    out = {
        "clients": summary,
        "cache": {**cache, "ratio_miss_hit_p50": miss_hit},
        "stampede": figures["stampede"],
    }
    return "\n".join(lines), out


def build_parser() -> argparse.ArgumentParser:
    parser = bench_parser(
        "cache",
        "Shared vs per-request httpx client requests/s and connections, cache "
        "hit vs miss latency, and single flight vs stampede, against `serve`.",
        json_option=True,
    )
    parser.add_argument("--calls", type=int, default=200, help="calls per client run (1-1000)")
    parser.add_argument("--concurrency", type=int, default=10, help="calls at once (1-50)")
    parser.add_argument("--rounds", type=int, default=3, help="shared/per-request pairs")
    parser.add_argument("--lookups", type=int, default=50, help="cache hits and misses each")
    parser.add_argument("--delay", type=float, default=0.05, help="upstream delay of a miss (s)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """0 on success, 2 when the benchmark could not run."""
    args = build_parser().parse_args(argv)
    problems = [
        (not 1 <= args.calls <= 1000, "--calls must be 1 to 1000"),
        (not 1 <= args.concurrency <= 50, "--concurrency must be 1 to 50"),
        (not 1 <= args.rounds <= 20, "--rounds must be 1 to 20"),
        (not 1 <= args.lookups <= 1000, "--lookups must be 1 to 1000"),
        (not 0 <= args.delay <= 5, "--delay must be 0 to 5"),
    ]
    for bad, message in problems:
        if bad:
            say(f"bench cache: {message}", error=True)
            return 2
    try:
        figures = measure(args)
    except (BenchError, httpx.HTTPError, OSError) as exc:
        say(f"bench cache: {type(exc).__name__}: {exc}", error=True)
        return 2
    except KeyboardInterrupt:
        say("bench cache: interrupted", error=True)
        return 130
    text, summary = render(figures, args)
    say(text)
    if args.json and not write_json(args.json, summary, "bench cache"):
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
