"""What each database action's result says on screen: its figures, then what they mean.

Pure functions from a route's JSON (and the stalls the monitor saw) to Rich renderables;
the pane only picks one. The dashboard's is a time axis (:mod:`.db_timeline`).
"""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.text import Text

from explorer.patterns.db.timeline import QuerySpan, QueryTimeline
from explorer.wording import counted
from fastasync_probe.monitor import Stall

#: what each dashboard form is called on screen
FORMS = {
    "pool": "gather on the pool",
    "one_connection": "gather on ONE connection",
    "one_session": "gather on ONE AsyncSession",
}


def describe_fetch(data: dict[str, Any]) -> Text:
    """Three ways to get a connection for one row: connections opened, time per request."""
    text = Text()
    for way in data["ways"]:
        text.append(f"{way['via']:<18}", style="bold")
        style = "bold red" if way["opened"] else "green"
        text.append(f"{way['opened']:>3} connections opened", style=style)
        text.append(f"   median {way['ms']:6.1f} ms/request\n")
    text.append(f"unknown id: {data['unknown_id']}\n", style="dim")
    if data.get("backend") == "sqlite":
        cost = (
            "On SQLite a new connection is only a file and a thread, so the time hardly "
            "differs; on PostgreSQL each is a TCP connection and a login (asyncpg opens ten "
            "per pool)."
        )
    else:
        cost = (
            "A pool per request pays the connection set-up on every request (the guide's "
            "version never closes it: ten leaked connections per request)."
        )
    text.append(cost, style="dim")
    return text


def dashboard_timeline(data: dict[str, Any]) -> QueryTimeline:
    """The dashboard's queries as the figure draws them."""
    spans = [QuerySpan.of(query) for query in data["queries"]]
    return QueryTimeline(spans, float(data["latency_ms"]))


def describe_dashboard(data: dict[str, Any]) -> Group:
    """Each query on one time axis; then the wall time, the verdict and the driver's error."""
    text = Text()
    effective = data["effective"]
    if effective != data["mode"]:
        text.append("blocking mode · ", style="bold red")
    form = FORMS.get(effective, effective)
    text.append(form, style="bold red" if effective != "pool" else "bold green")
    text.append(": ")
    text.append(f"wall {data['wall_ms']:.0f} ms", style="bold")
    text.append(", ")
    if data["failed"]:
        text.append(f"{data['failed']} of {len(data['queries'])} failed", style="bold red")
    elif data.get("overlapped"):
        text.append("all at the same time", style="bold green")
    else:
        text.append("one after another", style="bold red")
    text.append("\n")
    if data.get("error"):
        text.append(f"the driver said: {data['error']}\n", style="bold red")
    text.append(str(data["note"]), style="dim")
    return Group(dashboard_timeline(data), text)


#: the count bars of the paired comparisons, in cells
COUNT_BAR = 30
#: why the time of a round trip differs by backend (the counts are the same everywhere)
ROUND_TRIP_COST = {
    "sqlite": "A round trip here is a hop to SQLite's thread in this process (tens of µs, "
    "more while the loop is busy); to a database server each of the {n} is a network round "
    "trip (0.1 ms on loopback, 1 ms and more across a network).",
    "postgresql": "Each round trip waits for PostgreSQL over the network (about 0.1 ms on "
    "loopback, 1 ms and more across a network): {n} of them add up.",
}


def describe_pair(data: dict[str, Any], unit: str, count: str, count_label: str) -> Text:
    """Two ways of doing the same work (batch vs row by row, prefetch vs N+1): how many
    round trips each took, drawn to scale, then the time (median of the rounds)."""
    text = Text()
    runs = data["runs"]
    most = max(1, max(int(run[count]) for run in runs))
    text.append(f"{'':<12}{count_label} to the database", style="dim")
    text.append(f"{'':>{COUNT_BAR - len(count_label) - 13}}  median time\n", style="dim")
    for run in runs:
        name = run["effective"]
        trips = int(run[count])
        cells = max(1, round(COUNT_BAR * trips / most))
        pitfall = name in ("row_by_row", "n_plus_one")
        text.append(f"{name:<12}", style="bold")
        text.append("█" * cells, style="red" if pitfall else "green")
        text.append(f" {trips:<{COUNT_BAR - cells + 5}}", style="bold")
        text.append(f"{run['ms']:8.1f} ms\n")
    first, second = runs
    size = first[unit] if unit == "rows" else len(first["posts"])
    if first["effective"] == second["effective"]:
        text.append(
            f"blocking mode: both runs took the {first['effective']} way\n", style="bold red"
        )
    else:
        text.append(f"{size} {unit}: {second['effective']} made ", style="bold")
        text.append(f"{second[count] / max(1, first[count]):.0f}× the {count_label}", "bold")
        if first["ms"] > 0:
            text.append(f" and took {second['ms'] / first['ms']:.1f}× as long", style="bold")
        text.append(".\n")
    cost = ROUND_TRIP_COST.get(str(second.get("backend")), "")
    text.append(cost.format(n=second[count]), style="dim")
    return text


def _span(values: list[float]) -> str:
    """``1.5 s`` or ``1.5-3.1 s`` (of ms values)."""
    low, high = min(values) / 1000, max(values) / 1000
    return f"{low:.1f} s" if f"{low:.1f}" == f"{high:.1f}" else f"{low:.1f}-{high:.1f} s"


def describe_exhaust(data: dict[str, Any]) -> Text:
    """More requests than connections: who was served and when, who got a 503 and when."""
    text = Text()
    text.append(
        f"{data['requests']} requests at once, pool of {data['pool_size']}, each holding "
        f"its connection {data['hold_s']:g} s\n",
        style="bold",
    )
    if data["served_ms"]:
        text.append(f"{data['ok']:>3} served", style="green")
        text.append(f"   after {_span(data['served_ms'])}")
        if data["waited"]:
            text.append(
                f": {data['waited']} waited {data['max_wait_ms'] / 1000:.1f} s for a free "
                "connection",
                style="bold red",
            )
        text.append("\n")
    if data["refused_ms"]:
        text.append(f"{data['refused']:>3} got 503", style="bold yellow")
        text.append(f"  after {_span(data['refused_ms'])}")
        text.append(f" (the {data['timeout_s']:g} s acquire timeout)\n", style="dim")
    if data["other"]:
        text.append(f"other statuses {data['other']}\n", style="bold red")
    peak = data.get("peak") or {}
    if peak:
        text.append(
            f"gauge during the run: in use up to {peak.get('in_use', 0)}/{data['pool_size']}"
            f" · waiters up to {peak.get('waiters', 0)}\n",
            style="dim",
        )
    if data["detail"]:
        text.append(
            "The excess was refused after the acquire timeout instead of hanging; the "
            "client can retry or show an error.",
            style="dim",
        )
    else:
        text.append(
            "No acquire timeout: the excess queued for a connection, as long as it took. "
            "With slow queries that is a hung request.",
            style="bold red",
        )
    return text


def describe_report(data: dict[str, Any], stalls: list[Stall]) -> Text:
    """The slow report, what it did to the other requests, and the stall if it caused one."""
    text = Text()
    text.append(f"{data['driver']}", style="bold")
    text.append(f" · {data['ms']:.0f} ms · {data['orders']} orders\n")
    gap = float(data["longest_gap_ms"])
    frozen = bool(stalls) or gap >= 0.6 * float(data["ms"])
    text.append("meanwhile: ", style="bold")
    text.append(f"{counted(int(data['probes']), 'other request')} answered, ")
    text.append(
        f"none for {gap:.0f} ms at the longest", style="bold red" if frozen else "bold green"
    )
    text.append("\n")
    if stalls:
        worst = max(stalls, key=lambda s: s.duration_ms)
        text.append(f"{counted(len(stalls), 'stall')} in the handler: ", style="bold red")
        text.append(f"{worst.duration_ms:.0f} ms at {worst.location}\n", style="bold red")
        text.append(
            "Nothing else ran on the loop meanwhile: not the UI, not other requests (these "
            "come from this UI, on the same loop). Press c: the line is highlighted.",
            style="dim",
        )
    else:
        text.append(
            "No stall: the query ran in the driver's thread / on the server while the loop "
            "went on answering.",
            style="green",
        )
    return text
