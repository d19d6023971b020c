"""The pytest plugin, run for real: pytest in a child process over small suites.

Every run is a subprocess (``runpytest_subprocess``): the plugin patches the event loop
class while it works, and the shop's package is called ``server`` like ours. The small
suites load only pytest-asyncio and the plugin (``-p``): the other plugins installed here
(schemathesis, the snapshot plugin) would triple each run's start-up. The shop's suite
runs as a user would run it, with every plugin loaded from its entry point.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fastasync_probe.pytest_plugin import parse_budget
from tests.test_examples import SHOP, injected

pytest_plugins = ["pytester"]

INI = """
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
filterwarnings =
    error
    ignore:Using `httpx` with `starlette.testclient` is deprecated
"""

#: the app the suites test: the blocking line is two calls deep, in a module of its own
HELPERS = """
import time


def hold(seconds):
    time.sleep(seconds)  # the culprit


def stock(item_id):
    hold(0.08)
    return item_id * 10
"""

APP = """
import asyncio

from fastapi import FastAPI

from shophelpers import stock

app = FastAPI()


@app.get("/items/{item_id}")
async def item(item_id: int) -> dict[str, int]:
    return {"stock": stock(item_id)}


@app.get("/healthy")
async def healthy() -> dict[str, str]:
    await asyncio.sleep(0.08)
    return {"status": "ok"}
"""

ASYNC_SUITE = """
import httpx
import pytest

from shopapp import app


@pytest.fixture
async def client():
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        yield client


async def test_blocking_route(client):
    assert (await client.get("/items/3")).json() == {"stock": 30}


async def test_awaiting_route(client):
    assert (await client.get("/healthy")).json() == {"status": "ok"}


@pytest.mark.asyncio(loop_scope="module")
async def test_blocking_on_a_module_loop():
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/items/1")).status_code == 200
"""

TESTCLIENT_SUITE = """
import asyncio
import time

import pytest
from starlette.testclient import TestClient

from shopapp import app


@pytest.fixture
def client():
    # its portal loop is already running (in a thread) when each test's call begins
    with TestClient(app) as client:
        yield client


def test_blocking_route_on_a_running_loop(client):
    assert client.get("/items/2").status_code == 200


def test_blocking_route_without_lifespan():
    assert TestClient(app).get("/items/2").status_code == 200


def test_awaiting_route(client):
    assert client.get("/healthy").status_code == 200


@pytest.fixture
def blocked_in_setup():
    async def slow_setup():
        time.sleep(0.08)

    asyncio.run(slow_setup())


def test_a_stall_in_setup_is_not_the_tests(blocked_in_setup, client):
    assert client.get("/healthy").status_code == 200


def test_a_plain_sleep_blocks_no_loop():
    time.sleep(0.08)
"""


def culprit_line() -> int:
    """The line of HELPERS that blocks (1-based, as pytester writes it: dedented)."""
    lines = HELPERS.strip("\n").splitlines()
    return next(n for n, text in enumerate(lines, start=1) if "# the culprit" in text)


#: what each small suite loads (autoloading is off for them, see the module docstring)
PLUGINS = ("-p", "pytest_asyncio.plugin", "-p", "fastasync_probe.pytest_plugin")


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makeini(INI)
    pytester.makepyfile(shophelpers=HELPERS, shopapp=APP)
    pytester.syspathinsert()
    return pytester


def failure_text(result: pytest.RunResult, test: str) -> str:
    """The failure section of ``test`` in a run's output."""
    out = result.stdout.str()
    match = re.search(rf"_{{3,}} {re.escape(test)} _{{3,}}\n(.*?)(?=\n_{{3,}} |\n=+ )", out, re.S)
    assert match, out
    return match[1]


def assert_names_the_culprit(text: str, budget_ms: int = 50) -> None:
    match = re.search(
        rf"event loop stalled ([\d.]+) ms \(budget {budget_ms} ms\) at "
        rf"shophelpers.py:{culprit_line()} in hold, on GET /items/{{item_id}}",
        text,
    )
    assert match, text
    assert float(match[1]) >= 70.0  # an 80 ms sleep, measured from inside the selector
    own = text.split("own frames, innermost first:")[1].split("library frames:")[0]
    assert re.findall(r"(\S+\.py):\d+ in (\w+)", own)[:3] == [
        ("shophelpers.py", "hold"),
        ("shophelpers.py", "stock"),
        ("shopapp.py", "item"),
    ], own


def test_a_test_whose_route_blocks_fails_with_the_line_route_and_stack(
    suite: pytest.Pytester,
) -> None:
    suite.makepyfile(test_async=ASYNC_SUITE)
    report = suite.path / "out" / "stalls.json"
    report.parent.mkdir()
    result = suite.runpytest_subprocess(
        *PLUGINS, "--loop-stall-budget", "50ms", "--loop-stall-report", str(report)
    )
    result.assert_outcomes(passed=1, failed=2)
    assert_names_the_culprit(failure_text(result, "test_blocking_route"))
    assert_names_the_culprit(failure_text(result, "test_blocking_on_a_module_loop"))
    failed = set(re.findall(r"FAILED test_async.py::(\w+)", result.stdout.str()))
    assert failed == {"test_blocking_route", "test_blocking_on_a_module_loop"}
    # the JSON report: every test, its outcome, its stalls
    data = json.loads(report.read_text())
    assert data["budget_ms"] == 50.0
    tests = {test["nodeid"].split("::")[1]: test for test in data["tests"]}
    assert set(tests) == {"test_awaiting_route", *failed}
    blocking, awaiting = tests["test_blocking_route"], tests["test_awaiting_route"]
    assert (blocking["outcome"], awaiting["outcome"]) == ("failed", "passed")
    assert not [s for s in awaiting["stalls"] if s["over_budget"]]
    (stall,) = [s for s in blocking["stalls"] if s["over_budget"]]
    assert stall["duration_ms"] >= 70.0
    assert stall["location"] == f"shophelpers.py:{culprit_line()} in hold"
    assert stall["route"] == "GET /items/{item_id}"
    assert stall["frames"][0]["own"]
    assert stall["frames"][0]["function"] == "hold"
    assert stall["stack"][0] == stall["location"]
    assert data["summary"]["tests"] == 3
    assert data["summary"]["over_budget"] == 2


def test_testclient_loops_are_watched_even_when_already_running(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_sync=TESTCLIENT_SUITE)
    result = suite.runpytest_subprocess(*PLUGINS, "--loop-stall-budget", "0.05s")
    result.assert_outcomes(passed=3, failed=2)
    assert_names_the_culprit(failure_text(result, "test_blocking_route_on_a_running_loop"))
    assert_names_the_culprit(failure_text(result, "test_blocking_route_without_lifespan"))


NOTHING_PATCHED = """
import asyncio.base_events
import time

import httpx
from starlette.applications import Starlette

from fastasync_probe.monitor import LoopMonitor
from shopapp import app


async def test_blocks_and_nothing_watches():
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/items/3")).status_code == 200
    assert asyncio.base_events.BaseEventLoop.run_forever.__module__ == "asyncio.base_events"
    assert Starlette.__call__.__module__ == "starlette.applications"
    assert len(LoopMonitor._by_loop) == 0
"""


def test_without_the_option_or_a_marker_nothing_happens(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_inert=NOTHING_PATCHED)
    suite.runpytest_subprocess(*PLUGINS).assert_outcomes(passed=1)


MARKED = """
import pytest

from shophelpers import stock


@pytest.mark.loop_stall_budget("30ms")
def test_tight():
    import asyncio

    async def main():
        return stock(1)

    assert asyncio.run(main()) == 10


@pytest.mark.loop_stall_budget(200)
def test_loose():
    import asyncio

    async def main():
        return stock(1)

    assert asyncio.run(main()) == 10


def test_unmarked():
    import asyncio

    async def main():
        return stock(1)

    assert asyncio.run(main()) == 10
"""


@pytest.mark.parametrize(
    ("option", "failing"),
    [((), {"test_tight"}), (("--loop-stall-budget", "50"), {"test_tight", "test_unmarked"})],
    ids=["marker-alone", "marker-overrides-option"],
)
def test_the_marker_sets_a_tests_budget(
    suite: pytest.Pytester, option: tuple[str, ...], failing: set[str]
) -> None:
    suite.makepyfile(test_marked=MARKED)
    result = suite.runpytest_subprocess(*PLUGINS, *option)
    result.assert_outcomes(passed=3 - len(failing), failed=len(failing))
    failed = set(re.findall(r"FAILED test_marked.py::(\w+)", result.stdout.str()))
    assert failed == failing
    assert "(budget 30 ms) at shophelpers.py" in failure_text(result, "test_tight")


def test_the_report_alone_records_stalls_and_fails_nothing(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_async=ASYNC_SUITE)
    report = suite.path / "stalls.json"
    suite.runpytest_subprocess(*PLUGINS, "--loop-stall-report", str(report)).assert_outcomes(
        passed=3
    )
    tests = json.loads(report.read_text())["tests"]
    blocking = next(t for t in tests if t["nodeid"].endswith("::test_blocking_route"))
    assert blocking["budget_ms"] is None
    assert any(s["duration_ms"] >= 70.0 and not s["over_budget"] for s in blocking["stalls"])


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("50ms", 0.05), ("0.05s", 0.05), ("50", 0.05), (" 1.5s ", 1.5), (".5ms", 0.0005), (80, 0.08)],
)
def test_a_budget_reads_milliseconds_or_seconds(text: str | int, seconds: float) -> None:
    assert parse_budget(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["abc", "0", "-5ms", "5 minutes", "nan", "inf", "1e3ms", ""])
def test_anything_else_is_not_a_budget(text: str) -> None:
    with pytest.raises(ValueError, match="a loop stall budget is a positive duration like 50ms"):
        parse_budget(text)


def test_a_bad_budget_is_a_usage_error(suite: pytest.Pytester) -> None:
    result = suite.runpytest_subprocess(*PLUGINS, "--loop-stall-budget=-5ms")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert (
        result.stderr.str()
        .strip()
        .endswith(
            "error: argument --loop-stall-budget: "
            "a loop stall budget is a positive duration like 50ms or 0.05s, not '-5ms'"
        )
    ), result.stderr.str()
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


def test_the_plugin_is_registered_under_pytest11() -> None:
    from importlib.metadata import entry_points

    (entry,) = [e for e in entry_points(group="pytest11") if e.name == "fastasync_probe"]
    assert entry.value == "fastasync_probe.pytest_plugin"


def test_a_bad_marker_or_report_folder_is_a_usage_error(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        test_bad="import pytest\n\n\n@pytest.mark.loop_stall_budget('soon')\ndef test_x(): ...\n"
    )
    result = suite.runpytest_subprocess(*PLUGINS)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "test_bad.py::test_x: a loop stall budget is a positive duration" in result.stderr.str()
    missing = suite.path / "no" / "such" / "report.json"
    result = suite.runpytest_subprocess(
        *PLUGINS, "--loop-stall-report", str(missing), "-k", "nothing"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "does not exist" in result.stderr.str()


def test_the_shops_own_suite_fails_its_blocking_test_on_the_marked_line(tmp_path: Path) -> None:
    """The sample shop's tests, as its README says to run them (its own rootdir)."""
    path, line = injected("hidden-sleep")
    report = tmp_path / "shop.json"
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"]
    argv += ["--loop-stall-budget", "50ms", "--loop-stall-report", str(report)]
    result = subprocess.run(argv, cwd=SHOP, capture_output=True, text=True, timeout=120)
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert "1 failed, 2 passed" in out, out
    assert "FAILED tests/test_shop.py::test_product_page_shows_stock" in out
    assert f"at {path}:{line} in stock_level, on GET /products/{{product_id}}" in out
    tests = {t["nodeid"]: t for t in json.loads(report.read_text())["tests"]}
    assert tests["tests/test_shop.py::test_catalogue_lists_every_product"]["outcome"] == "passed"
