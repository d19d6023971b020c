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
import contextlib
import json
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from httpx_sse import aconnect_sse

from explorer.tools.bench import free_port

SAMPLE_EVERY_S = 5.0
REQUEST_TIMEOUT_S = 30.0
FIGURES = ("rss_bytes", "open_fds", "threads", "asyncio_tasks")


@dataclass
class Tally:
    """Every answer, by route and status; anything unexplained is a failure."""

    statuses: Counter[tuple[str, str]] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    def record(self, route: str, response: httpx.Response, allowed: Sequence[int] = ()) -> None:
        status = response.status_code
        self.statuses[(route, str(status))] += 1
        clear = 200 <= status < 300 or status in allowed
        if clear and status >= 400:
            # a refusal must say why
            clear = "detail" in response.json()
        if not clear:
            self.failures.append(f"{route}: {status} {response.text[:200]}")

    def error(self, route: str, error: Exception) -> None:
        self.statuses[(route, type(error).__name__)] += 1
        self.failures.append(f"{route}: {type(error).__name__}: {error}")


@dataclass
class Sample:
    at_s: float
    figures: dict[str, float]


Actor = Callable[[httpx.AsyncClient, Tally, random.Random], Awaitable[None]]


async def basics(http: httpx.AsyncClient, tally: Tally, rng: random.Random) -> None:
    route = rng.choice(
        [
            "/basics/async?delay=0.05",
            "/basics/sync?delay=0.02",
            "/basics/cpu?n=20000",
            "/basics/offload?n=200000",
        ]
    )
    tally.record(route.split("?")[0], await http.get(route))


async def concurrency(http: httpx.AsyncClient, tally: Tally, rng: random.Random) -> None:
    strategy = rng.choice(["gather", "taskgroup", "race", "timeout", "bounded", "as_completed"])
    body = {"strategy": strategy, "n": 5, "latency": 0.05, "jitter": 0.02, "timeout_s": 0.06}
    tally.record("/concurrency/run", await http.post("/concurrency/run", json=body))


async def tasks(http: httpx.AsyncClient, tally: Tally, rng: random.Random) -> None:
    spec = {"kind": rng.choice(["sleep", "fail"]), "duration_s": 0.05}
    route = rng.choice(["/tasks/queue", "/tasks/fire-and-forget", "/tasks/background"])
    body: object = {"jobs": [spec, spec]} if route == "/tasks/background" else spec
    tally.record(route, await http.post(route, json=body), allowed=(503,))


async def monitor(http: httpx.AsyncClient, tally: Tally, rng: random.Random) -> None:
    tally.record("/monitor", await http.get("/monitor"))


async def follow_jobs(http: httpx.AsyncClient, tally: Tally, rng: random.Random) -> None:
    """An SSE subscriber that leaves after a while (its generator must go with it)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(rng.uniform(0.5, 3.0)):
            async with aconnect_sse(http, "GET", "/tasks/stream") as source:
                tally.record("/tasks/stream", source.response)
                async for _ in source.aiter_sse():
                    pass


async def follow_feed(http: httpx.AsyncClient, tally: Tally, rng: random.Random) -> None:
    """The SSE feed, left after a while; sometimes the ticker too (leaks in blocking mode)."""
    path = rng.choice(["/sse/feed?topics=tick,stall,job", "/sse/ticker?interval=0.1&count=20"])
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(rng.uniform(0.3, 2.0)):
            async with aconnect_sse(http, "GET", path) as source:
                tally.record(path.split("?")[0], source.response, allowed=(503,))
                async for _ in source.aiter_sse():
                    pass
    if rng.random() < 0.2:  # the leaked producers are capped; end them now and then
        tally.record("/sse/leaked", await http.delete("/sse/leaked"))


async def chat(http: httpx.AsyncClient, tally: Tally, rng: random.Random) -> None:
    """A chat member: joins, talks, reads a little, leaves (abruptly one time in four)."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import WebSocketException

    url = str(http.base_url).replace("http://", "ws://").rstrip("/")
    room = f"soak{rng.randrange(3)}"
    route = "/ws/chat/{room}"
    try:
        async with asyncio.timeout(10):
            async with connect(f"{url}/ws/chat/{room}?name=s{rng.randrange(10**6)}") as ws:
                for _ in range(rng.randrange(1, 6)):
                    await ws.send(json.dumps({"type": "message", "text": "x" * 512}))
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(0.2):
                            await ws.recv()
                if rng.random() < 0.25:
                    ws.transport.abort()  # no close frame: the server must clean up anyway
                tally.statuses[(route, "ok")] += 1
    except TimeoutError:
        tally.statuses[(route, "slow (>10 s)")] += 1  # naive broadcast behind a slow peer
    except (OSError, WebSocketException) as error:
        code = getattr(getattr(error, "rcvd", None), "code", None)
        if code in (1008, 1013):  # dropped as a slow consumer, or a limit: said why
            tally.statuses[(route, f"closed {code}")] += 1
        else:
            tally.error(route, error)


async def stream(http: httpx.AsyncClient, tally: Tally, rng: random.Random) -> None:
    """A download cut short or read whole, an upload, a CSV export."""
    choice = rng.random()
    if choice < 0.5:
        names = [f["name"] for f in (await http.get("/stream/files")).json()]
        if not names:
            made = await http.post("/stream/files", json={"size_bytes": 4 * 1024 * 1024})
            tally.record("/stream/files (new)", made, allowed=(201, 507))
            return
        async with http.stream("GET", f"/stream/files/{rng.choice(names)}") as response:
            tally.record("/stream/files/{name}", response)
            limit = rng.randrange(1, 5 * 1024 * 1024)
            read = 0
            async for chunk in response.aiter_bytes():
                read += len(chunk)
                if read > limit:
                    break  # the client leaves mid-way
    elif choice < 0.8:
        body = rng.randbytes(rng.randrange(1, 256 * 1024))
        tally.record("/stream/uploads", await http.post("/stream/uploads", content=body), (507,))
    else:
        tally.record("/stream/export.csv", await http.get("/stream/export.csv"))


async def database(http: httpx.AsyncClient, tally: Tally, rng: random.Random) -> None:
    route = rng.choice(
        [
            f"/db/users/{rng.randrange(1, 260)}",
            f"/db/orm/users/{rng.randrange(1, 260)}",
            "/db/dashboard?latency_ms=20",
            "/db/posts?limit=20&strategy=n_plus_one",
            "/db/posts?limit=20&strategy=prefetch",
            "/db/slow-report?seconds=0.05",
        ]
    )
    response = await http.get(route)
    tally.record(route.split("?")[0].rstrip("0123456789"), response, allowed=(404, 503))


async def cache(http: httpx.AsyncClient, tally: Tally, rng: random.Random) -> None:
    if rng.random() < 0.9:
        route = f"/cache/value/k{rng.randrange(12)}?delay_s=0.05&ttl_s=2"
        tally.record("/cache/value/{key}", await http.get(route))
    else:
        route = "/cache/hanging?hang_s=0.5&timeout_s=0.2"
        tally.record("/cache/hanging", await http.get(route), allowed=(504,))


ACTORS: dict[str, tuple[Actor, int]] = {
    # name: (actor, how many run at once)
    "basics": (basics, 3),
    "concurrency": (concurrency, 2),
    "tasks": (tasks, 2),
    "monitor": (monitor, 1),
    "sse": (follow_jobs, 2),
    "feed": (follow_feed, 3),
    "ws": (chat, 4),
    "stream": (stream, 2),
    "db": (database, 2),
    "cache": (cache, 2),
}


async def run_actor(
    name: str, actor: Actor, http: httpx.AsyncClient, tally: Tally, seed: int, until: float
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


async def wait_until_up(url: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(base_url=url, timeout=2.0) as http:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get("/monitor")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"the server at {url} did not answer within {timeout_s:g} s")


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
        for name, (actor, count) in ACTORS.items():
            for index in range(count):
                seed = hash((name, index)) & 0xFFFF
                group.create_task(run_actor(name, actor, http, tally, seed, until))
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
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="fastasync-soak-") as data_dir:
        command = [sys.executable, "-m", "explorer.cli", "serve", "--port", str(port)]
        log_path = Path(data_dir) / "serve.log"
        with log_path.open("w") as log:
            server = subprocess.Popen(
                [*command, "--data-dir", str(Path(data_dir) / "data")],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                asyncio.run(wait_until_up(url))
                return asyncio.run(soak(url, args.minutes, args.toggle_s, args.warmup_s))
            finally:
                server.send_signal(signal.SIGTERM)
                try:
                    code = server.wait(15)
                except subprocess.TimeoutExpired:
                    server.kill()
                    code = server.wait()
                print(f"server exited with {code}; its log: {log_path.stat().st_size} bytes")
                if code != 0:
                    print(log_path.read_text()[-3000:])


if __name__ == "__main__":
    sys.exit(main())
