"""Shared fixtures: a real server on a free loopback port, a client for it, a snapshot."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import shutil
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import httpx
import pytest
from fastapi.dependencies import models as fastapi_models

from fastasync_probe.monitor import LoopMonitor
from server import heap
from server.runner import ServerHandle
from server.settings import Settings
from server.state import state_of
from tests import redis_db

if TYPE_CHECKING:
    from textual.pilot import Pilot

    from explorer.app import ExplorerApp

# The shared helpers assert too: rewritten like a test's asserts, a failure shows its values.
pytest.register_assert_rewrite("tests.pilots", "tests.http_checks")

#: asyncio reports these by logging (when a task or coroutine is garbage collected), not
#: with a warning, so ``filterwarnings = error`` alone would never see them.
LEAK_MESSAGES = ("Task was destroyed but it is pending", "was never awaited")


class _LeakWatcher(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if any(leak in message for leak in LEAK_MESSAGES):
            self.seen.append(message[:300])


@pytest.fixture(autouse=True, scope="session")
def no_destroyed_pending_tasks() -> Iterator[None]:
    """Fail the run if asyncio ever reports a task destroyed while pending."""
    watcher = _LeakWatcher()
    logger = logging.getLogger("asyncio")
    logger.addHandler(watcher)
    yield
    gc.collect()
    logger.removeHandler(watcher)
    assert not watcher.seen, watcher.seen


@pytest.fixture(autouse=True, scope="session")
def heap_frozen_once() -> Iterator[None]:
    """Freeze the heap once, after collection, instead of once per app (``server/heap.py``).

    The product freezes its heap at start-up and after each pane's first draw: right for
    one process with one app. A test process builds hundreds of apps: each freeze kept the
    garbage of the tests before it for good (the suite grew to 3.7 GB, and a task destroyed
    while pending would never be reported), and thawing after each test made every full
    collection walk the whole import heap again (minutes of collector time per run). So the
    apps do not freeze here; the import heap, which does live as long as the process, is
    frozen once.
    """
    heap.enabled = False
    gc.collect()
    gc.freeze()
    yield
    heap.enabled = True


@pytest.fixture(autouse=True)
def apps_let_go() -> Iterator[None]:
    """Let go of what a test's apps left in module-level caches; then collect its garbage
    and freeze what survives it, so the next test's full collections walk only its own
    objects (unfrozen, what the tests before had kept made one a 350 ms pause, inside a
    request that a test timed)."""
    yield
    # FastAPI classifies each endpoint once, in module-level caches of 4,096 callables:
    # through their closures they kept every app a test had built (and its state, its
    # loop and its explorer) alive. One app per process, as in the product, is no matter.
    for name in _FASTAPI_CALLABLE_CACHES:
        cached = getattr(fastapi_models, name, None)
        if cached is not None and hasattr(cached, "cache_clear"):
            cached.cache_clear()
    # A socket that a cancelled httpx request left mid-connect is closed by its finalizer
    # when collected, with a ResourceWarning (httpcore's, not this project's). Collected
    # here, at this test's teardown, pytest would call that an error of the test; before
    # this collection it surfaced in whichever later test the collector happened to run,
    # or never. Python ignores ResourceWarning by default: so does this one collection.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
    gc.freeze()


_FASTAPI_CALLABLE_CACHES = (
    "_is_gen_callable_cached",
    "_is_async_gen_callable_cached",
    "_is_coroutine_callable_cached",
)


@pytest.fixture(autouse=True, scope="session")
def private_data_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Nothing a test runs (in-process or a child) writes into the user's data directory."""
    home = tmp_path_factory.mktemp("xdg-data")
    saved = os.environ.get("XDG_DATA_HOME")
    os.environ["XDG_DATA_HOME"] = str(home)
    yield home
    if saved is None:
        del os.environ["XDG_DATA_HOME"]
    else:
        os.environ["XDG_DATA_HOME"] = saved


# Every app of the suite uses a Redis database of its own (``tests/redis_db.py``), never
# the machine's 0: set before any test module is imported, since some build their
# Settings (and so read this) at import time, and inherited by every child process.
os.environ["FASTASYNC_REDIS_URL"] = redis_db.url_of(redis_db.SUITE_DB)


@pytest.fixture(autouse=True, scope="session")
def suite_redis() -> Iterator[None]:
    """At the end of the run no worker process, key or connection of the suite's is left."""
    if redis_db.answers():
        redis_db.empty(redis_db.SUITE_DB)
    yield
    assert redis_db.worker_processes() == [], "queue worker processes outlived the tests"
    if redis_db.answers():
        for db in (redis_db.SUITE_DB, redis_db.QUEUE_DB):
            assert redis_db.connections(db) == [], f"connections to Redis db {db} left open"
        # what the fuzzing and the soak enqueued with no worker to run it: the suite's own
        # database, emptied (the queue tests check their own database test by test)
        redis_db.empty(redis_db.SUITE_DB)


@pytest.fixture
def chromium() -> str:
    """Headless Chromium's path; a failure, not a skip, when .ci/run requires it."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        if os.environ.get("FASTASYNC_REQUIRE_BROWSER"):
            pytest.fail("chromium is required (FASTASYNC_REQUIRE_BROWSER is set) but missing")
        pytest.skip("no chromium on this machine (.ci/run installs it): the browser check")
    return browser


async def render_offline(browser: str, url: str, profile: Path, budget_ms: int = 10_000) -> str:
    """The DOM of ``url`` after its scripts ran, with every non-loopback request refused.

    Chromium sends all traffic except loopback through a proxy on the discard port, which
    refuses it: a page that needs a CDN stays blank.
    """
    process = await asyncio.create_subprocess_exec(
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--proxy-server=127.0.0.1:9",
        f"--virtual-time-budget={budget_ms}",
        "--dump-dom",
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    dom, _ = await asyncio.wait_for(process.communicate(), timeout=90)
    return dom.decode()


@pytest.fixture
def utc_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The stall inspector prints local times: pin the zone so a snapshot is the same anywhere."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


#: a terminal's width and height, in cells
Size = tuple[int, int]

#: the small and the large size a snapshot test parametrized by ``size`` draws its pane at
#: (its ids, size0 and size1, name the snapshot files)
SNAPSHOT_SIZES: list[Size] = [(100, 30), (140, 45)]


class FrozenSnapshot(Protocol):
    """What :func:`frozen_snapshot` gives a snapshot test: call it to compare."""

    def __call__(
        self,
        size: Size,
        run_before: Callable[[Pilot[Any]], Awaitable[None]],
        app: ExplorerApp | None = None,
    ) -> bool:
        """Whether the app at ``size``, once ``run_before`` has drawn it, is the snapshot."""
        ...


@pytest.fixture
def frozen_snapshot(snap_compare: Any, utc_clock: None, tmp_path: Path) -> FrozenSnapshot:
    """A snapshot test's comparison, under the UTC clock: the explorer frozen for it
    (:func:`tests.pilots.frozen_app` on this test's own data directory, unless the test
    gives its ``app``) at a size, once ``run_before`` has drawn it. The snapshot file is
    named after the test, as :func:`snap_compare` names it."""
    # Imported here, not above: tests.pilots imports this module (for ``eventually``).
    from tests.pilots import frozen_app

    def compare(
        size: Size,
        run_before: Callable[[Pilot[Any]], Awaitable[None]],
        app: ExplorerApp | None = None,
    ) -> bool:
        shown = app if app is not None else frozen_app(tmp_path)
        return bool(snap_compare(shown, terminal_size=size, run_before=run_before))

    return compare


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ServerHandle]:
    """The app under uvicorn on this test's loop, on port 0, with its own data directory."""
    handle = ServerHandle(Settings(port=0, data_dir=tmp_path / "data"))
    await handle.start()
    try:
        yield handle
    finally:
        await handle.stop()


@pytest.fixture
async def client(server: ServerHandle) -> AsyncIterator[httpx.AsyncClient]:
    """Real HTTP over loopback to :func:`server`."""
    async with httpx.AsyncClient(base_url=server.url, timeout=30.0) as http:
        yield http


@pytest.fixture
def monitor(server: ServerHandle) -> LoopMonitor:
    """The loop monitor the server's lifespan started."""
    loop_monitor: LoopMonitor = state_of(server.app).monitor
    return loop_monitor


async def set_blocking(client: httpx.AsyncClient, enabled: bool) -> None:
    """Switch blocking mode over HTTP, as the UI's ``b`` key does."""
    response = await client.put("/monitor/blocking", json={"enabled": enabled})
    assert response.json() == {"enabled": enabled}


@pytest.fixture
async def blocking(client: httpx.AsyncClient) -> AsyncIterator[None]:
    """Blocking mode on for the test, off again after it."""
    await set_blocking(client, True)
    try:
        yield
    finally:
        await client.put("/monitor/blocking", json={"enabled": False})


async def eventually(
    condition: Callable[[], bool], within: float = 5.0, interval: float = 0.02
) -> None:
    """Wait until ``condition()`` holds; fail with a clear message after ``within`` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(interval)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The fuzzer's figures: operations covered and cases run (see tests/test_fuzz.py)."""
    import sys

    fuzz = sys.modules.get("tests.test_fuzz") or sys.modules.get("test_fuzz")
    stats = getattr(fuzz, "FUZZ_STATS", None)
    if not stats:
        return
    terminalreporter.write_sep("-", "API fuzzing (schemathesis)")
    terminalreporter.write_line(
        f"{len(stats)} operations, {sum(stats.values())} cases, "
        f"fewest {min(stats.values())} ({min(stats, key=stats.__getitem__)})"
    )


def pytest_report_header(config: pytest.Config) -> str | list[str]:
    """Say up front whether the PostgreSQL (asyncpg) tests and the Redis tests will run."""
    url = os.environ.get("FASTASYNC_TEST_PG_URL")
    if url:
        lines = [f"PostgreSQL tests: on, FASTASYNC_TEST_PG_URL={url}"]
    else:
        lines = ["PostgreSQL tests: SKIPPED, FASTASYNC_TEST_PG_URL is not set (.ci/run sets it)"]
    redis_state = "on" if redis_db.answers() else "SKIPPED (Redis does not answer)"
    lines.append(f"Redis tests: {redis_state}, {redis_db.server_url()}")
    return lines
