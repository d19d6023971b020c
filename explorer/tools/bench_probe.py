"""``fastasync-explorer bench --probe``: the probe in a user's app, against its rivals.

On the sample shop (``examples/shop``), in one run:

1. **Who names what.** Each injected stall set off ``--repeats`` times while three other
   clients keep requests in flight. What the probe names (line, route, victims) on the
   asyncio loop and on uvloop, beside what fastapi-loopguard and blockbuster name for the
   same stalls on the asyncio loop.
2. **What the probe costs** (:mod:`explorer.tools.bench_probe_cost`; ``--probe-cost``
   runs this part alone): requests/s and CPU per request on two routes under wrk, and idle
   CPU, the shop without the probe and with it, on asyncio and on uvloop. Ratios side by
   side.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from explorer.tools.bench_kit import (
    BenchError,
    format_table,
    header_line,
    progress,
    say,
    write_json,
)
from explorer.tools.bench_plugin import plugin_cost, render_plugin
from explorer.tools.bench_probe_cost import overhead, render_cost, shop_served
from explorer.tools.bench_rivals import (
    WRAPPERS,
    blockbuster_saw,
    loopguard_saw,
    require_rivals,
)
from explorer.tools.overhead import require_wrk
from explorer.tools.shop_sample import (
    STALL_REQUESTS,
    STALL_ROUTES,
    Injected,
    injected_mistakes,
    require_shop,
)
from fastasync_probe import PREFIX
from fastasync_probe.monitor import Stall

#: clients that keep a request in flight while a stall is set off: its victims
BYSTANDERS = 3
BYSTANDER_PATH = "/products"


@contextlib.contextmanager
def bystanders(url: str) -> Iterator[None]:
    """Requests kept in flight by other clients for as long as the block lasts."""
    stop = threading.Event()

    def keep_asking() -> None:
        with httpx.Client(base_url=url, timeout=10.0) as client:
            while not stop.is_set():
                with contextlib.suppress(httpx.HTTPError):
                    client.get(BYSTANDER_PATH)

    threads = [threading.Thread(target=keep_asking, daemon=True) for _ in range(BYSTANDERS)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.05)
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=15)


def set_off(client: httpx.Client, kind: str) -> tuple[int, bool]:
    """Send the request that sets off ``kind``; its status and whether its body was whole."""
    method, path = STALL_REQUESTS[kind]
    try:
        with client.stream(method, path) as response:
            body = b"".join(response.iter_bytes())
            return response.status_code, bool(body)
    except httpx.HTTPError:  # blockbuster raising mid-stream cuts the stream off
        return 599, False


@dataclass
class Named:
    """What one instrument named for one kind of stall, over the repeats."""

    right: int = 0
    runs: int = 0
    victims: list[int] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)
    effects: list[str] = field(default_factory=list)


def probe_stalls(client: httpx.Client, after: int) -> list[Stall]:
    response = client.get(PREFIX + "/monitor", params={"after": after})
    response.raise_for_status()
    return [Stall.from_dict(s) for s in response.json()["stalls"]]


def newest(client: httpx.Client) -> int:
    stalls = probe_stalls(client, 0)
    return max((s.seq for s in stalls), default=0)


def watch(variant: str, loop: str, repeats: int, scratch: Path) -> dict[str, Named]:
    """Set off every injected stall ``repeats`` times under ``variant``; what it named."""
    mistakes = injected_mistakes()
    results = {kind: Named() for kind in STALL_REQUESTS}
    shop = str(require_shop())
    with (
        shop_served(variant, loop, scratch) as (child, url),
        httpx.Client(base_url=url, timeout=30.0) as client,
    ):
        set_off(client, "hidden-sleep")  # first requests import lazily: not counted
        for kind, named in results.items():
            for _ in range(repeats):
                after = newest(client) if variant == "probe" else 0
                log_from = child.log_bytes
                with bystanders(url):
                    status, complete = set_off(client, kind)
                time.sleep(0.2)  # stalls and logs are written just after the fact
                named.runs += 1
                grown = child.log_bytes - log_from
                log = child.log_tail(grown) if grown > 0 else ""
                seen = Seen(status, complete, log, shop)
                _score(variant, mistakes[kind], named, client, after, seen)
    return results


@dataclass(frozen=True)
class Seen:
    """What came back from one stall's request, and what the server logged meanwhile."""

    status: int
    complete: bool
    log: str
    shop: str


def _score(
    variant: str, mistake: Injected, named: Named, client: httpx.Client, after: int, seen: Seen
) -> None:
    kind = mistake.kind
    status, complete, log = seen.status, seen.complete, seen.log
    if variant == "probe":
        mine = [s for s in probe_stalls(client, after) if s.route == STALL_ROUTES[kind]]
        if mine:
            stall = max(mine, key=lambda s: s.duration_ms)
            named.seen.append(stall.location or "-")
            named.victims.append(len(stall.victims))
            if mistake.named_by(stall.location):
                named.right += 1
        named.effects.append("ok" if status < 500 and complete else str(status))
    elif variant == "loopguard":
        saw = loopguard_saw(log)
        named.victims.append(len(saw.paths))
        culprit_path = STALL_REQUESTS[kind][1].split("?")[0]
        if any(path.endswith(culprit_path) for path in saw.paths):
            named.right += 1  # the culprit's route is among those it named
        named.seen.extend(saw.paths)
    else:
        saw = blockbuster_saw(log, seen.shop, status, complete)
        named.effects.append(saw.effect)
        named.seen.append(saw.location or "-")
        if mistake.named_by(saw.location):
            named.right += 1


def render(
    watched: dict[str, dict[str, Named]], costs: dict[str, dict[str, list[float]]], repeats: int
) -> tuple[str, dict[str, Any]]:
    """Both tables, and the same figures as JSON."""
    mistakes = injected_mistakes()
    rows = []
    for kind in STALL_REQUESTS:
        cells = [kind, str(mistakes[kind])]
        for column in ("probe/asyncio", "probe/uvloop"):
            named = watched[column][kind]
            victims = statistics.mean(named.victims) if named.victims else 0.0
            cells.append(f"{named.right}/{named.runs} line, {victims:.1f} victims")
        guard = watched["loopguard/asyncio"][kind]
        mean_named = statistics.mean(guard.victims) if guard.victims else 0.0
        cells.append(f"{guard.right}/{guard.runs} among {mean_named:.1f} routes, no line")
        buster = watched["blockbuster/asyncio"][kind]
        effect = max(set(buster.effects), key=buster.effects.count) if buster.effects else "-"
        cells.append(f"{buster.right}/{buster.runs} line ({effect})")
        rows.append(cells)
    text = "\n".join(
        [
            header_line("bench --probe"),
            f"Who names the culprit: the shop, each stall set off {repeats} times with "
            f"{BYSTANDERS} other clients' requests in flight",
            format_table(
                [
                    "injected",
                    "its line",
                    "probe, asyncio",
                    "probe, uvloop",
                    "fastapi-loopguard",
                    "blockbuster",
                ],
                rows,
            ),
            "  loopguard: how often the culprit's route was among the routes it warned "
            "about (every request in flight); blockbuster: what it did to the request",
            "",
            render_cost(costs),
        ]
    )
    data = {
        "attribution": {
            column: {kind: vars(named) for kind, named in kinds.items()}
            for column, kinds in watched.items()
        },
        "overhead": costs,
    }
    return text, data


def run_probe_bench(args: argparse.Namespace) -> int:
    """0 on success, 2 on failure."""
    repeats = 5
    try:
        require_shop()
        require_rivals()
        require_wrk()
        with tempfile.TemporaryDirectory(prefix="fastasync-rivals-") as folder:
            scratch = Path(folder)
            for name, source in WRAPPERS.items():
                (scratch / name).write_text(source)
            watched: dict[str, dict[str, Named]] = {}
            for variant, loop in [
                ("probe", "asyncio"),
                ("probe", "uvloop"),
                ("loopguard", "asyncio"),
                ("blockbuster", "asyncio"),
            ]:
                progress(f"who names what: {variant} on {loop} ...")
                watched[f"{variant}/{loop}"] = watch(variant, loop, repeats, scratch)
            costs = overhead(args, scratch)
            progress("the pytest plugin on the shop's tests ...")
            plugin_times = plugin_cost(rounds=max(5, args.rounds))
    except (BenchError, httpx.HTTPError, OSError) as exc:
        progress(f"fastasync-explorer bench --probe: {exc}")
        return 2
    except KeyboardInterrupt:
        progress("fastasync-explorer bench --probe: interrupted")
        return 130
    text, data = render(watched, costs, repeats)
    text += "\n\n" + render_plugin(plugin_times)
    data["pytest_plugin_s"] = plugin_times
    say(text)
    if args.json and not write_json(args.json, data, "bench --probe"):
        return 2
    return 0


def run_probe_cost_bench(args: argparse.Namespace) -> int:
    """``bench --probe-cost``: only the cost part of ``--probe``. 0 on success, 2 on failure."""
    try:
        require_shop()
        require_wrk()
        with tempfile.TemporaryDirectory(prefix="fastasync-rivals-") as folder:
            costs = overhead(args, Path(folder))
    except (BenchError, httpx.HTTPError, OSError) as exc:
        progress(f"fastasync-explorer bench --probe-cost: {exc}")
        return 2
    except KeyboardInterrupt:
        progress("fastasync-explorer bench --probe-cost: interrupted")
        return 130
    say(header_line("bench --probe-cost") + "\n" + render_cost(costs))
    if args.json and not write_json(args.json, {"overhead": costs}, "bench --probe-cost"):
        return 2
    return 0
