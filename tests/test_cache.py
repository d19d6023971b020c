"""Pooling and caching over real HTTP: the TTL cache, shared vs per-request clients, timeouts.

The upstream is a route of the same server, reached over loopback; it counts the calls and
the connections that reach it, so the tests read the figures where they really happen.
Timing bounds are generous: the machine may be slow and shared.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.text import Text
from textual.app import App
from textual.geometry import Region
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import DataTable, Input, Select

from explorer.app import ExplorerApp
from explorer.patterns.cache.client import DemoResult
from explorer.patterns.cache.pane import DEMOS, CachePane, RunRow
from explorer.patterns.cache.stampede import StampedeRun
from explorer.registry import PANES
from explorer.widgets.code_view import CodeView
from server.patterns.cache.router import CacheParts
from server.patterns.cache.ttl_cache import CacheClosed, TTLCache
from server.runner import ServerHandle
from server.state import state_of
from tests.conftest import FrozenSnapshot, eventually
from tests.http_checks import clear_422_detail, send_raw
from tests.layout import problems_of
from tests.pilots import live_pane, open_frozen, still_picture

Reply = dict[str, Any]


def cold_key(prefix: str = "k") -> str:
    """A key no test has read before."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def cache_tasks() -> list[str]:
    """Names of this pattern's tasks still pending on the loop."""
    return sorted(t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith("cache:"))


async def value(client: httpx.AsyncClient, key: str, **params: float) -> Reply:
    response = await client.get(f"/cache/value/{key}", params=params)
    assert response.status_code == 200, response.text
    reply: Reply = response.json()
    return reply


async def stats(client: httpx.AsyncClient) -> Reply:
    response = await client.get("/cache/stats")
    assert response.status_code == 200
    reply: Reply = response.json()
    return reply


# -- the TTL cache over HTTP ----------------------------------------------------------------


async def test_miss_then_hit_then_expiry(client: httpx.AsyncClient) -> None:
    key = cold_key()
    first = await value(client, key, delay_s=0.2, ttl_s=0.6)
    assert first["source"] == "miss"
    assert first["took_ms"] >= 200  # it waited for the upstream
    assert (first["upstream_calls"], first["computed_by_call"]) == (1, 1)

    second = await value(client, key, delay_s=0.2, ttl_s=0.6)
    assert second["source"] == "hit"
    assert second["value"] == first["value"]
    assert second["took_ms"] < 150  # no upstream call: far below its 200 ms
    assert second["upstream_calls"] == 1  # the upstream saw nothing new
    assert 0 < second["expires_in_s"] <= 0.6

    assert (first["expired"], second["expired"]) == (False, False)

    await asyncio.sleep(0.8)
    third = await value(client, key, delay_s=0.2, ttl_s=0.6)
    assert third["source"] == "miss"
    assert third["expired"] is True  # it was there, past its TTL
    assert (third["upstream_calls"], third["computed_by_call"]) == (2, 2)
    counters = await stats(client)
    assert (counters["hits"], counters["misses"], counters["expired"]) == (1, 2, 1)


async def test_concurrent_misses_share_one_upstream_call(client: httpx.AsyncClient) -> None:
    key = cold_key()
    replies = await asyncio.gather(*(value(client, key, delay_s=0.4) for _ in range(20)))
    sources = sorted(r["source"] for r in replies)
    assert sources == ["coalesced"] * 19 + ["miss"]
    assert {r["upstream_calls"] for r in replies} == {1}
    assert {r["value"] for r in replies} == {replies[0]["value"]}
    counters = await stats(client)
    assert (counters["misses"], counters["coalesced"], counters["in_flight"]) == (1, 19, 0)
    assert counters["single_flight"] is True


async def test_blocking_mode_lets_the_stampede_through(
    client: httpx.AsyncClient, blocking: None
) -> None:
    key = cold_key()
    replies = await asyncio.gather(*(value(client, key, delay_s=0.4) for _ in range(20)))
    assert [r["source"] for r in replies] == ["miss"] * 20
    assert max(r["upstream_calls"] for r in replies) == 20  # counted at the upstream
    assert all(r["single_flight"] is False for r in replies)
    counters = await stats(client)
    assert (counters["misses"], counters["coalesced"]) == (20, 0)
    assert counters["single_flight"] is False


async def test_lru_bound_evicts_the_least_recently_used(client: httpx.AsyncClient) -> None:
    maxsize = (await stats(client))["maxsize"]
    keys = [cold_key(f"lru{i}") for i in range(maxsize + 1)]
    for key in keys[:maxsize]:
        await value(client, key, delay_s=0)
    assert (await value(client, keys[0], delay_s=0))["source"] == "hit"  # now most recent
    await value(client, keys[maxsize], delay_s=0)  # one too many: keys[1] goes, not keys[0]
    counters = await stats(client)
    assert (counters["size"], counters["evictions"]) == (maxsize, 1)
    assert (await value(client, keys[0], delay_s=0))["source"] == "hit"
    assert (await value(client, keys[1], delay_s=0))["source"] == "miss"


async def test_a_caller_that_gives_up_does_not_cancel_the_shared_computation(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    key = cold_key()
    async with httpx.AsyncClient(base_url=server.url, timeout=0.3) as impatient:
        with pytest.raises(httpx.ReadTimeout):
            await impatient.get(f"/cache/value/{key}", params={"delay_s": 1.0})
    # The computation was shielded: it finishes and is stored, for the next caller.
    later = await value(client, key, delay_s=1.0)
    assert later["source"] in ("coalesced", "hit")
    assert later["upstream_calls"] == 1
    await eventually(lambda: cache_tasks() == [], within=3)


async def test_clear_drops_entries_and_resets_counters(client: httpx.AsyncClient) -> None:
    key = cold_key()
    await value(client, key, delay_s=0)
    await value(client, key, delay_s=0)
    response = await client.delete("/cache/entries", params={"reset_stats": "true"})
    assert response.status_code == 200
    body = response.json()
    assert body["dropped"] == 1
    assert (body["stats"]["size"], body["stats"]["hits"], body["stats"]["misses"]) == (0, 0, 0)
    assert (await value(client, key, delay_s=0))["source"] == "miss"


# -- the cache itself (no HTTP): failures, cancellation, close ---------------------------


async def test_a_failed_computation_reaches_every_waiter_and_is_not_cached() -> None:
    cache: TTLCache[str, int] = TTLCache(4)
    calls = 0

    async def failing() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        raise ValueError("upstream said no")

    results = await asyncio.gather(
        *(cache.get_or_compute("k", failing, 10) for _ in range(5)), return_exceptions=True
    )
    assert calls == 1
    assert all(isinstance(r, ValueError) for r in results)
    assert cache.stats().errors == 1
    assert cache.peek("k") is None

    async def working() -> int:
        return 42

    assert (await cache.get_or_compute("k", working, 10)).source == "miss"
    await cache.close()


async def test_close_cancels_computations_in_flight_and_refuses_new_lookups() -> None:
    cache: TTLCache[str, int] = TTLCache(4)
    started = asyncio.Event()

    async def slow() -> int:
        started.set()
        await asyncio.sleep(30)
        return 1

    waiter = asyncio.create_task(cache.get_or_compute("k", slow, 10))
    await started.wait()
    assert cache.stats().in_flight == 1
    began = time.perf_counter()
    await cache.close()
    assert time.perf_counter() - began < 2
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert cache.stats().in_flight == 0
    with pytest.raises(CacheClosed):
        await cache.get_or_compute("k", slow, 10)


# -- one shared client versus a client per request ---------------------------------------


async def client_run(client: httpx.AsyncClient, **body: Any) -> Reply:
    response = await client.post("/cache/clients/run", json=body)
    assert response.status_code == 200, response.text
    reply: Reply = response.json()
    assert reply["errors"] == 0, reply["first_error"]
    assert reply["ok"] == reply["upstream_calls"] == body["n"]
    return reply


async def test_shared_client_reuses_its_connections(client: httpx.AsyncClient) -> None:
    first = await client_run(client, mode="shared", n=40, concurrency=5)
    assert 1 <= first["connections_opened"] <= 5
    assert first["connections_seen"] <= 5  # 40 calls over at most 5 TCP connections
    assert first["clients_created"] == 0
    again = await client_run(client, mode="shared", n=40, concurrency=5)
    # Back to back, the pool's kept-alive connections carry the second run.
    assert again["connections_opened"] < again["connections_seen"] or (
        again["connections_opened"] == 0
    )
    assert again["connections_seen"] <= 5


async def test_a_client_per_request_opens_a_connection_per_call(client: httpx.AsyncClient) -> None:
    reply = await client_run(client, mode="per_request", n=20, concurrency=5)
    assert reply["clients_created"] == 20
    assert reply["connections_opened"] == 20  # client side: httpcore's connect_tcp
    # Upstream side: distinct client ports. Linux may hand a closed loopback connection's
    # port to a later one, so this is a lower bound; still far more than a pool's few.
    assert 5 < reply["connections_seen"] <= 20
    assert "20 TCP connections" in reply["note"]


async def test_a_client_run_stops_when_its_caller_goes_away(server: ServerHandle) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=0.5) as impatient:
        with pytest.raises(httpx.ReadTimeout):
            await impatient.post(
                "/cache/clients/run",
                json={"mode": "shared", "n": 1000, "concurrency": 2, "delay_s": 0.1},
            )
    # 1000 calls of 0.1 s two at a time would take 50 s: the run is cancelled instead.
    await eventually(lambda: cache_tasks() == [], within=3)
    ledger = state_of(server.app).need(CacheParts).ledger
    calls = ledger.total_calls
    await asyncio.sleep(0.5)
    assert ledger.total_calls == calls  # the upstream hears no more of it


# -- timeouts against a hanging upstream -------------------------------------------------


async def test_a_timeout_answers_504_instead_of_hanging(client: httpx.AsyncClient) -> None:
    began = time.perf_counter()
    response = await client.get("/cache/hanging", params={"hang_s": 10, "timeout_s": 0.3})
    took = time.perf_counter() - began
    assert response.status_code == 504
    detail = response.json()["detail"]
    assert "0.3 s timeout" in detail
    assert "ReadTimeout" in detail
    assert 0.3 <= took < 5  # the timeout, not the 10 s hang
    # The upstream saw its caller hang up and let go: nothing is left waiting.
    await eventually(lambda: cache_tasks() == [], within=3)


async def test_blocking_mode_calls_without_a_timeout(
    client: httpx.AsyncClient, blocking: None
) -> None:
    response = await client.get("/cache/hanging", params={"hang_s": 1.0, "timeout_s": 0.2})
    assert response.status_code == 200, response.text
    reply = response.json()
    assert reply["timeout_s"] is None
    assert reply["waited_ms"] >= 1000  # the whole hang, not the 0.2 s timeout
    assert reply["note"].startswith("Blocking mode")


async def test_an_upstream_that_answers_in_time(client: httpx.AsyncClient) -> None:
    response = await client.get("/cache/hanging", params={"hang_s": 0, "timeout_s": 5})
    assert response.status_code == 200
    assert response.json()["timeout_s"] == 5


# -- lifespan and shutdown ---------------------------------------------------------------


async def test_lifespan_owns_the_cache_and_the_shared_client(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    parts = state_of(server.app).need(CacheParts)
    shared: httpx.AsyncClient = parts.client
    cache: TTLCache[str, Any] = parts.cache
    assert "cache" in (await client.get("/")).json()["patterns"]
    # a computation in flight when the server stops is cancelled, not waited for
    slow = asyncio.create_task(client.get(f"/cache/value/{cold_key()}", params={"delay_s": 5}))
    await eventually(lambda: cache.stats().in_flight == 1, within=3)
    began = time.perf_counter()
    await server.stop()
    assert time.perf_counter() - began < server.shutdown_budget_s + 1
    assert shared.is_closed
    assert cache.stats().in_flight == 0
    with pytest.raises(CacheClosed):
        await cache.get_or_compute("x", lambda: asyncio.sleep(0), 1)
    # uvicorn cancels a request still running after its graceful period and answers 500
    # (or drops the connection): the 5 s computation did not hold the shutdown.
    with contextlib.suppress(httpx.RemoteProtocolError):
        assert (await slow).status_code == 500
    assert cache_tasks() == []


# -- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/cache/value/a%20b", {}),
        ("/cache/value/" + "x" * 65, {}),
        ("/cache/value/a", {"delay_s": "-1"}),
        ("/cache/value/a", {"delay_s": "6"}),
        ("/cache/value/a", {"delay_s": "nan"}),
        ("/cache/value/a", {"ttl_s": "0"}),
        ("/cache/value/a", {"ttl_s": "1e9"}),
        ("/cache/value/a", {"ttl_s": "soon"}),
        ("/cache/hanging", {"hang_s": "-1"}),
        ("/cache/hanging", {"hang_s": "31"}),
        ("/cache/hanging", {"timeout_s": "0"}),
        ("/cache/hanging", {"timeout_s": "11"}),
        ("/cache/hanging", {"timeout_s": "inf"}),
        ("/cache/upstream/hang", {"hold_s": "100"}),
        ("/cache/upstream/echo", {}),
        ("/cache/upstream/echo", {"run": "NOT-HEX"}),
        ("/cache/upstream/echo", {"run": "ab", "delay_s": "2"}),
        ("/cache/upstream/compute/a", {"delay_s": "-0.1"}),
    ],
)
async def test_bad_query_input_gets_a_clear_422(
    client: httpx.AsyncClient, path: str, params: dict[str, str]
) -> None:
    clear_422_detail(await client.get(path, params=params))


@pytest.mark.parametrize(
    "body",
    [
        b'{"mode": "pooled"}',
        b'{"n": 5}',
        b'{"mode": "shared", "n": 0}',
        b'{"mode": "shared", "n": 100000}',
        b'{"mode": "shared", "concurrency": 0}',
        b'{"mode": "shared", "concurrency": 51}',
        b'{"mode": "shared", "delay_s": -1}',
        b'{"mode": "shared", "delay_s": NaN}',
        b'{"mode": "shared", "n": Infinity}',
        b'{"mode": "shared", "extra": 1}',
        b"not json",
        b"[]",
        # valid fields, but 1000 calls of 1 s one at a time would take 1000 s
        b'{"mode": "shared", "n": 1000, "concurrency": 1, "delay_s": 1}',
    ],
)
async def test_bad_client_runs_get_a_clear_422(client: httpx.AsyncClient, body: bytes) -> None:
    clear_422_detail(await send_raw(client, "POST", "/cache/clients/run", body))


async def test_unknown_routes_are_404(client: httpx.AsyncClient) -> None:
    assert (await client.get("/cache/nothing")).status_code == 404
    assert (await client.get("/cache/value/")).status_code == 404


# -- the pane (Pilot) --------------------------------------------------------------------

SIZES = [(100, 30), (140, 45), (200, 60)]
RESULTS = ("#summary", "#runs")


async def open_pane(app: ExplorerApp, pilot: Pilot[Any]) -> CachePane:
    await eventually(lambda: app.context is not None and bool(app.query("#pane-cache")))
    await pilot.press(str([p.SLUG for p in PANES].index("cache") + 1))
    await pilot.pause()
    pane = app.query_one(CachePane)
    assert pane.display
    return pane


def table_rows(app: App[Any]) -> list[list[str]]:
    """Each run as ``[#, demo, form, outcome, detail, took]`` (its two lines split)."""
    table: DataTable[Any] = app.query_one("#pane-cache #runs", DataTable)
    rows = []
    for i in range(table.row_count):
        number, run, outcome, took = (str(cell) for cell in table.get_row_at(i))
        demo, form = run.split("\n")
        result, detail = outcome.split("\n")
        rows.append([number, demo, form, result, detail, took])
    return rows


def set_fields(app: ExplorerApp, **values: str) -> None:
    for name, text in values.items():
        app.query_one(f"#pane-cache #{name}", Input).value = text


def rendered_lines(widget: Widget) -> list[str]:
    """What ``widget`` shows now, line by line, as a reader sees it (cut to its width)."""
    width, height = widget.content_size
    return [strip.text.rstrip() for strip in widget.render_lines(Region(0, 0, width, height))]


def summary(app: ExplorerApp) -> str:
    """The sentence and figure under the controls, as drawn (lines joined)."""
    return " ".join(rendered_lines(app.query_one("#pane-cache #summary")))


async def run(pilot: Pilot[Any], pane: CachePane, demo: str, rows: int) -> None:
    """Choose ``demo`` in the menu, press r, wait for its ``rows`` rows in all."""
    pane.query_one("#demo", Select).value = demo
    await pilot.pause()
    await pilot.press("r")
    await eventually(lambda: len(table_rows(pane.app)) == rows and not pane.busy, within=40)
    await pilot.pause(0.1)


async def test_pane_stampede_leads_with_the_upstream_calls(tmp_path: Path) -> None:
    """Defaults (20 callers, 2 s upstream): 1 upstream call, then in blocking mode 20, as
    the pane's figure shows them; the wall time is not the lesson and the text says so."""
    async with live_pane(tmp_path, (100, 30), open_pane) as (app, pilot, pane):
        assert pane.demo == "stampede"  # the default demo
        await run(pilot, pane, "stampede", 1)
        row = table_rows(app)[0]
        assert row[1:4] == ["stampede ×20", "single flight", "1 upstream call"]
        assert row[4].startswith("1 miss, ")  # the others coalesced (or, late, hit)
        shown = summary(app)
        assert "the upstream counted 1 call" in shown
        assert "single flight    █ 1 for 20 callers" in shown
        assert "the time is not the lesson" in shown
        assert pane.stampedes["single flight"].upstream_calls == 1

        await pilot.press("b")
        await pilot.press("r")
        await eventually(lambda: len(table_rows(app)) == 2 and not pane.busy, within=20)
        await pilot.pause(0.1)
        row = table_rows(app)[1]
        assert row[2:4] == ["no single flight", "20 upstream calls"]
        shown = summary(app)
        assert "Stampede: 20 misses at once, the upstream counted 20 calls" in shown
        # both forms, to one scale: 1 bar cell against 16
        assert "single flight    █ 1 for 20 callers" in shown
        assert "no single flight ████████████████ 20 for 20 callers" in shown
        assert pane.stampedes["no single flight"].upstream_calls == 20
        stats_line = " ".join(rendered_lines(app.query_one("#pane-cache #stats")))
        assert "misses 21" in stats_line
        assert "single flight OFF" in stats_line
        assert problems_of(pane, results=RESULTS) == []

        await pilot.press("c")
        await pilot.pause(0.2)
        panels = app.query_one(CodeView).blocks
        assert panels[0].path == "server/patterns/cache/ttl_cache.py"
        assert "def get_or_compute" in panels[0].text
        assert "def stampede" in panels[-1].text
        await pilot.press("escape")
        await pilot.press("b")


async def test_pane_compares_shared_and_per_request_clients(tmp_path: Path) -> None:
    async with live_pane(tmp_path, (100, 30), open_pane) as (app, pilot, pane):
        pane.demo = "clients"
        set_fields(app, calls="20", concurrency="4")
        await run(pilot, pane, "clients", 2)
        shared, fresh = table_rows(app)
        assert shared[2] == "shared"
        assert fresh[2] == "per-request"
        assert fresh[4].startswith("TCP opened 20 · seen ")
        assert "shared/per-request" in summary(app)


async def test_pane_hanging_upstream_times_out(tmp_path: Path) -> None:
    async with live_pane(tmp_path, (100, 30), open_pane) as (app, pilot, pane):
        set_fields(app, hang_s="5", timeout_s="0.2")
        await run(pilot, pane, "hanging", 1)
        row = table_rows(app)[0]
        assert row[2:4] == ["timeout 0.2 s", "504"]
        assert "0.2 s timeout" in summary(app)

        await pilot.press("b")
        set_fields(app, hang_s="1")
        await pilot.press("r")
        await eventually(lambda: len(table_rows(app)) == 2 and not pane.busy, within=20)
        row = table_rows(app)[1]
        assert row[2:4] == ["no timeout", "200"]
        assert float(row[5].split()[0]) >= 900  # it waited out the whole hang
        await pilot.press("b")


async def test_pane_refuses_bad_parameters(tmp_path: Path) -> None:
    async with live_pane(tmp_path, (100, 30), open_pane) as (app, pilot, pane):
        set_fields(app, callers="1", key="no spaces please")
        await pilot.press("r")
        await pilot.pause()
        assert pane.busy == 0
        assert table_rows(app) == []
        assert any("Invalid input" in (n.title or "") for n in app._notifications)


async def test_pane_get_hits_then_expires_then_sweep_evicts_then_clear(tmp_path: Path) -> None:
    async with live_pane(tmp_path, (100, 30), open_pane) as (app, pilot, pane):
        set_fields(app, key="pilot", delay_s="0.1", ttl_s="3")
        await run(pilot, pane, "get", 1)
        await pilot.press("r")
        await eventually(lambda: len(table_rows(app)) == 2, within=10)
        assert [row[3] for row in table_rows(app)] == ["miss", "hit"]
        await pilot.pause(0.1)
        assert "A hit" in summary(app)
        await asyncio.sleep(3.2)  # past the TTL
        await pilot.press("r")
        await eventually(lambda: len(table_rows(app)) == 3, within=10)
        assert table_rows(app)[2][3] == "miss (expired)"
        await pilot.pause(0.1)
        assert "older than its 3 s TTL" in summary(app)

        await pilot.click("#pane-cache #clear")
        await eventually(lambda: (pane.stats or {}).get("size") == 0, within=5)
        await run(pilot, pane, "sweep", 4)
        sweep = table_rows(app)[3]
        assert sweep[3] == "12 misses, 0 hits"
        # 12 keys went into 8 places: the 4 least recently used were evicted
        assert sweep[4] == "4 evicted · cache holds 8/8"
        await eventually(lambda: (pane.stats or {}).get("evictions") == 4, within=5)

        await pilot.click("#pane-cache #clear")
        await eventually(lambda: (pane.stats or {}).get("size") == 0, within=5)
        assert pane.stats is not None
        assert (pane.stats["hits"], pane.stats["misses"], pane.stats["evictions"]) == (0, 0, 0)
        assert "cache 0/8" in " ".join(rendered_lines(app.query_one("#pane-cache #stats")))


async def test_pane_is_whole_at_every_size_for_every_demo(tmp_path: Path) -> None:
    for size in SIZES:
        async with live_pane(tmp_path, size, open_pane) as (app, pilot, pane):
            for demo in DEMOS:
                for blocking in (False, True):
                    app.blocking_switch.set(blocking)
                    pane.query_one("#demo", Select).value = demo.key
                    await pilot.pause(0.05)
                    assert problems_of(pane, results=RESULTS) == [], (size, demo.key)
                    shown = {f.id for f in pane.query(Input) if f.parent and f.parent.display}
                    assert shown == set(demo.fields), (size, demo.key)
            app.blocking_switch.set(False)
            set_fields(app, delay_s="0.1")
            await run(pilot, pane, "stampede", 1)
            assert problems_of(pane, results=RESULTS) == [], size
            # the figure is on screen whole (no scrolling): note, two bars, the why
            assert len(rendered_lines(pane.query_one("#summary"))) >= 4
            assert not pane.query_one("#runs", DataTable).show_horizontal_scrollbar
            await pilot.press("q")


async def test_enter_in_every_field_runs_and_escape_leaves_it(tmp_path: Path) -> None:
    async with live_pane(tmp_path, (100, 30), open_pane) as (app, pilot, pane):
        # short runs: the point is that Enter runs whatever demo is chosen
        set_fields(
            app, delay_s="0", callers="2", calls="2", concurrency="1", hang_s="0.2", timeout_s="1"
        )
        runs = 0
        for demo in DEMOS:
            pane.query_one("#demo", Select).value = demo.key
            await pilot.pause()
            for name in demo.fields:
                pane.query_one(f"#{name}", Input).focus()
                await pilot.press("enter")
                runs += 2 if demo.key == "clients" else 1
                await eventually(
                    lambda n=runs: len(table_rows(app)) == n and not pane.busy,  # type: ignore[misc]
                    within=30,
                )
        pane.query_one("#key", Input).focus()
        await pilot.press("escape")
        assert not isinstance(app.focused, Input)
        await pilot.press("q")
        await pilot.pause(3)
    assert app.return_code == 0


# -- snapshots (every live number frozen) ------------------------------------------------


FROZEN_CACHE_STATS = {
    "size": 3,
    "maxsize": 8,
    "hits": 12,
    "misses": 23,
    "coalesced": 19,
    "expired": 1,
    "evictions": 4,
    "errors": 0,
    "in_flight": 0,
    "single_flight": True,
    "upstream_calls": 263,
}

FROZEN_RIGHT = StampedeRun(True, 20, 1, 1083.2, 1012.4)
FROZEN_STAMPEDE = StampedeRun(False, 20, 20, 1124.7, 1041.9)


def stampede_result(run: StampedeRun) -> DemoResult:
    if run.single_flight:
        row = RunRow(
            "stampede ×20", "single flight", "1 upstream call", run.wall_ms, "1 miss, 19 coalesced"
        )
        note = Text("20 misses at once: the upstream counted 1 call, 19 waited for it.")
    else:
        row = RunRow(
            "stampede ×20",
            "no single flight",
            "20 upstream calls",
            run.wall_ms,
            "20 misses",
            ok=False,
        )
        note = Text("Stampede: 20 misses at once, the upstream counted 20 calls.")
    return DemoResult([row], note, run)


def frozen_cache_runs(*results: tuple[str, DemoResult], blocking: bool = False) -> Any:
    async def run_before(pilot: Pilot[Any]) -> None:
        app, pane = await open_frozen(pilot, CachePane)
        for demo, result in results:
            if demo == "stampede" and result.stampede and not result.stampede.single_flight:
                app.blocking_switch.set(True)
            pane.query_one("#demo", Select).value = demo  # the menu shows what ran last
            pane.post_message(CachePane.DemoDone(demo, result))
            await pilot.pause(0.05)
        app.blocking_switch.set(blocking)
        # the pane reads the real (empty) stats after each run; freeze them once it has
        await pilot.pause(0.6)
        pane.stats = {**FROZEN_CACHE_STATS, "single_flight": not blocking}
        await still_picture(pilot)

    return run_before


HANGING = DemoResult(
    [RunRow("hang 3.0 s", "timeout 0.5 s", "504", 503.2, "gave up at the timeout")],
    Text("frozen"),
)
CLIENTS = DemoResult(
    [
        RunRow("clients ×100", "shared", "612 req/s", 163.4, "TCP opened 0 · seen 10"),
        RunRow(
            "clients ×100", "per-request", "38 req/s", 2639.4, "TCP opened 100 · seen 100", ok=False
        ),
    ],
    Text("shared/per-request: 16.1× the requests/s · connections opened 0 vs 100"),
)


def test_cache_pane_after_a_stampede_and_a_client_run(frozen_snapshot: FrozenSnapshot) -> None:
    run_before = frozen_cache_runs(
        ("stampede", stampede_result(FROZEN_RIGHT)),
        ("stampede", stampede_result(FROZEN_STAMPEDE)),
        ("hanging", HANGING),
        ("clients", CLIENTS),
    )
    assert frozen_snapshot((120, 40), run_before)


def test_cache_pane_after_a_default_run_at_100x30(frozen_snapshot: FrozenSnapshot) -> None:
    assert frozen_snapshot(
        (100, 30), frozen_cache_runs(("stampede", stampede_result(FROZEN_RIGHT)))
    )


def blocking_stampede_run() -> Any:
    """r on defaults, then b and r: the stampede after single-flight, still in blocking mode."""
    return frozen_cache_runs(
        ("stampede", stampede_result(FROZEN_RIGHT)),
        ("stampede", stampede_result(FROZEN_STAMPEDE)),
        blocking=True,
    )


def test_cache_pane_after_a_blocking_run_at_100x30(frozen_snapshot: FrozenSnapshot) -> None:
    assert frozen_snapshot((100, 30), blocking_stampede_run())


def test_cache_pane_after_a_blocking_run_at_140x45(frozen_snapshot: FrozenSnapshot) -> None:
    assert frozen_snapshot((140, 45), blocking_stampede_run())
