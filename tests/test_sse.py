"""SSE over real HTTP: ids, resume from Last-Event-ID, heartbeats, the app's activity,
disconnect hygiene, the leaked-producer pitfall, bad input; then the pane (Pilot)."""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import ServerSentEvent, aconnect_sse
from textual.pilot import Pilot
from textual.widgets import Input, Log, Static

from explorer.app import ExplorerApp
from explorer.patterns.sse.figures import Leave, describe
from explorer.patterns.sse.pane import SsePane
from explorer.registry import PANES
from server.patterns.sse import router as sse_routes
from server.patterns.sse.bus import RING_CAPACITY
from server.patterns.sse.feeds import SseHub, tick_value
from server.runner import ServerHandle
from server.settings import Settings
from server.state import state_of
from tests.conftest import SNAPSHOT_SIZES, FrozenSnapshot, Size, eventually, set_blocking
from tests.pilots import enter_in, live_pane, open_frozen, whole_before_and_after_a_run


def hub_of(server: ServerHandle) -> SseHub:
    hub: SseHub = state_of(server.app).need(SseHub)
    return hub


async def stats(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/sse/stats")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def read_events(
    client: httpx.AsyncClient,
    path: str,
    count: int,
    *,
    headers: dict[str, str] | None = None,
    names: tuple[str, ...] = ("tick", "stall", "job"),
    within: float = 10.0,
) -> list[ServerSentEvent]:
    """The first ``count`` events named in ``names`` (plus any ``missed``), then disconnect."""
    found: list[ServerSentEvent] = []
    async with asyncio.timeout(within):
        async with aconnect_sse(client, "GET", path, headers=dict(headers or {})) as source:
            assert source.response.status_code == 200, await source.response.aread()
            async for event in source.aiter_sse():
                if event.event in names or event.event == "missed":
                    found.append(event)
                    if len([e for e in found if e.event in names]) >= count:
                        break
    return found


def seq(event: ServerSentEvent) -> int:
    return int(event.id.rsplit("-", 1)[1])


async def fast_ticks(client: httpx.AsyncClient, interval: float = 0.05) -> None:
    response = await client.put("/sse/tick-interval", json={"interval_s": interval})
    assert response.status_code == 200, response.text


# -- the feed -------------------------------------------------------------------------------


async def test_feed_events_carry_consecutive_ids(client: httpx.AsyncClient) -> None:
    await fast_ticks(client)
    events = await read_events(client, "/sse/feed", 5)
    seqs = [seq(e) for e in events]
    assert seqs == list(range(seqs[0], seqs[0] + 5)), "every bus event, in order, no gap"
    epoch = events[0].id.split("-")[0]
    assert all(e.id.startswith(f"{epoch}-") for e in events)
    ticks = [e.json() for e in events if e.event == "tick"]
    assert all(t["value"] == tick_value(t["n"]) for t in ticks)
    assert all(isinstance(t["published_at"], float) for t in ticks)


async def test_resume_from_last_event_id_has_no_gap_and_no_duplicate(
    client: httpx.AsyncClient,
) -> None:
    await fast_ticks(client)
    # A reference subscriber stays connected throughout and sees everything.
    reference = asyncio.create_task(read_events(client, "/sse/feed", 30, within=20))
    await asyncio.sleep(0.1)
    first = await read_events(client, "/sse/feed", 4)
    await asyncio.sleep(0.3)  # away while ~6 ticks are published
    resumed = await read_events(client, "/sse/feed", 12, headers={"Last-Event-ID": first[-1].id})
    everything = await reference
    assert not [e for e in resumed if e.event == "missed"]
    got = [seq(e) for e in first + resumed]
    assert got == sorted(set(got)), "no duplicate, in order"
    assert got == list(range(got[0], got[-1] + 1)), "no gap"
    by_seq = {seq(e): e.data for e in everything}
    assert all(by_seq[seq(e)] == e.data for e in first + resumed if seq(e) in by_seq)


async def test_an_id_older_than_the_ring_is_told_what_it_missed(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    bus = hub_of(server).bus
    start = bus.publish("tick", {"n": -1, "value": 0.0})
    old_id = bus.event_id(start.seq)
    for i in range(RING_CAPACITY + 10):
        bus.publish("tick", {"n": -2 - i, "value": 0.0})
    events = await read_events(client, "/sse/feed", 3, headers={"Last-Event-ID": old_id})
    missed = events[0]
    assert missed.event == "missed"
    assert missed.id == ""  # never moves the client's Last-Event-ID
    report = missed.json()
    assert report["first_seq"] == start.seq + 1
    assert report["last_seq"] == bus.oldest_seq - 1 or report["last_seq"] < bus.oldest_seq
    assert report["count"] == report["last_seq"] - report["first_seq"] + 1 > 0
    assert "replay buffer" in report["reason"]
    assert seq(events[1]) == report["last_seq"] + 1, "continues from the oldest it still has"


async def test_an_id_from_another_run_is_reported_not_guessed(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    await fast_ticks(client)
    foreign = "000000-5" if hub_of(server).bus.epoch != "000000" else "111111-5"
    events = await read_events(client, "/sse/feed", 1, headers={"Last-Event-ID": foreign})
    assert events[0].event == "missed"
    assert "earlier run" in events[0].json()["reason"]
    assert events[1].event == "tick"


async def test_heartbeats_have_no_id(client: httpx.AsyncClient) -> None:
    await fast_ticks(client, 10.0)
    events = await read_events(
        client, "/sse/feed?topics=job&heartbeat=0.5", 2, names=("heartbeat",)
    )
    assert [e.event for e in events] == ["heartbeat", "heartbeat"]
    assert all(e.id == "" for e in events)


async def test_the_wire_format_is_well_formed(client: httpx.AsyncClient) -> None:
    """What ``curl -N`` shows: field lines, blank-line separated, a retry hint first."""
    await fast_ticks(client)
    raw = b""
    async with client.stream("GET", "/sse/feed?topics=tick") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        async for chunk in response.aiter_bytes():
            raw += chunk
            if raw.count(b"event: tick") >= 2 and raw.endswith(b"\n\n"):
                break
    blocks = [b for b in raw.decode().split("\n\n") if b]
    assert blocks[0].startswith("event: hello")
    assert "retry: 1000" in blocks[0]
    for block in blocks:
        for line in block.split("\n"):
            assert re.match(r"^(event|data|id|retry): |^: ", line), line
    tick = next(b for b in blocks if b.startswith("event: tick"))
    data = next(line for line in tick.split("\n") if line.startswith("data: "))
    assert json.loads(data.removeprefix("data: "))["n"] >= 1
    assert re.search(r"^id: [0-9a-f]{6}-\d+$", tick, re.M)


async def test_the_feed_carries_the_apps_own_stalls_and_jobs(client: httpx.AsyncClient) -> None:
    await fast_ticks(client, 10.0)
    jobs: list[dict[str, Any]] = []
    stalls: list[dict[str, Any]] = []

    async def read() -> None:
        async with aconnect_sse(client, "GET", "/sse/feed?topics=stall,job") as source:
            async for event in source.aiter_sse():
                if event.event == "job":
                    jobs.append(event.json())
                elif event.event == "stall":
                    stalls.append(event.json())
                if any(s["route"] == "GET /basics/async" for s in stalls) and any(
                    j["state"] == "done" for j in jobs
                ):
                    return

    reader = asyncio.create_task(read())
    await asyncio.sleep(0.2)
    queued = await client.post("/tasks/queue", json={"kind": "sleep", "duration_s": 0.05})
    assert queued.status_code == 202
    await set_blocking(client, True)
    await client.get("/basics/async", params={"delay": 0.3})  # time.sleep in blocking mode
    await asyncio.wait_for(reader, timeout=10)
    assert [j["state"] for j in jobs if j["id"] == queued.json()["job_id"]][-1] == "done"
    stall = next(s for s in stalls if s["route"] == "GET /basics/async")
    assert stall["duration_ms"] >= 250
    assert "server/patterns/basics/router.py" in stall["location"]


# -- the ticker -----------------------------------------------------------------------------


async def test_ticker_resumes_after_the_last_tick_and_ends_on_count(
    client: httpx.AsyncClient,
) -> None:
    path = "/sse/ticker?interval=0.01&count=12"
    async with aconnect_sse(client, "GET", path, headers={"Last-Event-ID": "7"}) as source:
        ticks = [e async for e in source.aiter_sse() if e.event == "tick"]
    assert [int(e.id) for e in ticks] == [8, 9, 10, 11, 12]
    assert [e.json()["value"] for e in ticks] == [tick_value(n) for n in range(8, 13)]


# -- disconnect hygiene ---------------------------------------------------------------------


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_200_aborted_subscriptions_leave_nothing_behind(server: ServerHandle) -> None:
    """Generators' finally ran, subscribers and sockets back to baseline, within a second."""
    hub = hub_of(server)
    async with httpx.AsyncClient(base_url=server.url) as client:
        await fast_ticks(client, 0.05)
    await asyncio.sleep(0.1)
    base_fds, base_tasks = open_fds(), len(asyncio.all_tasks())
    assert hub.streams == 0
    rng = random.Random(4)
    limits = httpx.Limits(max_connections=250, max_keepalive_connections=0)

    async def subscribe_and_leave(http: httpx.AsyncClient, i: int) -> None:
        path = "/sse/feed" if i % 2 else "/sse/ticker?interval=0.05"
        wanted = rng.randint(0, 3)
        async with aconnect_sse(http, "GET", path) as source:
            seen = 0
            async for _ in source.aiter_sse():
                if seen >= wanted:
                    break  # leaving mid-stream: the response is closed here
                seen += 1

    async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=30) as http:
        started = hub.streams_started
        await asyncio.gather(*(subscribe_and_leave(http, i) for i in range(200)))
        assert hub.streams_started - started == 200
    left_at = time.monotonic()
    await eventually(lambda: hub.streams == 0 and not hub.bus.subscribers, within=5)
    await eventually(lambda: open_fds() <= base_fds, within=5)
    await eventually(lambda: len(asyncio.all_tasks()) <= base_tasks, within=5)
    took = time.monotonic() - left_at
    assert hub.streams_finished - (hub.streams_started - 200) >= 200
    assert took < 5, f"back to baseline after {took:.2f} s"


# -- the pitfall ----------------------------------------------------------------------------


async def leave_ticker_after(client: httpx.AsyncClient, ticks: int) -> None:
    await read_events(client, "/sse/ticker?interval=0.02", ticks, names=("tick",))


async def test_right_ticker_stops_when_the_client_leaves(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    hub = hub_of(server)
    await leave_ticker_after(client, 2)
    await eventually(lambda: hub.streams == 0, within=1.5)
    assert not hub.leaked
    assert hub.unread_ticks == 0


async def test_pitfall_ticker_leaves_its_producer_running(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    hub = hub_of(server)
    await set_blocking(client, True)
    for _ in range(3):
        await leave_ticker_after(client, 2)
    await eventually(lambda: hub.streams == 0, within=2)  # FastAPI did cancel them ...
    assert (await stats(client))["leaked_producers"] == 3  # ... not their producers
    unread = hub.unread_ticks
    await asyncio.sleep(0.2)
    assert hub.unread_ticks > unread, "the leaked producers keep ticking for nobody"
    ended = await client.delete("/sse/leaked")
    assert ended.json() == {"cancelled": 3}
    assert (await stats(client))["leaked_producers"] == 0


async def ticker_books_after_leaving(client: httpx.AsyncClient) -> dict[str, Any]:
    """Read 2 ticks of a 20 ms ticker, leave, wait 0.5 s: that response's books."""
    async with aconnect_sse(client, "GET", "/sse/ticker?interval=0.02") as source:
        stream = int(source.response.headers[sse_routes.TICKER_HEADER])
        ticks = 0
        async for event in source.aiter_sse():
            ticks += event.event == "tick"
            if ticks == 2:
                break
    await asyncio.sleep(0.5)
    books: dict[int, dict[str, Any]] = {b["stream"]: b for b in (await stats(client))["tickers"]}
    return books[stream]


async def test_each_ticker_response_has_books_of_its_own(client: httpx.AsyncClient) -> None:
    right = await ticker_books_after_leaving(client)
    assert right["gone"] is True
    assert (right["producer_running"], right["ticks_for_nobody"]) == (False, 0)
    await set_blocking(client, True)
    pitfall = await ticker_books_after_leaving(client)
    await set_blocking(client, False)
    assert pitfall["stream"] == right["stream"] + 1
    assert pitfall["producer_running"] is True
    assert pitfall["ticks_for_nobody"] >= 5  # 0.5 s of 20 ms ticks, loosely
    # the leak of before keeps ticking; a right-form response made after counts none of it
    again = await ticker_books_after_leaving(client)
    assert (again["producer_running"], again["ticks_for_nobody"]) == (False, 0)
    assert (await stats(client))["unread_ticks"] >= pitfall["ticks_for_nobody"]
    await client.delete("/sse/leaked")


async def test_leaked_producers_are_capped(
    server: ServerHandle, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sse_routes, "MAX_LEAKED", 2)
    await set_blocking(client, True)
    await leave_ticker_after(client, 1)
    await leave_ticker_after(client, 1)
    refused = await client.get("/sse/ticker")
    assert refused.status_code == 503
    assert "DELETE /sse/leaked" in refused.json()["detail"]


async def test_shutdown_cancels_leaked_producers(tmp_path: Path) -> None:
    handle = ServerHandle(Settings(port=0, data_dir=tmp_path))
    await handle.start()
    try:
        async with httpx.AsyncClient(base_url=handle.url) as client:
            await set_blocking(client, True)
            await leave_ticker_after(client, 1)
            await leave_ticker_after(client, 1)
        hub = hub_of(handle)
        leaked = list(hub.leaked)
        assert len(leaked) == 2
    finally:
        await handle.stop()
    assert all(task.done() for task in leaked)
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("sse-")]


# -- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/sse/feed?heartbeat=0",
        "/sse/feed?heartbeat=-1",
        "/sse/feed?heartbeat=1e9",
        "/sse/feed?heartbeat=nan",
        "/sse/feed?topics=",
        "/sse/feed?topics=tick,secrets",
        "/sse/ticker?interval=0",
        "/sse/ticker?interval=-1",
        "/sse/ticker?interval=inf",
        "/sse/ticker?interval=99999",
        "/sse/ticker?count=0",
        "/sse/ticker?count=-5",
        "/sse/ticker?count=100000000000",
        "/sse/ticker?count=lots",
    ],
)
async def test_bad_queries_get_a_422(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 422, response.text
    assert response.json()["detail"]


@pytest.mark.parametrize(
    ("path", "last_id"),
    [
        ("/sse/feed", "garbage"),
        ("/sse/feed", "12"),
        ("/sse/feed", "abcdef-"),
        ("/sse/ticker", "-3"),
        ("/sse/ticker", "1.5"),
        ("/sse/ticker", "99999999999"),
    ],
)
async def test_bad_last_event_ids_get_a_400(
    client: httpx.AsyncClient, path: str, last_id: str
) -> None:
    response = await client.get(path, headers={"Last-Event-ID": last_id})
    assert response.status_code == 400, response.text
    assert "Last-Event-ID" in response.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {"interval_s": 0},
        {"interval_s": -1},
        {"interval_s": 1e9},
        {"interval_s": "1"},
        {},
        {"interval_s": 1, "x": 1},
    ],
)
async def test_bad_tick_intervals_get_a_422(client: httpx.AsyncClient, body: Any) -> None:
    response = await client.put("/sse/tick-interval", json=body)
    assert response.status_code == 422, response.text


async def test_non_finite_tick_interval_gets_a_422(client: httpx.AsyncClient) -> None:
    response = await client.put(
        "/sse/tick-interval",
        content=b'{"interval_s": NaN}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422, response.text


# -- the pane (Pilot) -----------------------------------------------------------------------


async def open_pane(app: ExplorerApp, pilot: Pilot[Any]) -> SsePane:
    await eventually(lambda: app.context is not None and bool(app.query(SsePane)), within=10)
    await pilot.press(str([p.SLUG for p in PANES].index("sse") + 1))
    pane = app.query_one(SsePane)
    assert app.context is not None
    await app.context.http.put("/sse/tick-interval", json={"interval_s": 0.05})
    return pane


def figures_text(app: ExplorerApp) -> str:
    """The figures as the pane displays them."""
    return app.query_one(SsePane).figures_shown


async def test_pane_drop_and_resume_has_no_gap(tmp_path: Path) -> None:
    async with live_pane(tmp_path, (120, 40), open_pane) as (_, pilot, pane):
        await pilot.click("#pane-sse #follow")
        await eventually(lambda: len(pane.ids_seen) >= 3, within=10)
        await pilot.click("#pane-sse #drop")
        await eventually(lambda: not pane.following, within=5)
        dropped_at = len(pane.ids_seen)
        await asyncio.sleep(0.3)
        await pilot.click("#pane-sse #resume")
        await eventually(lambda: len(pane.ids_seen) >= dropped_at + 8, within=10)
        await pilot.click("#pane-sse #drop")
        seqs = [int(i.rsplit("-", 1)[1]) for i in pane.ids_seen]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "no gap, no duplicate"
        assert pane.resumes == 1
        assert not pane.gaps


async def test_pane_shows_the_leaked_producer(tmp_path: Path) -> None:
    async with live_pane(tmp_path, (120, 40), open_pane) as (app, pilot, pane):
        await pilot.click("#pane-sse #leave")
        await asyncio.sleep(1.0)
        assert pane.server.get("leaked_producers") == 0
        await pilot.press("b")
        await pilot.click("#pane-sse #leave")
        await eventually(lambda: pane.server.get("leaked_producers") == 1, within=10)
        await eventually(lambda: "leaked 1" in figures_text(app), within=5)
        assert "never" in str(app.query_one("#pane-sse #lesson", Static).render())
        await pilot.click("#pane-sse #end-leaks")
        await eventually(lambda: pane.server.get("leaked_producers") == 0, within=10)


PANE_SIZES = [(100, 30), (140, 45), (200, 60)]
RESULTS = ("#figures", "#events")


@pytest.mark.parametrize("size", PANE_SIZES)
async def test_pane_is_whole_before_and_after_a_run(tmp_path: Path, size: tuple[int, int]) -> None:
    async with live_pane(tmp_path, size, open_pane) as (app, pilot, pane):
        await whole_before_and_after_a_run(
            pilot, pane, RESULTS, lambda: len(pane.ids_seen) >= 2, within=10
        )
        figures = app.query_one("#pane-sse #figures", Static)
        assert figures.size.height == 4  # server, ticker, swarm, feed: one row each
        assert "following" in figures_text(app).splitlines()[3]


async def test_pane_keys_enter_escape_and_q(tmp_path: Path) -> None:
    async with live_pane(tmp_path, (100, 30), open_pane) as (app, pilot, pane):
        # the field's action: open that many subscribers
        await enter_in(pilot, app.query_one("#pane-sse #subscribers", Input), "5")
        await eventually(lambda: pane.swarm.open == 5, within=10)
        await pilot.press("escape")
        assert not isinstance(app.focused, Input)
        await pilot.press("r")  # r still reaches the pane: follow the feed
        await eventually(lambda: pane.following, within=10)
        await pilot.press("q")
        await pilot.pause(0.5)
    assert app.return_code == 0


def ticker_line(app: ExplorerApp) -> str:
    return figures_text(app).splitlines()[1]


async def test_pane_leave_after_3_right_and_pitfall(tmp_path: Path) -> None:
    """What the ticker line shows 1 s after leaving: nothing ticks on, then the leak."""
    async with live_pane(tmp_path, (100, 30), open_pane) as (app, pilot, pane):
        await pilot.press("r")  # follow the feed meanwhile: its log must keep up throughout
        await pilot.click("#pane-sse #leave")
        await eventually(lambda: pane.leave is not None and pane.leave.stage == "done", 15)
        assert pane.leave is not None
        assert (pane.leave.producers, pane.leave.ticks_for_nobody) == (0, 0)
        await eventually(lambda: "producers 0, ticks for nobody 0" in ticker_line(app), 5)

        await pilot.press("b")
        await pilot.click("#pane-sse #leave")
        await eventually(lambda: pane.leave is not None and pane.leave.stage == "done", 15)
        assert pane.leave is not None
        assert pane.leave.producers == 1
        assert pane.leave.ticks_for_nobody is not None
        assert pane.leave.ticks_for_nobody > 0  # ~10 in the second watched (0.1 s ticks)
        line = ticker_line(app)
        await eventually(lambda: "producers 1, ticks for nobody" in ticker_line(app), 5)
        assert "(End leaks)" in ticker_line(app), line
        lesson = str(app.query_one("#pane-sse #lesson", Static).render())
        assert "nobody" in lesson
        log = app.query_one("#pane-sse #events", Log)
        assert log.max_scroll_y > 0  # more events than rows by now
        await eventually(lambda: log.is_vertical_scroll_end, within=2)  # newest in view

        # the leak of before is not blamed on the right form: its own books say 0
        await pilot.press("b")
        await pilot.click("#pane-sse #leave")
        await eventually(lambda: pane.leave is not None and pane.leave.stage == "done", 15)
        assert pane.leave is not None
        assert (pane.leave.producers, pane.leave.ticks_for_nobody) == (0, 0)
        await eventually(lambda: "leaked 1" in figures_text(app), within=5)  # still there
        await pilot.click("#pane-sse #end-leaks")
        await eventually(lambda: pane.server.get("leaked_producers") == 0, within=10)


def test_feed_lines_never_print_none() -> None:
    stall = {"duration_ms": 17.2, "kind": "cpu", "location": "textual/reactive.py:290 in __get__"}
    line = describe("stall", json.dumps(stall | {"route": None}))
    assert line == "17 ms cpu at textual/reactive.py:290 in __get__"
    routed = describe("stall", json.dumps(stall | {"route": "GET /basics/cpu"}))
    assert routed.endswith("(GET /basics/cpu)")
    job = {"id": 3, "kind": "fail", "state": "running", "error": None}
    assert describe("job", json.dumps(job)) == "job 3 fail running"
    failed = job | {"state": "failed", "error": "ValueError: simulated failure in job 3"}
    assert describe("job", json.dumps(failed)).endswith(": ValueError: simulated failure in job 3")


async def test_pane_swarm_counts_subscribers_and_lag(tmp_path: Path) -> None:
    async with live_pane(tmp_path, (120, 40), open_pane) as (app, pilot, pane):
        app.query_one("#pane-sse #subscribers", Input).value = "20"
        await pilot.click("#pane-sse #swarm-open")
        await eventually(lambda: pane.server.get("subscribers") == 20, within=10)
        await eventually(lambda: pane.swarm.delivered >= 60, within=10)
        assert pane.swarm.open == 20
        assert "open 20" in figures_text(app)
        await pilot.click("#pane-sse #swarm-close")
        await eventually(lambda: pane.swarm.open == 0, within=5)
        await eventually(lambda: pane.server.get("subscribers") == 0, within=5)


async def test_pane_refuses_a_bad_subscriber_count(tmp_path: Path) -> None:
    async with live_pane(tmp_path, (120, 40), open_pane) as (app, pilot, pane):
        app.query_one("#pane-sse #subscribers", Input).value = "5000"
        await pilot.click("#pane-sse #swarm-open")
        await pilot.pause(0.2)
        assert pane.swarm.open == 0
        assert any("Invalid input" in (n.title or "") for n in app._notifications)


async def test_a_real_browser_eventsource_reads_the_feed(server: ServerHandle) -> None:
    """Headless Chromium opens /sse/browser; its own EventSource writes the ticks it got."""

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        if os.environ.get("FASTASYNC_REQUIRE_BROWSER"):
            pytest.fail("chromium is required (FASTASYNC_REQUIRE_BROWSER is set) but missing")
        pytest.skip("no chromium on this machine (.ci/run installs it): the browser check")
    hub_of(server).set_tick_interval(0.2)
    process = await asyncio.create_subprocess_exec(
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--virtual-time-budget=15000",
        "--dump-dom",
        f"{server.url}/sse/browser?events=3",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    dom, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    page = dom.decode()
    assert '<p id="state">done: 3 events</p>' in page, page[-2000:]
    ids = re.findall(r"<li>id=([0-9a-f]+-\d+) tick ", page)
    assert len(ids) == 3
    seqs = [int(event_id.rsplit("-", 1)[1]) for event_id in ids]
    assert seqs == sorted(set(seqs))  # in order, no duplicate


# -- snapshot (every live number frozen) ------------------------------------------------


FROZEN_SSE_STATS = {
    "streams": 21,
    "subscribers": 21,
    "last_id": "5eed00-212",
    "leaked_producers": 3,
    "unread_ticks": 184,
}


def frozen_ticks(*ns: int) -> list[tuple[str, str, str]]:
    return [("tick", f"5eed00-{n}", f'{{"n":{n - 100},"value":{100 + n % 7}.5}}') for n in ns]


#: a stall outside any request (its route is null): the line names no route
FROZEN_STALL = (
    "stall",
    "5eed00-204",
    '{"duration_ms": 17.2, "kind": "cpu", "location": "textual/reactive.py:290 in __get__",'
    ' "route": null}',
)


async def show_frozen(
    pilot: Pilot[Any], events: list[tuple[str, str, str]], server: dict[str, Any]
) -> SsePane:
    """The pane with these events in its log and these server figures, frozen."""
    app, pane = await open_frozen(pilot, SsePane)
    pane.workers.cancel_group(pane, "sse-stats")  # frozen figures from here on
    while app.focused is not pane.query_one("#follow"):  # the app moves focus in
        await pilot.pause(0.02)
    for event, event_id, data in events:
        pane.post_message(SsePane.FeedEvent(event, event_id, data))
    pane.server = server
    return pane


async def draw_after_a_resume(pilot: Pilot[Any]) -> None:
    """The feed dropped and resumed from its last id, the leave-after-3 pitfall shown."""
    events = [("open", "", ""), *frozen_ticks(201, 202, 203)]
    events += [("closed", "", ""), ("open", "5eed00-203", ""), *frozen_ticks(204, 205, 206)]
    events.append(("heartbeat", "", '{"at": 1795000000.0}'))
    pane = await show_frozen(pilot, events, FROZEN_SSE_STATS)
    pane.swarm.open, pane.swarm.delivered = 20, 4_000
    pane.swarm.lags_ms = [0.8] * 98 + [3.5, 4.1]
    pane.leave = Leave("done", 3, producers=1, ticks_for_nobody=10, pitfall=True)
    await pilot.pause(0.4)


def test_sse_pane_after_a_resume(frozen_snapshot: FrozenSnapshot) -> None:
    assert frozen_snapshot((120, 40), draw_after_a_resume)


async def draw_after_a_default_run(pilot: Pilot[Any]) -> None:
    """r on defaults: following the feed; then "Ticker, leave after 3" in the right form."""
    events = [("open", "", ""), *frozen_ticks(201, 202, 203), FROZEN_STALL]
    events += frozen_ticks(205)
    server = FROZEN_SSE_STATS | {"streams": 1, "subscribers": 1, "leaked_producers": 0}
    pane = await show_frozen(pilot, events, server)
    pane.last_action = "leave"
    pane.leave = Leave("done", 3, producers=0, ticks_for_nobody=0)
    await pilot.pause(0.4)


@pytest.mark.parametrize("size", SNAPSHOT_SIZES)
def test_sse_pane_after_a_default_run(frozen_snapshot: FrozenSnapshot, size: Size) -> None:
    assert frozen_snapshot(size, draw_after_a_default_run)
