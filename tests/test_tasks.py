"""Background jobs over real HTTP: BackgroundTasks, the bounded queue, fire-and-forget,
debounce, the SSE feed, persistence across restarts, shutdown, and bad input."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static

from explorer.app import ExplorerApp
from explorer.patterns.tasks.outcome import Run
from explorer.patterns.tasks.pane import TasksPane
from explorer.registry import PANES
from server.patterns.tasks.jobs import (
    CRASHED,
    JOB_TIMEOUT_S,
    QUEUE_SIZE,
    SHUTDOWN,
    STATES,
    SUBSCRIBER_BUFFER,
    UNHEARD,
    WORKERS,
    JobStore,
)
from server.runner import ServerHandle
from server.settings import Settings
from server.state import state_of
from tests.conftest import SNAPSHOT_SIZES, FrozenSnapshot, Size, eventually, set_blocking
from tests.http_checks import clear_422_detail, send_raw
from tests.pilots import (
    enter_in,
    escape_leaves_the_field,
    live_pane,
    open_frozen,
    quit_with_q,
    settle,
    whole_before_and_after_a_run,
)

Job = dict[str, Any]


async def all_jobs(client: httpx.AsyncClient) -> dict[int, Job]:
    response = await client.get("/tasks/jobs", params={"limit": 500})
    assert response.status_code == 200, response.text
    return {job["id"]: job for job in response.json()["jobs"]}


async def until(
    client: httpx.AsyncClient, condition: Callable[[dict[int, Job]], bool], within: float = 10.0
) -> dict[int, Job]:
    """Poll ``GET /tasks/jobs`` until ``condition(jobs)`` holds; the jobs at that moment."""
    deadline = time.monotonic() + within
    while True:
        jobs = await all_jobs(client)
        if condition(jobs):
            return jobs
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within} s: {jobs}")
        await asyncio.sleep(0.03)


def finished(*ids: int) -> Callable[[dict[int, Job]], bool]:
    return lambda jobs: all(jobs[i]["state"] not in ("pending", "running") for i in ids)


def store_of(server: ServerHandle) -> JobStore:
    store: JobStore = state_of(server.app).need(JobStore)
    return store


def leftover_tasks() -> list[asyncio.Task[Any]]:
    """Tasks of the job store (its own, and the pitfall's) still on this loop."""
    found = []
    for task in asyncio.all_tasks():
        coro = task.get_coro()
        qualname = getattr(coro, "__qualname__", "")
        if qualname.startswith("JobStore.") or task.get_name().startswith(("job-", "jobs-")):
            found.append(task)
    return found


@contextlib.asynccontextmanager
async def serving(data_dir: Path, graceful_s: int = 1) -> AsyncIterator[ServerHandle]:
    """A server of our own, for tests that stop and restart it."""
    handle = ServerHandle(Settings(port=0, data_dir=data_dir, graceful_timeout_s=graceful_s))
    await handle.start()
    try:
        yield handle
    finally:
        await handle.stop()


# -- BackgroundTasks ------------------------------------------------------------------------


async def test_background_jobs_run_after_the_response_in_order(client: httpx.AsyncClient) -> None:
    await client.get("/tasks/jobs")  # warm the connection up
    specs = [
        {"kind": "sleep", "duration_s": 0.6},
        {"kind": "fail", "duration_s": 0.05},
        {"kind": "sleep", "duration_s": 0.05},
    ]
    started = time.perf_counter()
    response = await client.post("/tasks/background", json={"jobs": specs})
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.text
    assert elapsed < 0.6  # answered before the first job could have finished
    body = response.json()
    assert set(body) == {"request_id", "job_ids", "responded_at"}
    ids = body["job_ids"]
    assert len(ids) == 3
    assert ids == sorted(ids)

    jobs = await until(client, finished(*ids))
    first, failing, last = (jobs[i] for i in ids)
    assert [j["state"] for j in (first, failing, last)] == ["done", "failed", "done"]
    assert failing["error"] == f"ValueError: simulated failure in job {ids[1]}"
    assert all(j["origin"] == "background" for j in (first, failing, last))
    assert {j["request_id"] for j in (first, failing, last)} == {body["request_id"]}
    # One after another, in the order given.
    assert first["finished_at"] <= failing["started_at"] <= failing["finished_at"]
    assert failing["finished_at"] <= last["started_at"]
    # Measured from the moment the response was sent: the first job starts right after
    # it, the second only once the first one's 0.6 s are over.
    assert 0 <= first["response_sent_ms"] < 300
    assert failing["response_sent_ms"] >= 590
    assert first["duration_ms"] >= 590


# -- the bounded queue ----------------------------------------------------------------------


async def test_queued_jobs_run_and_finish(client: httpx.AsyncClient) -> None:
    ids = []
    for _ in range(4):
        response = await client.post("/tasks/queue", json={"kind": "sleep", "duration_s": 0.05})
        assert response.status_code == 202, response.text
        ids.append(response.json()["job_id"])
    jobs = await until(client, finished(*ids))
    assert all(jobs[i]["state"] == "done" and jobs[i]["origin"] == "queue" for i in ids)
    listing = (await client.get("/tasks/jobs")).json()
    assert listing["queue"] == {"size": 0, "capacity": QUEUE_SIZE, "workers": WORKERS}
    assert listing["counts"]["done"] == 4
    assert set(listing["counts"]) == {"pending", "running", "done", "failed", "cancelled", "lost"}


async def test_a_full_queue_answers_503_at_once(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    statuses = []
    for _ in range(QUEUE_SIZE + WORKERS + 5):
        started = time.perf_counter()
        response = await client.post("/tasks/queue", json={"kind": "sleep", "duration_s": 2.5})
        assert time.perf_counter() - started < 1.0  # never waits for a slot
        statuses.append(response.status_code)
        if response.status_code == 503:
            assert response.json()["detail"] == f"job queue full ({QUEUE_SIZE} waiting)"
    accepted = statuses.count(202)
    # The workers took one job each off the queue, then twenty more could wait.
    assert QUEUE_SIZE <= accepted <= QUEUE_SIZE + WORKERS
    assert statuses == [202] * accepted + [503] * (len(statuses) - accepted)
    assert (await client.get("/tasks/jobs")).json()["queue"]["size"] == QUEUE_SIZE

    # Shutdown: the grace period (2 s) is far too short for the queue, so the jobs still
    # running or waiting are recorded cancelled, the waiting ones included; none is left
    # unfinished, and no task is left behind.
    await server.stop()
    jobs = store_of(server).recent(limit=100)
    assert {job.state for job in jobs} <= {"done", "cancelled"}
    cancelled = [job for job in jobs if job.state == "cancelled"]
    assert len(cancelled) >= accepted // 2
    assert {job.error for job in cancelled} == {SHUTDOWN}
    assert not leftover_tasks()


async def test_a_hanging_job_is_cancelled_by_the_timeout(client: httpx.AsyncClient) -> None:
    started = time.monotonic()
    response = await client.post("/tasks/queue", json={"kind": "hang"})
    assert response.status_code == 202
    job_id = response.json()["job_id"]
    jobs = await until(client, finished(job_id), within=JOB_TIMEOUT_S + 3)
    assert time.monotonic() - started < JOB_TIMEOUT_S + 3
    job = jobs[job_id]
    assert job["state"] == "cancelled"
    assert job["error"] == f"TimeoutError: job exceeded {JOB_TIMEOUT_S} s"
    assert job["duration_ms"] >= JOB_TIMEOUT_S * 1000 * 0.99


# -- fire-and-forget ------------------------------------------------------------------------


async def test_fire_and_forget_records_every_outcome(client: httpx.AsyncClient) -> None:
    ids = {}
    for kind in ("sleep", "fail"):
        response = await client.post(
            "/tasks/fire-and-forget", json={"kind": kind, "duration_s": 0.05}
        )
        assert response.status_code == 202, response.text
        assert response.json()["supervised"] is True
        ids[kind] = response.json()["job_id"]
    jobs = await until(client, finished(*ids.values()))
    assert jobs[ids["sleep"]]["state"] == "done"
    failed = jobs[ids["fail"]]
    assert failed["state"] == "failed"
    assert failed["error"] == f"ValueError: simulated failure in job {ids['fail']}"


async def test_fire_and_forget_pitfall_loses_the_outcome(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    await set_blocking(client, True)
    ids = {}
    for kind in ("sleep", "fail", "hang"):
        response = await client.post(
            "/tasks/fire-and-forget", json={"kind": kind, "duration_s": 0.05}
        )
        assert response.status_code == 202, response.text
        assert response.json()["supervised"] is False
        ids[kind] = response.json()["job_id"]
    await set_blocking(client, False)
    await asyncio.sleep(0.5)  # ten times what the sleep and fail jobs take
    jobs = await all_jobs(client)
    # The store heard them start and never heard how they ended.
    assert [jobs[i]["state"] for i in ids.values()] == ["running"] * 3
    assert all(jobs[i]["error"] is None for i in ids.values())

    await server.stop()
    store = store_of(server)
    after = {kind: store.get(job_id) for kind, job_id in ids.items()}
    sleep, fail, hang = after["sleep"], after["fail"], after["hang"]
    assert sleep is not None
    assert fail is not None
    assert hang is not None
    assert (sleep.state, sleep.error) == ("lost", UNHEARD)
    assert (fail.state, fail.error) == ("lost", UNHEARD)
    assert (hang.state, hang.error) == ("cancelled", SHUTDOWN)
    assert not leftover_tasks()


# -- debounce -------------------------------------------------------------------------------


async def trigger(client: httpx.AsyncClient, key: str, times: int) -> list[dict[str, Any]]:
    answers = []
    for _ in range(times):
        response = await client.post("/tasks/debounce", json={"key": key, "delay_s": 0.2})
        assert response.status_code == 200, response.text
        answers.append(response.json())
        await asyncio.sleep(0.02)
    return answers


async def test_a_burst_of_triggers_runs_once(client: httpx.AsyncClient) -> None:
    answers = await trigger(client, "burst", 10)
    last_trigger = datetime.now(UTC)
    assert [a["triggers"] for a in answers] == list(range(1, 11))
    job_ids = {a["job_id"] for a in answers}
    assert len(job_ids) == 1
    (job_id,) = job_ids
    assert isinstance(job_id, int)
    jobs = await until(client, finished(job_id))
    assert jobs[job_id]["state"] == "done"
    mine = [j for j in jobs.values() if j["request_id"] == "debounce:burst"]
    assert len(mine) == 1
    # It started delay_s after the last trigger (not after the first).
    started = datetime.fromisoformat(jobs[job_id]["started_at"])
    assert (started - last_trigger).total_seconds() >= 0.15

    # The burst is over: the next trigger starts a new one.
    (again,) = await trigger(client, "burst", 1)
    assert again["triggers"] == 1
    assert again["job_id"] != job_id


async def test_without_debounce_every_trigger_runs(client: httpx.AsyncClient) -> None:
    await set_blocking(client, True)
    answers = await trigger(client, "burst", 10)
    await set_blocking(client, False)
    job_ids = {a["job_id"] for a in answers}
    assert len(job_ids) == 10
    jobs = await until(client, finished(*job_ids))
    assert {jobs[i]["state"] for i in job_ids} == {"done"}


# -- the live feed --------------------------------------------------------------------------


async def test_stream_sends_a_snapshot_then_each_change(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    events: list[tuple[str, Any]] = []
    job_id: int | None = None
    # Subscribers the app itself keeps (the SSE bus's job pump), not this stream's.
    app_subscribers = store_of(server).subscriber_count

    def done() -> bool:
        return any(
            kind == "job" and d["id"] == job_id and d["state"] == "done" for kind, d in events
        )

    async def read() -> None:
        async with aconnect_sse(client, "GET", "/tasks/stream") as source:
            assert source.response.headers["content-type"].startswith("text/event-stream")
            async for event in source.aiter_sse():
                events.append((event.event, event.json()))
                if done():
                    return

    reader = asyncio.create_task(read())
    try:
        deadline = time.monotonic() + 5
        while not events:
            assert time.monotonic() < deadline, "no snapshot"
            await asyncio.sleep(0.02)
        async with httpx.AsyncClient(base_url=str(client.base_url)) as other:
            response = await other.post("/tasks/queue", json={"kind": "sleep", "duration_s": 0.1})
        job_id = response.json()["job_id"]
        await asyncio.wait_for(reader, timeout=5)
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
    kind, snapshot = events[0]
    assert kind == "snapshot"
    assert set(snapshot) == {"jobs", "counts", "queue"}
    states = [d["state"] for kind, d in events[1:] if kind == "job" and d["id"] == job_id]
    assert states[-1] == "done"
    assert "running" in states
    assert states.index("running") < states.index("done")
    # The client is gone: so is its subscription.
    store = store_of(server)
    deadline = time.monotonic() + 5
    while store.subscriber_count > app_subscribers:
        assert time.monotonic() < deadline, "the stream's subscription outlived the client"
        await asyncio.sleep(0.02)


async def test_a_slow_subscriber_loses_its_oldest_updates(tmp_path: Path) -> None:
    store = await JobStore.open(tmp_path / "jobs.sqlite3")
    try:
        updates = store.subscribe()
        jobs = []
        for _ in range(100):  # three updates each: pending, running, done
            job = await store.create("sleep", 0, origin="queue")
            await store.run(job)
            jobs.append(job)
        assert updates.qsize() == SUBSCRIBER_BUFFER  # never more, and the store never waited
        dropped = 3 * len(jobs) - SUBSCRIBER_BUFFER
        oldest = updates.get_nowait()
        assert (oldest.id, oldest.state) == (jobs[dropped // 3].id, STATES[dropped % 3])
        newest = [updates.get_nowait() for _ in range(updates.qsize())][-1]
        assert (newest.id, newest.state) == (jobs[-1].id, "done")
        store.unsubscribe(updates)
    finally:
        await store.close(grace_s=0)
    assert store.closed


# -- persistence and shutdown ---------------------------------------------------------------


async def test_history_survives_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    async with serving(data_dir, graceful_s=1) as first:
        async with httpx.AsyncClient(base_url=first.url) as client:
            quick = (
                await client.post("/tasks/queue", json={"kind": "sleep", "duration_s": 0})
            ).json()
            slow = (
                await client.post("/tasks/queue", json={"kind": "sleep", "duration_s": 2.5})
            ).json()
            await until(
                client,
                lambda jobs: (
                    jobs[quick["job_id"]]["state"] == "done"
                    and jobs[slow["job_id"]]["state"] == "running"
                ),
            )
        started = time.monotonic()
        await first.stop()
        # The grace period (1 s) is over before the slow job is: cancelled, and quickly.
        assert time.monotonic() - started < 2.0
    assert not leftover_tasks()

    # A crash leaves a job "running" in the database; the next start must call it lost.
    with contextlib.closing(sqlite3.connect(data_dir / "jobs.sqlite3")) as db, db:
        db.execute(
            "INSERT INTO jobs (kind, origin, state, duration_s, created_at, started_at)"
            " VALUES ('sleep', 'queue', 'running', 1.0, '2026-01-01T00:00:00.000+00:00',"
            " '2026-01-01T00:00:00.001+00:00')"
        )
        crashed_id = db.execute("SELECT MAX(id) FROM jobs").fetchone()[0]

    async with serving(data_dir) as second, httpx.AsyncClient(base_url=second.url) as client:
        jobs = await all_jobs(client)
        assert jobs[quick["job_id"]]["state"] == "done"
        assert (jobs[slow["job_id"]]["state"], jobs[slow["job_id"]]["error"]) == (
            "cancelled",
            SHUTDOWN,
        )
        assert jobs[slow["job_id"]]["duration_ms"] >= 900
        assert (jobs[crashed_id]["state"], jobs[crashed_id]["error"]) == ("lost", CRASHED)
        fresh = (await client.post("/tasks/queue", json={"kind": "sleep", "duration_s": 0})).json()
        assert fresh["job_id"] > crashed_id


async def test_background_jobs_interrupted_by_shutdown_are_recorded(tmp_path: Path) -> None:
    async with serving(tmp_path / "data", graceful_s=1) as handle:
        async with httpx.AsyncClient(base_url=handle.url) as client:
            specs = [{"kind": "sleep", "duration_s": 2.5}, {"kind": "sleep", "duration_s": 0.1}]
            ids = (await client.post("/tasks/background", json={"jobs": specs})).json()["job_ids"]
            await until(client, lambda jobs: jobs[ids[0]]["state"] == "running")
        started = time.monotonic()
        await handle.stop()
        assert time.monotonic() - started < 2.0
        store = store_of(handle)
        running, waiting = store.get(ids[0]), store.get(ids[1])
        assert running is not None
        assert waiting is not None
        assert (running.state, running.error) == ("cancelled", SHUTDOWN)
        assert (waiting.state, waiting.error, waiting.started_at) == ("cancelled", SHUTDOWN, None)
    assert not leftover_tasks()


async def test_shutdown_leaves_no_task_and_no_unfinished_job(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    await client.post("/tasks/background", json={"jobs": [{"kind": "sleep", "duration_s": 0.05}]})
    await client.post("/tasks/queue", json={"kind": "hang"})
    await client.post("/tasks/fire-and-forget", json={"kind": "sleep", "duration_s": 0.05})
    pending = await client.post("/tasks/debounce", json={"key": "late", "delay_s": 5})
    assert pending.json()["job_id"] is not None
    store = store_of(server)
    assert list(store.tasks())  # workers, writer, jobs: all running now
    await server.stop()
    assert store.closed
    assert not leftover_tasks()
    assert not list(store.tasks())
    assert all(job.state not in ("pending", "running") for job in store.recent(limit=500))
    debounced = store.get(pending.json()["job_id"])
    assert debounced is not None
    assert (debounced.state, debounced.error) == ("cancelled", SHUTDOWN)


# -- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/tasks/queue", b'{"kind": "nap", "duration_s": 1}'),
        ("/tasks/queue", b'{"kind": "sleep", "duration_s": -1}'),
        ("/tasks/queue", b'{"kind": "sleep", "duration_s": 31}'),
        ("/tasks/queue", b'{"kind": "sleep", "duration_s": 1e999}'),
        ("/tasks/queue", b'{"kind": "sleep", "duration_s": NaN}'),
        ("/tasks/queue", b'{"kind": "sleep", "duration_s": "1"}'),
        ("/tasks/queue", b'{"kind": "sleep", "duration_s": 1, "priority": 9}'),
        ("/tasks/queue", b"{}"),
        ("/tasks/queue", b"[]"),
        ("/tasks/queue", b"not json"),
        ("/tasks/fire-and-forget", b'{"kind": "fail", "duration_s": true}'),
        ("/tasks/fire-and-forget", b'{"kind": ["sleep"]}'),
        ("/tasks/fire-and-forget", b'{"kind": NaN}'),
        ("/tasks/fire-and-forget", b'{"kind": "sleep", "duration_s": -Infinity}'),
        ("/tasks/background", b'{"jobs": []}'),
        ("/tasks/background", json.dumps({"jobs": [{"kind": "sleep"}] * 11}).encode()),
        ("/tasks/background", b'{"jobs": [{"kind": "sleep", "duration_s": -0.1}]}'),
        ("/tasks/background", b'{"jobs": [{"kind": "sleep"}], "extra": 1}'),
        ("/tasks/background", b'{"jobs": "sleep"}'),
        ("/tasks/debounce", b'{"key": "", "delay_s": 0.2}'),
        ("/tasks/debounce", b'{"key": "Upper", "delay_s": 0.2}'),
        ("/tasks/debounce", b'{"key": "../etc", "delay_s": 0.2}'),
        ("/tasks/debounce", json.dumps({"key": "k" * 41, "delay_s": 0.2}).encode()),
        ("/tasks/debounce", b'{"key": "k", "delay_s": 0.01}'),
        ("/tasks/debounce", b'{"key": "k", "delay_s": 6}'),
        ("/tasks/debounce", b'{"key": "k"}'),
    ],
)
async def test_bad_bodies_get_a_clear_422(
    client: httpx.AsyncClient, path: str, body: bytes
) -> None:
    detail = clear_422_detail(await send_raw(client, "POST", path, body))
    assert detail
    assert (await all_jobs(client)) == {}  # nothing was created


@pytest.mark.parametrize("params", [{"limit": "0"}, {"limit": "501"}, {"state": "sleeping"}])
async def test_bad_listing_queries_get_a_422(
    client: httpx.AsyncClient, params: dict[str, str]
) -> None:
    response = await client.get("/tasks/jobs", params=params)
    assert response.status_code == 422, response.text


# -- the pane (Pilot) -------------------------------------------------------------------


async def open_tasks(app: ExplorerApp, pilot: Pilot[Any]) -> TasksPane:
    await eventually(lambda: app.context is not None and bool(app.query(TasksPane)))
    await pilot.press(str([p.SLUG for p in PANES].index("tasks") + 1))
    pane = app.query_one(TasksPane)
    await eventually(lambda: pane.connected, within=10)
    return pane


def states(pane: TasksPane) -> list[str]:
    return [job["state"] for _, job in sorted(pane.jobs.items())]


async def test_pane_background_jobs_fail_visibly_and_the_next_still_runs(tmp_path: Path) -> None:
    async with live_pane(tmp_path, (120, 40), open_tasks) as (app, pilot, pane):
        app.query_one("#duration", Input).value = "0.1"
        await pilot.click("#pane-tasks #do-background")  # sleep, fail (the default kind), sleep
        await eventually(lambda: states(pane) == ["done", "failed", "done"], within=10)
        failed = next(job for job in pane.jobs.values() if job["state"] == "failed")
        assert "ValueError" in failed["error"]
        table = app.query_one("#jobs", DataTable)
        assert table.row_count == 3
        assert "failed" in str(table.get_row(str(failed["id"]))[3])


async def test_pane_shows_the_fire_and_forget_pitfall(tmp_path: Path) -> None:
    async with live_pane(tmp_path, (120, 40), open_tasks) as (app, pilot, pane):
        app.query_one("#duration", Input).value = "0.1"
        await pilot.click("#pane-tasks #do-fire_and_forget")
        await eventually(lambda: states(pane) == ["failed"], within=10)
        await pilot.press("b")
        await pilot.click("#pane-tasks #do-fire_and_forget")
        await eventually(lambda: len(pane.jobs) == 2, within=10)
        await asyncio.sleep(0.5)  # long past the job's 0.1 s
        assert states(pane) == ["failed", "running"]  # the outcome was lost
        assert "no reference" in str(app.query_one("#pane-tasks #lesson", Static).content)


PANE_SIZES = [(100, 30), (140, 45), (200, 60)]
RESULTS = ("#outcome", "#counts", "#jobs")


def cell_texts(pane: TasksPane, job_id: int) -> list[str]:
    """A job's row as the table shows it."""
    return [str(cell) for cell in pane.query_one("#jobs", DataTable).get_row(str(job_id))]


@pytest.mark.parametrize("size", PANE_SIZES)
async def test_pane_is_whole_before_and_after_a_run(tmp_path: Path, size: tuple[int, int]) -> None:
    async with live_pane(tmp_path, size, open_tasks) as (_, pilot, pane):
        await whole_before_and_after_a_run(
            pilot, pane, RESULTS, lambda: "failed" in pane.outcome_text, within=10
        )
        table = pane.query_one("#jobs", DataTable)
        assert table.size.height - 1 >= 5  # header, then at least five jobs in view
        assert not table.show_horizontal_scrollbar  # a long error is cut, not scrolled
        if size[0] >= 140:  # room for the whole error in the table too
            failed = next(iter(pane.jobs))
            assert any("simulated failure" in cell for cell in cell_texts(pane, failed))


async def test_pane_keys_enter_runs_escape_leaves_q_quits(tmp_path: Path) -> None:
    async with live_pane(tmp_path, (100, 30), open_tasks) as (app, pilot, pane):
        # Fire & forget, the highlighted button
        await enter_in(pilot, app.query_one("#pane-tasks #duration", Input))
        await eventually(lambda: len(pane.jobs) == 1, within=10)
        assert pane.run is not None
        assert pane.run.action == "fire_and_forget"
        await escape_leaves_the_field(pilot)
        await quit_with_q(pilot)
    assert app.return_code == 0


async def test_pane_fire_and_forget_lesson_on_defaults(tmp_path: Path) -> None:
    """r on defaults, then b and r: from the result line and the table as displayed."""
    async with live_pane(tmp_path, (100, 30), open_tasks) as (app, pilot, pane):
        await pilot.press("r")  # fire-and-forget a "fail" job of 0.5 s
        await eventually(lambda: "failed" in pane.outcome_text, within=10)
        assert pane.run is not None
        (right,) = pane.run.job_ids
        assert f"ValueError: simulated failure in job {right}" in pane.outcome_text
        cells = cell_texts(pane, right)
        assert cells[3] == "failed"
        assert cells[6].startswith("ValueError")

        await pilot.press("b")
        await pilot.press("r")
        await eventually(lambda: "still 'running'" in pane.outcome_text, within=10)
        (pitfall,) = pane.run.job_ids
        assert pitfall != right
        assert "nobody hears its ValueError" in pane.outcome_text
        cells = cell_texts(pane, pitfall)
        assert cells[3] == "running"  # long past its 0.5 s, and it will stay so
        assert cells[6] == ""  # the exception is nowhere
        lesson = str(app.query_one("#pane-tasks #lesson", Static).render())
        assert "no reference" in lesson
        await pilot.press("b")


async def test_pane_debounce_and_background_results(tmp_path: Path) -> None:
    async with live_pane(tmp_path, (100, 30), open_tasks) as (app, pilot, pane):
        app.query_one("#duration", Input).value = "0.1"
        await pilot.click("#pane-tasks #do-background")
        await eventually(lambda: "the next still ran" in pane.outcome_text, within=10)
        assert "after the response" in pane.outcome_text
        await pilot.click("#pane-tasks #do-debounce")
        await eventually(lambda: "10 triggers → 1 run (1 finished)" in pane.outcome_text, 10)
        await pilot.press("b")
        await pilot.press("r")  # r repeats the last button: debounce, now without it
        await eventually(lambda: "10 triggers → 10 runs" in pane.outcome_text, within=10)
        await pilot.press("b")


async def test_pane_refuses_a_bad_duration(tmp_path: Path) -> None:
    async with live_pane(tmp_path, (120, 40), open_tasks) as (app, pilot, pane):
        app.query_one("#duration", Input).value = "-1"
        await pilot.click("#pane-tasks #do-queue")
        await pilot.pause(0.3)
        assert not pane.jobs
        assert any("Invalid input" in (n.title or "") for n in app._notifications)


# -- snapshot (every live number frozen) ------------------------------------------------


def frozen_job(job_id: int, kind: str, state: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": job_id,
        "kind": kind,
        "origin": extra.get("origin", "background"),
        "state": state,
        "duration_s": 0.5,
        "created_at": None,
        "started_at": None,
        "finished_at": None,
        "duration_ms": extra.get("duration_ms"),
        "error": extra.get("error"),
        "request_id": "r1",
        "response_sent_ms": extra.get("after"),
    }


BACKGROUND_BATCH = (
    frozen_job(1, "sleep", "done", duration_ms=500.4, after=0.6),
    frozen_job(
        2,
        "fail",
        "failed",
        duration_ms=501.0,
        after=501.3,
        error="ValueError: simulated failure in job 2",
    ),
    frozen_job(3, "sleep", "running", after=1002.0),
)

FIRE_AND_FORGET_FAILED = frozen_job(
    4,
    "fail",
    "failed",
    origin="fire_and_forget",
    duration_ms=501.2,
    error="ValueError: simulated failure in job 4",
)


async def show_frozen(pilot: Pilot[Any], jobs: tuple[dict[str, Any], ...], run: Run) -> None:
    """The pane with these jobs in its table and ``run`` as the last action."""
    app, pane = await open_frozen(pilot, TasksPane)
    kinds = pane.query_one("#kind")
    # the app moves focus in
    await settle(pilot, lambda: pane.connected and app.focused is kinds, "connected, #kind focused")
    for job in jobs:
        pane.post_message(TasksPane.StreamEvent("job", job))
    pane.last_action = run.action
    pane.post_message(TasksPane.ActionDone(run, "", True))
    await pilot.pause(0.2)


async def draw_with_a_failed_job(pilot: Pilot[Any]) -> None:
    """A background batch of three jobs: one done, one failed, one still running."""
    await show_frozen(pilot, BACKGROUND_BATCH, Run("background", job_ids=(1, 2, 3)))


def test_tasks_pane_with_a_failed_job(frozen_snapshot: FrozenSnapshot) -> None:
    assert frozen_snapshot((120, 40), draw_with_a_failed_job)


async def draw_after_a_default_run(pilot: Pilot[Any]) -> None:
    """r on defaults: fire-and-forget of a failing job, its error on the result line."""
    jobs = (*BACKGROUND_BATCH[:2], FIRE_AND_FORGET_FAILED)
    await show_frozen(pilot, jobs, Run("fire_and_forget", job_ids=(4,)))


@pytest.mark.parametrize("size", SNAPSHOT_SIZES)
def test_tasks_pane_after_a_default_run(frozen_snapshot: FrozenSnapshot, size: Size) -> None:
    assert frozen_snapshot(size, draw_after_a_default_run)
