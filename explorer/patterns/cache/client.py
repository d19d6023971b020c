"""The caching pane's demonstrations: the requests each sends, over real HTTP, and what it
reports (table rows, the sentence under them, the stampede's figures).

Each takes the pane's context and the values of the fields it uses (validated already).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from rich.text import Text

from explorer.context import ExplorerContext
from explorer.patterns.cache.runs import RunRow
from explorer.patterns.cache.stampede import StampedeRun
from explorer.wording import counted

#: keys the sweep reads: more than the cache holds, so the least recently used go
SWEEP_KEYS = 12


@dataclass(frozen=True)
class DemoResult:
    """What a demonstration reports."""

    rows: list[RunRow]
    summary: Text
    stampede: StampedeRun | None = None


def error_text(response: httpx.Response) -> str:
    """A refused request's message: ``detail`` as a sentence, or the status line."""
    try:
        detail = response.json()["detail"]
    except (ValueError, KeyError, TypeError):
        return f"{response.status_code} {response.reason_phrase}"
    if isinstance(detail, list):
        return "; ".join(str(item.get("msg", item)) for item in detail)
    return str(detail)


def refused(demo: str, response: httpx.Response) -> DemoResult:
    """A demonstration the server refused: one red row and the server's reason."""
    reason = error_text(response)
    row = RunRow(demo, "refused", str(response.status_code), 0.0, reason[:40], ok=False)
    return DemoResult([row], Text(reason, style="bold red"))


_SOURCES = ("miss", "coalesced", "hit")
_PLURALS = {"miss": "misses", "coalesced": "coalesced", "hit": "hits"}


def stampede_row(replies: list[dict[str, Any]], n: int, wall_ms: float) -> RunRow:
    """What n concurrent reads of one cold key did, from their answers."""
    sources = {source: sum(r["source"] == source for r in replies) for source in _SOURCES}
    calls = max((r["upstream_calls"] for r in replies), default=0)
    single_flight = all(r["single_flight"] for r in replies)
    counts = ", ".join(
        f"{count} {_PLURALS[source] if count != 1 else source}"
        for source, count in sources.items()
        if count
    )
    return RunRow(
        f"stampede ×{n}",
        "single flight" if single_flight else "no single flight",
        f"{counted(calls, 'upstream call')}",
        wall_ms,
        counts,
        ok=single_flight,
    )


async def get_one(ctx: ExplorerContext, values: dict[str, str]) -> DemoResult:
    """One read of the key through the cache."""
    params = {"delay_s": values["delay_s"], "ttl_s": values["ttl_s"]}
    response = await ctx.http.get(f"/cache/value/{values['key']}", params=params)
    if response.status_code != 200:
        return refused("get", response)
    reply = response.json()
    source = reply["source"]
    outcome = f"{source} (expired)" if reply.get("expired") else source
    row = RunRow(
        f"get {reply['key']}",
        "single flight" if reply["single_flight"] else "no single flight",
        outcome,
        reply["took_ms"],
        f"age {reply['age_s']:.1f} s · expires in {reply['expires_in_s']:.1f} s",
    )
    ttl = float(values["ttl_s"])
    if source == "hit":
        note = (
            f"A hit: served from memory in {reply['took_ms']:.3f} ms, no upstream call. It "
            f"expires in {reply['expires_in_s']:.1f} s; press r after that for a miss."
        )
    elif reply.get("expired"):
        note = (
            f"A miss: the entry was older than its {ttl:g} s TTL, so it was dropped and the "
            "upstream was called again."
        )
    elif source == "miss":
        note = (
            f"A miss: this request called the upstream ({reply['took_ms']:.0f} ms) and stored "
            f"the value for {ttl:g} s. Press r again within it: a hit."
        )
    else:
        note = "Coalesced: another request was already computing it; this one waited for it."
    return DemoResult([row], Text(note))


async def stampede(ctx: ExplorerContext, values: dict[str, str]) -> DemoResult:
    """``callers`` concurrent reads of one cold key, each a real HTTP request."""
    n = int(values["callers"])
    key = f"{values['key']}.{uuid.uuid4().hex[:8]}"  # cold: never read before
    params = {"delay_s": values["delay_s"], "ttl_s": values["ttl_s"]}
    began = time.perf_counter()
    responses = await asyncio.gather(
        *(ctx.http.get(f"/cache/value/{key}", params=params) for _ in range(n))
    )
    wall_ms = (time.perf_counter() - began) * 1000
    bad = [r for r in responses if r.status_code != 200]
    if bad:
        return refused("stampede", bad[0])
    replies = [r.json() for r in responses]
    row = stampede_row(replies, n, wall_ms)
    calls = max(r["upstream_calls"] for r in replies)
    longest = max(float(r["took_ms"]) for r in replies)
    run = StampedeRun(row.ok, n, calls, wall_ms, longest)
    if row.ok:
        waited = sum(r["source"] == "coalesced" for r in replies)
        note = Text(f"{n} misses at once: the upstream counted ")
        note.append(counted(calls, "call"), style="bold green")
        note.append(f", {waited} waited for it.")
    else:
        note = Text("Stampede: ", style="bold red")
        note.append(f"{n} misses at once, the upstream counted ")
        note.append(counted(calls, "call"), style="bold red")
        note.append(".")
    return DemoResult([row], note, run)


async def sweep(ctx: ExplorerContext, values: dict[str, str]) -> DemoResult:
    """Read more distinct keys than the cache holds, one after another."""
    before = await read_stats(ctx)
    began = time.perf_counter()
    sources: list[str] = []
    for i in range(SWEEP_KEYS):
        response = await ctx.http.get(
            f"/cache/value/sweep-{i}", params={"delay_s": 0.02, "ttl_s": values["ttl_s"]}
        )
        if response.status_code != 200:
            return refused("sweep", response)
        sources.append(response.json()["source"])
    wall_ms = (time.perf_counter() - began) * 1000
    after = await read_stats(ctx)
    evicted = after["evictions"] - before["evictions"]
    misses = sources.count("miss") + sources.count("coalesced")
    row = RunRow(
        f"sweep ×{SWEEP_KEYS}",
        f"LRU, {after['maxsize']} entries",
        f"{misses} misses, {sources.count('hit')} hits",
        wall_ms,
        f"{evicted} evicted · cache holds {after['size']}/{after['maxsize']}",
    )
    note = Text(
        f"{SWEEP_KEYS} keys into {after['maxsize']} places: {evicted} least recently used "
        "entries were evicted, so memory stays bounded. Sweeping again in the same order "
        "misses every time: each key is evicted just before it is needed (LRU's worst case)."
    )
    return DemoResult([row], note)


async def compare_clients(ctx: ExplorerContext, values: dict[str, str]) -> DemoResult:
    """The same calls with the shared client, then with a client per call."""
    reports = {}
    began_wall = time.time()
    for mode in ("shared", "per_request"):
        if mode == "per_request":
            began_wall = time.time()
        body = {"mode": mode, "n": int(values["calls"]), "concurrency": int(values["concurrency"])}
        response = await ctx.http.post("/cache/clients/run", json=body)
        if response.status_code != 200:
            return refused("clients", response)
        reports[mode] = response.json()
    rows = [
        RunRow(
            f"clients ×{report['n']}",
            mode.replace("_", "-"),
            f"{report['requests_per_s']:.0f} req/s",
            report["wall_ms"],
            f"TCP opened {report['connections_opened']} · seen {report['connections_seen']}"
            + (f" · {counted(report['errors'], 'error')}" if report["errors"] else ""),
            ok=mode == "shared",
        )
        for mode, report in reports.items()
    ]
    shared, fresh = reports["shared"], reports["per_request"]
    ratio = shared["requests_per_s"] / max(fresh["requests_per_s"], 0.001)
    text = Text()
    text.append(f"shared/per-request: {ratio:.1f}× the requests/s", style="bold")
    text.append(
        f" · connections opened {shared['connections_opened']} vs {fresh['connections_opened']}\n"
    )
    text.append(fresh["note"])
    stalls = [
        stall
        for stall in await ctx.stalls_since(began_wall)
        if "in call_per_request" in (stall.location or "")
    ]
    if stalls:
        worst = max(stall.duration_ms for stall in stalls)
        text.append(
            f"\n{counted(len(stalls), 'loop stall')} in call_per_request, worst "
            f"{worst:.0f} ms: the event loop (and this UI) served nothing meanwhile.",
            style="bold red",
        )
    return DemoResult(rows, text)


async def hanging(ctx: ExplorerContext, values: dict[str, str]) -> DemoResult:
    """Call the hanging upstream through the server, with or without a timeout."""
    params = {"hang_s": values["hang_s"], "timeout_s": values["timeout_s"]}
    began = time.perf_counter()
    response = await ctx.http.get("/cache/hanging", params=params)
    took = (time.perf_counter() - began) * 1000
    if response.status_code == 504:
        row = RunRow(
            f"hang {values['hang_s']} s",
            f"timeout {values['timeout_s']} s",
            "504",
            took,
            "gave up at the timeout",
        )
        return DemoResult([row], Text(error_text(response)))
    if response.status_code != 200:
        return refused("hanging", response)
    reply = response.json()
    without = reply["timeout_s"] is None
    row = RunRow(
        f"hang {values['hang_s']} s",
        "no timeout" if without else f"timeout {values['timeout_s']} s",
        "200",
        took,
        f"waited {reply['waited_ms']:.0f} ms",
        ok=not without,
    )
    return DemoResult([row], Text(reply["note"], style="bold red" if without else ""))


async def read_stats(ctx: ExplorerContext) -> dict[str, Any]:
    """``GET /cache/stats``."""
    response = await ctx.http.get("/cache/stats")
    response.raise_for_status()
    stats: dict[str, Any] = response.json()
    return stats


Runner = Callable[[ExplorerContext, dict[str, str]], Awaitable[DemoResult]]

#: each demonstration's requests (the code view shows them)
RUNNERS: dict[str, Runner] = {
    "get": get_one,
    "stampede": stampede,
    "sweep": sweep,
    "clients": compare_clients,
    "hanging": hanging,
}
