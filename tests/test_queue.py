"""The durable queue: arq on a real Redis, real worker processes, a real server child.

Redis tests use a database of their own (``tests/redis_db.py``), emptied before and after
each; each test ends with no worker process left (checked from /proc).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from textual.pilot import Pilot
from textual.widgets import Input, RadioButton

from explorer.app import ExplorerApp
from explorer.patterns.queue import demos
from explorer.patterns.queue.client import QueueClient
from explorer.patterns.queue.outcome import server_kill_text, worker_kill_text
from explorer.patterns.queue.pane import QueuePane
from explorer.patterns.queue.table import lost_rows
from explorer.tools.report.runner import report_settings, run_report
from explorer.tools.report.scenarios import SCENARIOS
from explorer.widgets.live_text import LiveText
from fastasync_probe.monitor import LoopMonitor, Stall
from server.patterns.queue.backends import QueueBackends
from server.runner import ServerHandle
from server.settings import Settings
from server.state import state_of
from tests import redis_db
from tests.conftest import FrozenSnapshot, eventually, set_blocking
from tests.layout import problems_of
from tests.pilots import escape_leaves_the_field, open_frozen, open_live, quit_with_q, still_picture


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[ServerHandle]:
    handle = ServerHandle(settings)
    await handle.start()
    try:
        yield handle
    finally:
        await handle.stop()


@pytest.fixture
def queue_redis() -> Iterator[str]:
    """The queue tests' Redis database, empty before and after; no worker left after."""
    redis_db.require()
    redis_db.empty(redis_db.QUEUE_DB)
    yield redis_db.url_of(redis_db.QUEUE_DB)
    assert redis_db.worker_processes() == [], "a worker process outlived its test"
    assert redis_db.connections(redis_db.QUEUE_DB) == [], "a connection outlived its test"
    redis_db.empty(redis_db.QUEUE_DB)


@pytest.fixture
async def queue_server(queue_redis: str, tmp_path: Path) -> AsyncIterator[ServerHandle]:
    handle = ServerHandle(Settings(port=0, data_dir=tmp_path / "data", redis_url=queue_redis))
    await handle.start()
    try:
        yield handle
    finally:
        await handle.stop()


@pytest.fixture
async def queue(queue_server: ServerHandle) -> AsyncIterator[QueueClient]:
    async with httpx.AsyncClient(base_url=queue_server.url, timeout=30.0) as http:
        yield QueueClient(http)


async def test_status_says_redis_answers_and_lists_no_workers(queue: QueueClient) -> None:
    status = await queue.status()
    assert status["redis_up"] is True
    assert status["reason"] is None
    assert status["workers"] == []


async def test_without_redis_one_sentence_and_the_in_process_backend_still_works(
    tmp_path: Path,
) -> None:
    settings = Settings(port=0, data_dir=tmp_path / "data", redis_url="redis://127.0.0.1:1/0")
    async with serving(settings) as server, httpx.AsyncClient(base_url=server.url) as http:
        status = (await http.get("/queue")).json()
        assert status["redis_up"] is False
        assert status["reason"].startswith("Redis does not answer at redis://127.0.0.1:1/0")
        assert status["reason"].endswith(".")
        assert "\n" not in status["reason"]
        for method, path, body in (
            ("POST", "/queue/jobs", {"backend": "redis"}),
            ("PUT", "/queue/workers", {"workers": 1}),
            ("GET", "/queue/jobs", None),
        ):
            refused = await http.request(method, path, json=body)
            assert refused.status_code == 503, (path, refused.text)
            assert "Redis does not answer" in refused.json()["detail"]
        accepted = await http.post("/queue/jobs", json={"backend": "inprocess", "seconds": 0})
        assert accepted.status_code == 202
        ids = accepted.json()["ids"]

        async def done() -> bool:
            found = (await http.get("/queue/jobs", params={"backend": "inprocess"})).json()
            return [j["state"] for j in found["jobs"] if j["id"] in ids] == ["done"]

        deadline = time.monotonic() + 5
        while not await done():
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)


async def test_a_url_that_is_not_redis_is_said_in_a_sentence(tmp_path: Path) -> None:
    settings = Settings(port=0, data_dir=tmp_path / "data", redis_url="http://127.0.0.1:6379")
    async with serving(settings) as server, httpx.AsyncClient(base_url=server.url) as http:
        status = (await http.get("/queue")).json()
        assert status["redis_up"] is False
        assert "is not a Redis URL" in status["reason"]


async def test_bad_input_gets_a_4xx(queue: QueueClient) -> None:
    http = queue.http
    for body in ({"kind": "nope"}, {"seconds": -1}, {"count": 0}, {"count": 201}):
        assert (await http.post("/queue/jobs", json=body)).status_code == 422, body
    assert (await http.put("/queue/workers", json={"workers": 9})).status_code == 422
    assert (await http.post("/queue/workers/1/kill")).status_code == 404
    assert (await http.get("/queue/jobs", params={"limit": 0})).status_code == 422


async def test_jobs_run_in_workers_and_failures_come_back_with_their_text(
    queue: QueueClient,
) -> None:
    await queue.scale(2)
    workers = await queue.workers_ready(2)
    assert len({w["pid"] for w in workers}) == 2
    sleeps = await queue.enqueue("sleep", 0.05, 3, "redis")
    fails = await queue.enqueue("fail", 0.0, 1, "redis")
    listing = await queue.until("redis", sleeps + fails, 4, within_s=20)
    by_id = {job["id"]: job for job in listing.jobs}
    assert [by_id[i]["state"] for i in sleeps] == ["done"] * 3
    assert by_id[sleeps[0]]["result"] == "sleep 0.05 s"
    assert by_id[sleeps[0]]["worker"] in {w["pid"] for w in workers}
    failed = by_id[fails[0]]
    assert failed["state"] == "failed"
    assert failed["error"] == f"DemoJobFailed: job {fails[0]} failed on purpose after 0 s"
    status = await queue.status()
    assert sum(w["done"] for w in status["workers"]) == 4
    await queue.scale(0)
    await eventually_stopped(queue, 2)


async def eventually_stopped(queue: QueueClient, count: int) -> None:
    deadline = time.monotonic() + 10
    while True:
        states = [w["state"] for w in (await queue.status())["workers"]]
        if states.count("stopped") >= count:
            return
        assert time.monotonic() < deadline, states
        await asyncio.sleep(0.05)


async def test_a_hung_job_fails_at_its_timeout(queue: QueueClient) -> None:
    await queue.scale(1)
    await queue.workers_ready(1)
    ids = await queue.enqueue("hang", 0.0, 1, "redis")
    listing = await queue.until("redis", ids, 1, within_s=20)
    assert listing.jobs[0]["state"] == "failed"
    assert listing.jobs[0]["error"].startswith("TimeoutError")


async def test_durability_a_worker_killed_mid_job_loses_nothing(queue: QueueClient) -> None:
    """50 jobs; SIGKILL of the worker after ~20; a new worker: all 50 finish, and the one
    the dead worker was running ran twice and is visible as retried."""
    found = await demos.kill_a_worker(queue, jobs=50, seconds=0.1, kill_after=20)
    assert found.done == 50
    assert found.failed == 0
    assert found.killed_job is not None
    assert found.ran_twice == [found.killed_job]
    status = await queue.status()
    killed = next(w for w in status["workers"] if w["pid"] == found.killed_pid)
    assert killed["state"] == "killed -9"
    listing = await queue.jobs("redis", [found.killed_job])
    assert listing.jobs[0]["runs"] == 2
    assert listing.ran_twice == 1


async def test_a_killed_server_loses_its_background_tasks_but_not_its_redis_jobs(
    queue: QueueClient, queue_redis: str
) -> None:
    found = await demos.kill_the_server(queue, queue_redis, jobs=50, seconds=0.1, kill_after=20)
    assert 20 <= found.inprocess_done < 50
    assert len(found.lost) == 50 - found.inprocess_done
    assert all(job_id.startswith("bg-") for job_id in found.lost)
    assert found.redis_done == 50
    assert found.redis_failed == 0


async def test_cpu_jobs_in_workers_leave_the_server_loop_flat_and_in_process_stall_it(
    queue: QueueClient, queue_server: ServerHandle
) -> None:
    monitor: LoopMonitor = state_of(queue_server.app).monitor
    await queue.scale(4)
    await queue.workers_ready(4)
    began = time.perf_counter()
    ids = await queue.enqueue("cpu", 1.0, 4, "redis")
    listing = await queue.until("redis", ids, 4, within_s=30)
    assert listing.count("done") == 4
    lag = monitor.lag(window_s=time.perf_counter() - began)
    assert lag.p99 < 5.0, f"the server's loop lagged {lag.p99:.1f} ms (p99) with 4 CPU workers"
    await queue.scale(0)
    # in-process, the CPU job sent to the server's process pool: the loop stays free too
    began = time.perf_counter()
    ids = await queue.enqueue("cpu", 0.3, 2, "inprocess")
    assert (await queue.until("inprocess", ids, 2, within_s=30)).count("done") == 2
    assert not [s for s in monitor.stalls if s.location and "demo_job.py" in s.location]
    # the pitfall: the same job in the background task itself stalls this loop, and is named
    last_seq = max((s.seq for s in monitor.stalls), default=0)
    await set_blocking(queue.http, True)
    ids = await queue.enqueue("cpu", 0.2, 1, "inprocess")
    assert ids[0].startswith("bg-")
    await queue.until("inprocess", ids, 1, within_s=10)

    # the job's stall, by its line: on a busy machine other short stalls may come around it
    def by_the_job() -> list[Stall]:
        return [s for s in monitor.stalls_after(last_seq) if "demo_job.py" in (s.location or "")]

    await eventually(lambda: bool(by_the_job()), within=5)
    stall = by_the_job()[0]
    assert stall.duration_ms >= 150
    assert stall.location is not None
    assert "burn_cpu" in stall.location
    assert stall.route == "POST /queue/jobs"


async def test_more_workers_finish_the_same_jobs_sooner(queue: QueueClient) -> None:
    rows = await demos.scale(queue, jobs=8, seconds=0.25, worker_counts=(1, 2))
    one, two = rows
    assert one.wall_s >= one.ideal_s
    assert two.wall_s >= two.ideal_s
    assert two.wall_s < one.wall_s * 0.8


async def test_clear_deletes_the_demo_keys_and_nothing_else(
    queue: QueueClient, queue_redis: str
) -> None:
    with redis_db.client(redis_db.QUEUE_DB) as other:
        other.set("someone:else", "kept")
    await queue.enqueue("sleep", 0.0, 3, "redis")
    assert any(k.startswith("arq:job:fq-") for k in redis_db.keys(redis_db.QUEUE_DB))
    await queue.clear()
    assert redis_db.keys(redis_db.QUEUE_DB) == ["someone:else"]


async def test_stopping_the_server_stops_its_workers_and_closes_its_connections(
    queue_redis: str, tmp_path: Path
) -> None:
    settings = Settings(port=0, data_dir=tmp_path / "data", redis_url=queue_redis)
    async with serving(settings) as server, httpx.AsyncClient(base_url=server.url) as http:
        queue = QueueClient(http)
        await queue.scale(3)
        await queue.workers_ready(3)
        assert len(redis_db.worker_processes()) == 3
        backends = state_of(server.app).need(QueueBackends)
    assert redis_db.worker_processes() == []
    assert all(not w.alive for w in backends.fleet.workers)
    assert redis_db.connections(redis_db.QUEUE_DB) == []
    assert not [k for k in redis_db.keys(redis_db.QUEUE_DB) if "worker:" in k]


async def test_a_worker_that_cannot_start_says_why(
    queue: QueueClient, queue_server: ServerHandle
) -> None:
    backends = state_of(queue_server.app).need(QueueBackends)
    backends.fleet.redis_url = "redis://127.0.0.1:1/0"  # the worker's Redis is down
    await queue.http.put("/queue/workers", json={"workers": 1})
    deadline = time.monotonic() + 30
    while True:
        states = [w["state"] for w in (await queue.status())["workers"]]
        if states and states[0].startswith("exited"):
            break
        assert time.monotonic() < deadline, states
        await asyncio.sleep(0.1)
    assert "Error" in states[0] or "refused" in states[0].lower(), states[0]


async def test_the_report_scenario_shows_cpu_jobs_off_and_on_the_loop(
    queue_redis: str, tmp_path: Path
) -> None:
    scenarios = [s for s in SCENARIOS if s.pattern == "queue"]
    settings = report_settings(Settings(redis_url=queue_redis), tmp_path / "data")
    report = await run_report(scenarios, settings)
    assert report.errors == 0, [(r.right.error, r.pitfall.error) for r in report.results]
    (result,) = report.results
    right = result.right.stalls
    assert right is None or "demo_job.py" not in (right.location or "")
    pitfall = result.pitfall.stalls
    assert pitfall is not None
    assert (pitfall.location or "").startswith("server/patterns/queue/demo_job.py:")
    assert pitfall.total_ms >= 800  # 4 jobs of 0.25 s, one after another on the loop
    assert "worker processes" in result.right.note
    assert "the server's own loop" in result.pitfall.note


# -- the pane ---------------------------------------------------------------------------------

RESULTS = ("#queue-outcome", "#queue-counts", "#worker-table", "#job-table")


def queue_app(tmp_path: Path, redis_url: str) -> ExplorerApp:
    return ExplorerApp(Settings(port=0, data_dir=tmp_path / "data", redis_url=redis_url))


async def open_pane(app: ExplorerApp, pilot: Pilot[Any]) -> QueuePane:
    pane = await open_live(app, pilot, QueuePane)
    await eventually(lambda: bool(pane.status), within=10)
    return pane


async def finished(pane: QueuePane, within: float) -> str:
    await eventually(lambda: not pane.running, within=within)
    return pane.outcome_text


async def test_pane_defaults_show_the_lesson_both_ways(tmp_path: Path, queue_redis: str) -> None:
    app = queue_app(tmp_path, queue_redis)
    async with app.run_test(size=(100, 30)) as pilot:
        pane = await open_pane(app, pilot)
        assert pane.redis_up
        assert problems_of(pane, results=RESULTS) == []
        await pilot.press("r")  # 4 CPU jobs of 0.25 s in-process, in the process pool
        said = await finished(pane, within=60)
        assert "4 done" in said
        assert "process pool" in said
        assert "no stall of this server's loop by the jobs" in said
        await pilot.press("b")
        assert "CPU on the loop" in pane.query_one("#queue-redis", LiveText).shown
        await pilot.press("r")  # the same jobs on this server's loop
        said = await finished(pane, within=60)
        assert "on this server's loop" in said
        assert "stall(s) of this server's loop" in said
        assert "demo_job.py" in said
        assert "burn_cpu" in said
        await pilot.click("#backend-redis")
        assert pane.backend() == "redis"
        await pilot.press("r")  # on the Redis queue: 2 worker processes
        said = await finished(pane, within=60)
        assert "4 done" in said
        assert "2 worker process" in said
        assert "no stall of this server's loop by the jobs" in said
        assert problems_of(pane, results=RESULTS) == []
        await pilot.press("c")  # the code that ran: the in-process body, read from disk
        assert app.showing_code
        await pilot.press("escape")
        assert not app.showing_code
        await escape_leaves_the_field(pilot, pane.query_one("#queue-seconds", Input))
        await pilot.press("b")
        await quit_with_q(pilot)


async def test_pane_kill_a_worker_demo_tells_the_job_that_ran_twice(
    tmp_path: Path, queue_redis: str
) -> None:
    app = queue_app(tmp_path, queue_redis)
    async with app.run_test(size=(140, 45)) as pilot:
        pane = await open_pane(app, pilot)
        await pilot.click("#do-kill_worker")
        said = await finished(pane, within=90)
        assert said.startswith("50/50 done after worker"), said
        assert "1 ran twice" in said
        await eventually(lambda: "killed -9" in str(pane.status.get("workers")), within=5)
        assert problems_of(pane, results=RESULTS) == []


async def test_pane_without_redis_says_so_and_keeps_jobs_in_process(tmp_path: Path) -> None:
    app = queue_app(tmp_path, "redis://127.0.0.1:1/0")
    async with app.run_test(size=(100, 30)) as pilot:
        pane = await open_pane(app, pilot)
        line = pane.query_one("#queue-redis", LiveText).shown
        assert line.startswith("Redis does not answer at redis://127.0.0.1:1/0")
        assert line.endswith("Jobs stay in-process.")
        pane.query_one("#queue-seconds", Input).value = "0.05"
        await pilot.click("#backend-redis")  # refused: Redis is down
        assert pane.backend() == "inprocess"
        await pilot.press("r")
        said = await finished(pane, within=30)
        assert "4 done" in said
        assert "process pool" in said
        await pilot.click("#do-scale")
        await pilot.pause()
        assert any("needs the Redis queue" in n.message for n in app._notifications)
        assert not pane.running
        assert problems_of(pane, results=RESULTS) == []


async def test_pane_refuses_bad_fields(tmp_path: Path) -> None:
    app = queue_app(tmp_path, "redis://127.0.0.1:1/0")
    async with app.run_test(size=(100, 30)) as pilot:
        pane = await open_pane(app, pilot)
        pane.query_one("#queue-workers", Input).value = "9"
        await pilot.press("r")
        await pilot.pause()
        assert not pane.running
        assert any("Invalid input" in (n.title or "") for n in app._notifications)


async def test_pane_is_whole_at_every_size(tmp_path: Path) -> None:
    for size in ((100, 30), (140, 45), (200, 60)):
        app = queue_app(tmp_path, "redis://127.0.0.1:1/0")
        async with app.run_test(size=size) as pilot:
            pane = await open_pane(app, pilot)
            for blocking in (False, True):
                app.blocking_switch.set(blocking)
                await pilot.pause(0.05)
                assert problems_of(pane, results=RESULTS) == [], (size, blocking)


# -- snapshots (live numbers frozen) -----------------------------------------------------------

FROZEN_STATUS: dict[str, Any] = {
    "redis_url": "redis://127.0.0.1:6379/0",
    "redis_up": True,
    "reason": None,
    "default_backend": "redis",
    "workers": [
        {"pid": 4101, "state": "idle", "current": None, "done": 27},
        {"pid": 4102, "state": "killed -9", "current": "fq-5c1d2e3f4a5b", "done": 12},
        {"pid": 4117, "state": "busy", "current": "fq-9a8b7c6d5e4f", "done": 11},
    ],
}


def frozen_job(n: int, state: str, runs: int = 1) -> dict[str, Any]:
    return {
        "id": f"fq-{n:06x}a1b2c3",
        "backend": "redis",
        "kind": "sleep",
        "seconds": 0.1,
        "state": state,
        "runs": runs,
        "worker": 4101 if n % 2 else 4117,
        "result": "sleep 0.1 s" if state == "done" else None,
        "error": None,
    }


FROZEN_JOBS = [frozen_job(n, "done", 2 if n == 7 else 1) for n in range(1, 12)] + [
    frozen_job(12, "running"),
    frozen_job(13, "queued"),
]


def frozen_run(
    found: demos.ServerKill | demos.WorkerKill,
) -> Callable[[Pilot[Any]], Awaitable[None]]:
    async def run_before(pilot: Pilot[Any]) -> None:
        _, pane = await open_frozen(pilot, QueuePane)
        await pilot.pause(0.1)
        for group in ("queue-status", "queue-jobs"):
            pane.workers.cancel_group(pane, group)
        await pilot.pause(0.1)
        pane._status_arrived(FROZEN_STATUS)
        pane.query_one("#backend-redis", RadioButton).value = True
        await pilot.pause(0.1)
        if isinstance(found, demos.ServerKill):
            pane.last_action = "kill_server"
            pane.lost_jobs = lost_rows(found.lost, found.child_pid, 0.1)
            pane._say(server_kill_text(found))
        else:
            pane.last_action = "kill_worker"
            pane._say(worker_kill_text(found))
        pane._jobs_arrived(FROZEN_JOBS)
        await still_picture(pilot)

    return run_before


SERVER_KILLED = demos.ServerKill(
    jobs=50,
    child_pid=4200,
    inprocess_done=21,
    lost=[f"bg-{n:06x}d4e5f6" for n in range(29)],
    redis_done=50,
    redis_failed=0,
)
WORKER_KILLED = demos.WorkerKill(
    jobs=50,
    done=50,
    failed=0,
    killed_pid=4102,
    killed_job="fq-000007a1b2c3",
    ran_twice=["fq-000007a1b2c3"],
    wall_s=9.6,
)


def test_queue_pane_server_killed_at_100x30(frozen_snapshot: FrozenSnapshot) -> None:
    assert frozen_snapshot((100, 30), frozen_run(SERVER_KILLED))


def test_queue_pane_worker_killed_at_140x45(frozen_snapshot: FrozenSnapshot) -> None:
    assert frozen_snapshot((140, 45), frozen_run(WORKER_KILLED))
