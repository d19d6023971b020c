"""Lifespan & context managers over real HTTP: a child app's whole life under uvicorn in
three forms (what each leaves open when startup fails), and a real pool of SQLite
connections drained by a bare acquire, kept full by ``async with``; then the pane."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Select

from explorer.app import ExplorerApp
from explorer.patterns.lifespan.client import Drain, PoolStep
from explorer.patterns.lifespan.pane import LifespanPane
from explorer.registry import PANES, key_of
from server.patterns.lifespan.lab import LifespanLab
from server.patterns.lifespan.pool import POOL_SIZE
from server.runner import ServerHandle
from server.state import state_of
from tests.conftest import FrozenSnapshot, eventually, set_blocking
from tests.layout import problems_of
from tests.pilots import live_pane, open_frozen, open_live, still_picture

Reply = dict[str, Any]


async def life(client: httpx.AsyncClient, **params: str) -> Reply:
    response = await client.post("/lifespan/app/run", params=params)
    assert response.status_code == 200, response.text
    body: Reply = response.json()
    return body


async def gauge(client: httpx.AsyncClient) -> Reply:
    response = await client.get("/lifespan/pool")
    assert response.status_code == 200, response.text
    body: Reply = response.json()
    return body


def lab_of(server: ServerHandle) -> LifespanLab:
    lab: LifespanLab = state_of(server.app).need(LifespanLab)
    return lab


# -- the child app's life ------------------------------------------------------------------


async def test_every_form_closes_everything_when_startup_works(client: httpx.AsyncClient) -> None:
    for form in ("lifespan", "naive", "on_event"):
        body = await life(client, form=form, fail_at="none")
        assert body["started"], body
        assert body["served"], body
        assert len(body["opened"]) == 2, body
        assert body["still_open"] == [], body
        texts = [event["text"] for event in body["events"]]
        # opened, opened, served, then closed in reverse order
        assert any("served" in text for text in texts), texts
        assert sum("closed" in text for text in texts) == 2, texts
        assert body["leftovers"] == 0


async def test_the_corrected_lifespan_closes_what_it_opened_when_startup_fails(
    client: httpx.AsyncClient,
) -> None:
    body = await life(client, form="lifespan", fail_at="second")
    assert not body["started"]
    assert not body["served"]
    assert len(body["opened"]) == 1
    assert body["still_open"] == []
    assert body["warnings"] == []
    assert body["globals_used"] == []
    assert body["leftovers"] == 0


@pytest.mark.parametrize("form", ["naive", "on_event"])
async def test_the_pitfalls_leave_the_first_resource_open_when_startup_fails(
    server: ServerHandle, client: httpx.AsyncClient, form: str
) -> None:
    body = await life(client, form=form, fail_at="second")
    assert not body["served"]
    assert len(body["opened"]) == 1
    assert body["still_open"] == body["opened"]
    assert body["leftovers"] == 1
    assert len(lab_of(server).leftovers) == 1  # really held open, on the server
    if form == "on_event":
        assert any("DeprecationWarning" in w or "deprecated" in w for w in body["warnings"])
        assert body["globals_used"]
    cleaned = await client.post("/lifespan/app/cleanup")
    assert cleaned.status_code == 200
    assert cleaned.json()["leftovers"] == 0
    assert len(cleaned.json()["closed"]) == 1
    assert lab_of(server).leftovers == []


async def test_blocking_mode_picks_on_event(client: httpx.AsyncClient) -> None:
    assert (await life(client, fail_at="none"))["form"] == "lifespan"
    await set_blocking(client, True)
    try:
        assert (await life(client, fail_at="none"))["form"] == "on_event"
    finally:
        await set_blocking(client, False)


# -- the pool ------------------------------------------------------------------------------


async def test_async_with_keeps_the_pool_full_however_many_requests_fail(
    client: httpx.AsyncClient,
) -> None:
    for _ in range(POOL_SIZE + 2):
        response = await client.post(
            "/lifespan/pool/request", params={"form": "acm", "fail": "true", "timeout_s": 0.2}
        )
        assert response.status_code == 409, response.text
        assert "rolled back and released" in response.json()["detail"]
        reading = await gauge(client)
        assert (reading["idle"], reading["leaked"]) == (POOL_SIZE, 0)
    ok = await client.post("/lifespan/pool/request", params={"form": "acm", "fail": "false"})
    assert ok.status_code == 200
    assert ok.json()["committed"]


async def test_a_bare_acquire_leaks_one_connection_per_failing_request_until_503(
    client: httpx.AsyncClient,
) -> None:
    params = {"form": "leak", "fail": "true", "timeout_s": "0.2"}
    for n in range(1, POOL_SIZE + 1):
        response = await client.post("/lifespan/pool/request", params=params)
        assert response.status_code == 409, response.text
        assert "never released" in response.json()["detail"]
        reading = await gauge(client)
        assert (reading["idle"], reading["leaked"]) == (POOL_SIZE - n, n)
    empty = await client.post("/lifespan/pool/request", params=params)
    assert empty.status_code == 503
    assert empty.json()["detail"]  # a sentence, not a bare status
    # the right form cannot get a connection either now
    also = await client.post("/lifespan/pool/request", params={"form": "acm", "timeout_s": 0.1})
    assert also.status_code == 503
    reset = await client.post("/lifespan/pool/reset")
    assert reset.status_code == 200
    assert reset.json()["returned"] == POOL_SIZE
    assert reset.json()["pool"]["idle"] == POOL_SIZE


async def test_blocking_mode_picks_the_bare_acquire(client: httpx.AsyncClient) -> None:
    await set_blocking(client, True)
    try:
        response = await client.post("/lifespan/pool/request", params={"timeout_s": 0.2})
        assert response.status_code == 409
        assert (await gauge(client))["leaked"] == 1
    finally:
        await set_blocking(client, False)
        await client.post("/lifespan/pool/reset")


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/lifespan/app/run", {"form": "nope"}),
        ("/lifespan/app/run", {"fail_at": "third"}),
        ("/lifespan/pool/request", {"form": "nope"}),
        ("/lifespan/pool/request", {"timeout_s": "-1"}),
        ("/lifespan/pool/request", {"timeout_s": "0.01"}),
        ("/lifespan/pool/request", {"timeout_s": "1e9"}),
        ("/lifespan/pool/request", {"timeout_s": "nan"}),
        ("/lifespan/pool/request", {"fail": "maybe"}),
    ],
)
async def test_bad_input_gets_a_clear_422(
    client: httpx.AsyncClient, path: str, params: dict[str, str]
) -> None:
    response = await client.post(path, params=params)
    assert response.status_code == 422, response.text
    assert response.json()["detail"]


async def test_unknown_demo_routes_are_404(client: httpx.AsyncClient) -> None:
    assert (await client.post("/lifespan/nope/run")).status_code == 404


# -- the pane (Pilot) ----------------------------------------------------------------------

RESULTS = ("#verdict", "#log")


async def open_pane(app: ExplorerApp, pilot: Pilot[Any]) -> LifespanPane:
    pane = await open_live(app, pilot, LifespanPane)
    await pilot.pause()
    assert pane.display
    return pane


def test_its_key_comes_from_the_registry() -> None:
    index = [p.SLUG for p in PANES].index("lifespan")
    assert key_of(index) is not None


async def test_pane_app_demo_shows_what_each_form_left_open(tmp_path: Path) -> None:
    async with live_pane(tmp_path, (100, 30), open_pane) as (_app, pilot, pane):
        assert pane.demo == "app"
        assert problems_of(pane, results=RESULTS) == []
        await pilot.press("r")  # defaults: the 2nd open fails, by mode (right)
        await eventually(lambda: pane.life is not None and not pane.running, within=20)
        assert pane.life is not None
        assert pane.life["form"] == "lifespan"
        assert pane.life["still_open"] == []
        assert "closed all it opened" in str(pane.query_one("#verdict").render())

        await pilot.press("b")
        pane.life = None
        await pilot.press("r")
        await eventually(lambda: pane.life is not None and not pane.running, within=20)
        assert pane.life is not None
        assert pane.life["form"] == "on_event"
        assert len(pane.life["still_open"]) == 1
        assert "LEFT OPEN" in str(pane.query_one("#verdict").render())
        assert pane.leftovers == 1
        assert problems_of(pane, results=RESULTS) == []
        await pilot.press("b")
        await pilot.click("#lifespan-clean")
        await eventually(lambda: pane.leftovers == 0, within=10)


async def test_pane_pool_demo_drains_in_the_pitfall_and_stays_full_in_the_right_form(
    tmp_path: Path,
) -> None:
    async with live_pane(tmp_path, (100, 30), open_pane) as (_app, pilot, pane):
        pane.query_one("#demo", Select).value = "pool"
        await pilot.pause()
        assert problems_of(pane, results=RESULTS) == []
        await eventually(lambda: pane.gauge is not None, within=5)  # the live gauge
        pane.query_one("#timeout_s", Input).value = "0.2"
        await pilot.press("r")  # by mode: async with
        await eventually(lambda: pane.drain is not None and not pane.running, within=20)
        assert pane.drain is not None
        assert [s.gauge["idle"] for s in pane.drain.steps] == [POOL_SIZE] * 6
        assert "stayed full" in str(pane.query_one("#verdict").render())

        await pilot.press("b")
        pane.drain = None
        await pilot.press("r")
        await eventually(lambda: pane.drain is not None and not pane.running, within=20)
        assert pane.drain is not None
        assert [s.gauge["idle"] for s in pane.drain.steps] == [4, 3, 2, 1, 0, 0]
        assert [s.status for s in pane.drain.steps] == [409] * 5 + [503]
        assert "leaked" in str(pane.query_one("#verdict").render())
        await eventually(lambda: (pane.gauge or {}).get("idle") == 0, within=5)
        assert problems_of(pane, results=RESULTS) == []
        await pilot.press("b")
        await pilot.click("#lifespan-clean")
        await eventually(lambda: (pane.gauge or {}).get("idle") == POOL_SIZE, within=5)


async def test_pane_refuses_bad_fields(tmp_path: Path) -> None:
    async with live_pane(tmp_path, (100, 30), open_pane) as (app, pilot, pane):
        pane.query_one("#demo", Select).value = "pool"
        await pilot.pause()
        pane.query_one("#timeout_s", Input).value = "99"
        await pilot.press("r")
        await pilot.pause()
        assert not pane.running
        assert pane.drain is None
        assert any("Invalid input" in (n.title or "") for n in app._notifications)


async def test_pane_is_whole_at_every_size(tmp_path: Path) -> None:
    for size in ((100, 30), (140, 45), (200, 60)):
        async with live_pane(tmp_path, size, open_pane) as (app, pilot, pane):
            for demo in ("app", "pool"):
                for blocking in (False, True):
                    app.blocking_switch.set(blocking)
                    pane.query_one("#demo", Select).value = demo
                    await pilot.pause(0.05)
                    assert problems_of(pane, results=RESULTS) == [], (size, demo, blocking)
            app.blocking_switch.set(False)


# -- snapshots (live numbers frozen) -------------------------------------------------------

FROZEN_LIFE: Reply = {
    "form": "on_event",
    "fail_at": "second",
    "started": False,
    "served": False,
    "events": [
        {"at_ms": 0.4, "text": "startup: opened sqlite (lifespan-child.sqlite3)"},
        {"at_ms": 1.1, "text": "startup failed: second resource could not open"},
        {"at_ms": 2.0, "text": "server exited: no shutdown handler ran"},
    ],
    "opened": ["sqlite"],
    "still_open": ["sqlite"],
    "warnings": ["DeprecationWarning: on_event is deprecated, use lifespan event handlers"],
    "globals_used": ["DB"],
    "leftovers": 1,
    "elapsed_ms": 12.3,
}


def frozen_gauge(idle: int) -> Reply:
    leaked = POOL_SIZE - idle
    return {
        "size": POOL_SIZE,
        "idle": idle,
        "in_use": 0,
        "leaked": leaked,
        "waiters": 0,
        "acquire_timeout_s": 1.0,
    }


def frozen_drain() -> Drain:
    run = Drain("leak", 6)
    for n in range(1, 7):
        idle = max(0, POOL_SIZE - n)
        status = 409 if n <= POOL_SIZE else 503
        detail = "the connection was never released" if status == 409 else "no free connection"
        run.steps.append(PoolStep(n, status, detail, frozen_gauge(idle)))
    return run


def frozen_run(demo: str) -> Any:
    async def run_before(pilot: Pilot[Any]) -> None:
        app, pane = await open_frozen(pilot, LifespanPane)
        app.blocking_switch.set(True)
        pane.query_one("#demo", Select).value = demo
        await pilot.pause(0.1)
        if demo == "app":
            pane.post_message(LifespanPane.LifeDone(FROZEN_LIFE))
        else:
            pane.post_message(LifespanPane.DrainDone(frozen_drain()))
        await pilot.pause(0.3)
        pane.post_message(LifespanPane.GaugeRead(frozen_gauge(0)))
        await still_picture(pilot)

    return run_before


def test_lifespan_pane_app_pitfall_at_140x45(frozen_snapshot: FrozenSnapshot) -> None:
    assert frozen_snapshot((140, 45), frozen_run("app"))


def test_lifespan_pane_pool_pitfall_at_140x45(frozen_snapshot: FrozenSnapshot) -> None:
    assert frozen_snapshot((140, 45), frozen_run("pool"))


def test_lifespan_pane_pool_pitfall_at_100x30(frozen_snapshot: FrozenSnapshot) -> None:
    assert frozen_snapshot((100, 30), frozen_run("pool"))


def test_lifespan_pane_app_pitfall_at_100x30(frozen_snapshot: FrozenSnapshot) -> None:
    assert frozen_snapshot((100, 30), frozen_run("app"))
