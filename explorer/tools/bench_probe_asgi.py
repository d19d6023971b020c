"""``fastasync-explorer bench --probe-asgi``: the probe's cost per request, without HTTP.

wrk's figures (``--probe-cost``) move with whatever else the machine runs, and HTTP parsing
dilutes the probe's share. Here the sample shop's ASGI app is called directly, in a child
process of its own (``server.main:app``, then ``server.probed:app``, alternating rounds):
a fixed number of ``GET`` requests in waves of :data:`IN_FLIGHT`, each in a task of its
own as uvicorn makes one. Per
round: the best wall time per request of five batches, and the process's user and system
CPU per request over them (all threads: the probe's watchdog, and the kernel's work of
handing it the GIL, included). Ratios side by side, medians of the rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from explorer.tools.bench_kit import (
    BenchError,
    fmt,
    format_table,
    header_line,
    progress,
    say,
    write_json,
)
from explorer.tools.shop_sample import require_shop

ROUTES = ("/health", "/products")
VARIANTS = {"plain": "server.main", "probe": "server.probed"}
#: requests per batch, and batches per round (the best batch's time is kept)
BATCH, BATCHES = 10_000, 5
#: requests in flight at once, per route: one wave after another (``asyncio.gather``, a
#: task each). The catalogue awaits 5 ms per request: 64 at once keep the loop busy, as
#: ``--probe-cost`` gives it four times wrk's connections for the same reason.
IN_FLIGHT = {"/health": 8, "/products": 64}

#: the driver, written to a scratch folder and run with only the shop on its path: like a
#: user's process, it never imports the explorer (whose own ``server`` would collide)
DRIVER = """\
import asyncio, importlib, json, os, sys, time
module, path = sys.argv[1], sys.argv[2]
batch, batches, in_flight = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
app = importlib.import_module(module).app

async def main():
    inbox = asyncio.Queue()
    sent = []
    async def receive_lifespan():
        return await inbox.get()
    async def send_lifespan(message):
        sent.append(message)
    await inbox.put({"type": "lifespan.startup"})
    lifespan = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}},
            receive_lifespan, send_lifespan))
    while not sent:
        await asyncio.sleep(0.01)
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "headers": [(b"host", b"shop")],
             "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 80), "state": {}}
    statuses = []
    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}
    async def send(message):
        if message["type"] == "http.response.start":
            statuses.append(message["status"])
    async def one():
        await app(dict(scope), receive, send)
    async def wave():
        await asyncio.gather(*(one() for _ in range(in_flight)))
    for _ in range(batch // in_flight // 5):
        await wave()
    best = float("inf")
    before = os.times()
    for _ in range(batches):
        began = time.perf_counter()
        for _ in range(batch // in_flight):
            await wave()
        best = min(best, (time.perf_counter() - began) / (batch // in_flight * in_flight))
    after = os.times()
    await inbox.put({"type": "lifespan.shutdown"})
    await lifespan
    count = batch // in_flight * in_flight * batches
    print(json.dumps({
        "wall_us": best * 1e6,
        "user_us": (after.user - before.user) / count * 1e6,
        "sys_us": (after.system - before.system) / count * 1e6,
        "ok": all(status == 200 for status in statuses),
    }))

asyncio.run(main())
"""


def _one_round(scratch: Path, shop: Path, variant: str, route: str) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(shop)
    command = [sys.executable, str(scratch / "fastasync_bench_asgi.py"), VARIANTS[variant]]
    command += [route, str(BATCH), str(BATCHES), str(IN_FLIGHT[route])]
    done = subprocess.run(
        command, capture_output=True, text=True, env=env, cwd=shop, timeout=600, check=False
    )
    if done.returncode != 0:
        last = done.stderr.strip().splitlines()[-1:] or ["no output"]
        raise BenchError(f"the {variant} shop's driver failed: {last[0]}")
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    if not figures.pop("ok"):
        raise BenchError(f"the {variant} shop answered {route} with a status other than 200")
    return figures


def measure(rounds: int) -> dict[str, dict[str, list[float]]]:
    """Per route and variant, each figure of each round."""
    shop = require_shop()
    figures: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="fastasync-asgi-") as folder:
        scratch = Path(folder)
        (scratch / "fastasync_bench_asgi.py").write_text(DRIVER, encoding="utf-8")
        for n in range(rounds):
            order = ("plain", "probe") if n % 2 == 0 else ("probe", "plain")
            for route in ROUTES:
                for variant in order:
                    got = _one_round(scratch, shop, variant, route)
                    entry = figures.setdefault(f"{variant}{route}", {})
                    for name, value in got.items():
                        entry.setdefault(name, []).append(value)
                    progress(
                        f"round {n + 1}/{rounds} {variant} {route}: {got['wall_us']:.1f} µs "
                        f"wall, {got['user_us']:.1f} user + {got['sys_us']:.1f} sys µs"
                    )
    return figures


def render(figures: dict[str, dict[str, list[float]]]) -> str:
    """The table: medians per route and variant, and probe ÷ plain beside them."""
    rows = []
    for route in ROUTES:
        plain, probe = figures[f"plain{route}"], figures[f"probe{route}"]
        for name, label in (("wall_us", "wall"), ("user_us", "CPU user"), ("sys_us", "CPU sys")):
            without, with_probe = statistics.median(plain[name]), statistics.median(probe[name])
            rows.append(
                [
                    f"GET {route}",
                    label,
                    fmt(without, ".1f"),
                    fmt(with_probe, ".1f"),
                    fmt(with_probe - without, "+.1f"),
                    fmt(with_probe / without if without else None, ".2f"),
                ]
            )
    return "\n".join(
        [
            f"The probe's cost per request, the shop's ASGI app called in-process ({BATCH:,} "
            f"requests × {BATCHES} per round, in flight {IN_FLIGHT}; wall: the best batch; "
            "CPU: the whole process, all its threads; medians of the rounds)",
            format_table(
                ["route", "figure", "µs without", "µs with", "difference", "with ÷ without"],
                rows,
            ),
        ]
    )


def run_probe_asgi_bench(args: argparse.Namespace) -> int:
    """``bench --probe-asgi``: 0 on success, 2 when the shop cannot be driven."""
    try:
        figures = measure(int(args.rounds))
    except (BenchError, OSError, subprocess.TimeoutExpired, ValueError) as exc:
        progress(f"fastasync-explorer bench --probe-asgi: {exc}")
        return 2
    except KeyboardInterrupt:
        progress("fastasync-explorer bench --probe-asgi: interrupted")
        return 130
    say(header_line("bench --probe-asgi") + "\n" + render(figures))
    if args.json and not write_json(args.json, {"probe_asgi": figures}, "bench --probe-asgi"):
        return 2
    return 0
