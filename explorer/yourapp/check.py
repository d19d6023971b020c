"""``fastasync-explorer check module:app --routes ... --budget 50ms``: headless, in CI.

The app runs in a child process with the probe in it (:class:`HostedApp`). Each route is
driven alone, one after the other, so that a stall the probe reports while a route is
driven is that route's doing even when no request was running at the time. The report:
stalls by culprit line, figures by route, a verdict; exit 1 when a stall is over the
budget, 0 when none is, 2 when the check could not run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from explorer.yourapp.hosted import HostedApp, HostError, probe_info
from explorer.yourapp.load_driver import LoadSpec, RouteFigures, drive
from explorer.yourapp.route_spec import SpecError, parse_ms, parse_route
from explorer.yourapp.target import ProbeTarget
from fastasync_probe import PREFIX

if TYPE_CHECKING:
    #: the explorer's subcommands, as argparse hands them out (generic for mypy only)
    Subcommands = argparse._SubParsersAction[argparse.ArgumentParser]

#: the report's width; the culprit table's two text columns share what the numbers leave
WIDTH = 100
TEXT_W = WIDTH - (5 + 7 + 8 + 7) - 5 * 2
#: the route column's width at most (a culprit line needs the room more)
ROUTE_MAX = 30
#: how long a stall still in progress after a route's load is waited for
SETTLE_S = 2.0


@dataclass(slots=True)
class Culprit:
    """The stalls of one line of code on one route."""

    location: str
    route: str
    count: int = 0
    max_ms: float = 0.0
    total_ms: float = 0.0
    victims: int = 0


@dataclass(slots=True)
class CheckResult:
    """Everything one check measured: what the table and ``--json`` show."""

    target: str
    url: str
    budget_ms: float
    info: Mapping[str, Any]
    figures: dict[str, RouteFigures] = field(default_factory=dict)
    #: every stall while a route was driven, with ``driven`` (that route) added
    stalls: list[dict[str, Any]] = field(default_factory=list)
    #: stalls before the first route was driven (start-up), not judged
    before: int = 0

    @property
    def over_budget(self) -> list[dict[str, Any]]:
        """The stalls longer than the budget."""
        return [s for s in self.stalls if float(s["duration_ms"]) > self.budget_ms]

    def culprits(self) -> list[Culprit]:
        """Stalls grouped by culprit line and route, the longest total first."""
        groups: dict[tuple[str, str], Culprit] = {}
        for stall in self.stalls:
            # no location: the watchdog saw the loop busy but got no stack (a short one)
            location = str(stall.get("location") or f"({stall.get('kind')}, no stack)")
            route = str(stall.get("route") or f"({stall['driven']})")
            group = groups.setdefault((location, route), Culprit(location, route))
            group.count += 1
            group.max_ms = max(group.max_ms, float(stall["duration_ms"]))
            group.total_ms += float(stall["duration_ms"])
            group.victims += len(stall.get("victims") or ())
        return sorted(groups.values(), key=lambda c: (-c.total_ms, c.location))

    def as_json(self) -> dict[str, Any]:
        """The data of the report, for ``--json``."""
        over = self.over_budget
        return {
            "target": self.target,
            "url": self.url,
            "budget_ms": self.budget_ms,
            "stall_threshold_ms": self.info.get("stall_threshold_ms"),
            "loop": self.info.get("loop"),
            "passed": not over,
            "over_budget": len(over),
            "culprits": [asdict(c) for c in self.culprits()],
            "routes": [{**asdict(f), "statuses": dict(f.statuses)} for f in self.figures.values()],
            "stalls": self.stalls,
            "stalls_before_driving": self.before,
        }


def _fit(text: str, width: int, *, keep_end: bool = True) -> str:
    """``text`` cut to ``width``: from the left when its end is the telling part (a path),
    else from the right (a route's method and path come first)."""
    if len(text) <= width:
        return text
    return "…" + text[-(width - 1) :] if keep_end else text[: width - 1] + "…"


def render(result: CheckResult) -> str:
    """The plain-text report: culprits, routes, verdict."""
    info = result.info
    culprits = result.culprits()
    route_w = min(max((len(c.route) for c in culprits), default=5), ROUTE_MAX)
    where_w = min(max((len(c.location) for c in culprits), default=12), TEXT_W - route_w)
    lines = [
        f"{result.target} at {result.url}: {info.get('loop')}, stall threshold "
        f"{info.get('stall_threshold_ms')} ms, budget {result.budget_ms:g} ms",
        "",
        f"{'culprit line':<{where_w}}  {'route':<{route_w}}  {'count':>5}  {'max ms':>7}  "
        f"{'total ms':>8}  {'victims':>7}",
    ]
    for c in culprits:
        where, route = _fit(c.location, where_w), _fit(c.route, route_w, keep_end=False)
        lines.append(
            f"{where:<{where_w}}  {route:<{route_w}}  {c.count:>5}  {c.max_ms:>7.1f}  "
            f"{c.total_ms:>8.1f}  {c.victims:>7}"
        )
    if not culprits:
        lines.append("(no stall while the routes were driven)")
    lines += [
        "",
        f"{'route':<32}  {'requests':>8}  {'errors':>6}  {'p50 ms':>8}  "
        f"{'p99 ms':>8}  {'req/s':>8}  statuses",
    ]
    notes = []
    for f in result.figures.values():
        statuses = " ".join(f"{code}×{n}" for code, n in f.statuses.items()) or "-"
        route = _fit(f.route, 32, keep_end=False)
        lines.append(
            f"{route:<32}  {f.requests:>8}  {f.errors:>6}  {f.p50_ms:>8.1f}  "
            f"{f.p99_ms:>8.1f}  {f.rps:>8.1f}  {statuses}"
        )
        if not any(code < 400 for code in f.statuses):
            notes.append(f"note: {f.route} never got a successful answer; is the route right?")
    if result.before:
        notes.append(
            f"note: {result.before} stall(s) before the first route (start-up), not judged"
        )
    lines += ["", *notes] if notes else []
    lines += ["", verdict(result)]
    # the free text wrapped to the table's 100 columns, continued indented
    return "\n".join(textwrap.fill(line, WIDTH, subsequent_indent="  ") for line in lines)


def verdict(result: CheckResult) -> str:
    """The last line: passed or failed, and by what."""
    over = result.over_budget
    if over:
        worst = max(over, key=lambda s: float(s["duration_ms"]))
        return (
            f"FAIL: {len(over)} stall(s) over the {result.budget_ms:g} ms budget; the longest, "
            f"{float(worst['duration_ms']):.0f} ms, at {worst.get('location')} "
            f"({worst.get('route') or worst['driven']})"
        )
    longest = max((float(s["duration_ms"]) for s in result.stalls), default=0.0)
    if not result.stalls:
        return f"PASS: no stall at all, nothing over the {result.budget_ms:g} ms budget"
    return f"PASS: no stall over the {result.budget_ms:g} ms budget (longest {longest:.0f} ms)"


async def _stalls_after(client: httpx.AsyncClient, target: ProbeTarget, after: int) -> Any:
    try:
        response = await client.get(
            f"{PREFIX}/monitor", params={"after": after}, headers=target.headers()
        )
        response.raise_for_status()
        return response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise HostError(f"the probe at {target.url} stopped answering ({exc})") from None


async def measure(target: ProbeTarget, specs: Sequence[LoadSpec], result: CheckResult) -> None:
    """Drive each spec alone and file the stalls reported meanwhile under it."""
    timeout = httpx.Timeout(10.0, connect=5.0)
    limits = httpx.Limits(max_connections=max(s.concurrency for s in specs) + 4)
    async with httpx.AsyncClient(base_url=target.url, timeout=timeout, limits=limits) as client:
        report = await _stalls_after(client, target, 0)
        seq = max((int(s["seq"]) for s in report["stalls"]), default=0)
        result.before = len(report["stalls"])
        for spec in specs:
            result.figures.update(await drive(client, [spec]))
            report = await _stalls_after(client, target, seq)
            waited = 0.0
            while report.get("stall_in_progress_ms") is not None and waited < SETTLE_S:
                await asyncio.sleep(0.1)
                waited += 0.1
                report = await _stalls_after(client, target, seq)
            for stall in report["stalls"]:
                result.stalls.append({**stall, "driven": spec.route})
                seq = max(seq, int(stall["seq"]))


def add_check_parser(commands: Subcommands) -> argparse.ArgumentParser:
    """``check`` on the explorer's subcommands (MODULE:APP and --app-dir: the caller's)."""
    check: argparse.ArgumentParser = commands.add_parser(
        "check",
        help="drive your app's routes headless; exit 1 when the loop stalls over a budget",
        description="Start MODULE:APP under uvicorn with the probe in it, drive each route "
        "in turn with real HTTP, print the stalls by culprit line and the figures by route. "
        "Exit 1 when a stall exceeds --budget, 0 when none does, 2 when the check cannot "
        "run. uvicorn options go after --.",
    )
    check.add_argument(
        "--routes",
        nargs="+",
        required=True,
        metavar="ROUTE",
        help="routes to drive: 'GET /items/1' '/quote?n=3' 'POST /orders {\"item\": \"x\"}'",
    )
    check.add_argument("--budget", required=True, help="the longest stall allowed: 50ms, 0.1s")
    check.add_argument("--duration", type=float, default=3.0, help="seconds per route (3)")
    check.add_argument("--concurrency", type=int, default=4, help="workers per route (4)")
    check.add_argument(
        "--json",
        type=Path,
        default=None,
        metavar="PATH",
        dest="json_path",
        help="also write the report as JSON",
    )
    check.add_argument("--ready-timeout", type=float, default=30.0, help=argparse.SUPPRESS)
    return check


def run_check(
    args: argparse.Namespace, uvicorn_args: Sequence[str], out: Callable[[str], None]
) -> int:
    """The ``check`` command: the report to ``out``, exit 1 or 0; a :class:`HostError`
    (one sentence, exit 2) when it cannot run."""
    try:
        budget = parse_ms(args.budget, what="--budget")
        if args.duration <= 0 or args.concurrency < 1:
            raise SpecError("--duration must be positive and --concurrency at least 1")
        specs = [
            parse_route(text, concurrency=args.concurrency, duration_s=args.duration)
            for text in args.routes
        ]
    except SpecError as exc:
        raise HostError(str(exc)) from None
    if len({spec.route for spec in specs}) != len(specs):
        raise HostError("a route is named twice in --routes")
    hosted = HostedApp(
        args.target,
        app_dir=args.app_dir,
        stall_threshold_ms=args.stall_threshold_ms,
        uvicorn_args=uvicorn_args,
    )
    try:
        target = hosted.wait_ready(args.ready_timeout)
        result = CheckResult(args.target, target.url, budget, probe_info(target.url))
        asyncio.run(measure(target, specs, result))
    except KeyboardInterrupt:
        raise HostError("interrupted; the app was stopped") from None
    finally:
        hosted.stop()
    out(render(result))
    if args.json_path is not None:
        try:
            args.json_path.write_text(json.dumps(result.as_json(), indent=2) + "\n")
        except OSError as exc:
            raise HostError(f"cannot write {args.json_path}: {exc.strerror or exc}") from None
    return 1 if result.over_budget else 0
