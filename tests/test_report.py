"""``fastasync-explorer report``: the headless run of every scenario, right and pitfall."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from explorer.tools.report import cli as report_cli
from explorer.tools.report import output
from explorer.tools.report.measure import MIB
from explorer.tools.report.runner import report_settings, run_report
from explorer.tools.report.scenario import Outcome, Scenario, ScenarioError, ScenarioRun
from explorer.tools.report.scenarios import SCENARIOS
from server.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def scenario(key: str) -> Scenario:
    return next(s for s in SCENARIOS if s.key == key)


async def failing(run: ScenarioRun) -> Outcome:
    if run.pitfall:
        raise ScenarioError("the pitfall form broke on purpose")
    return Outcome(requests=0, note="nothing to do")


def test_every_pattern_has_a_scenario() -> None:
    from server.patterns import PATTERNS

    slugs = set(PATTERNS)
    assert slugs <= {s.pattern for s in SCENARIOS}
    keys = [s.key for s in SCENARIOS]
    assert len(keys) == len(set(keys))


async def test_blocking_sleep_shows_as_stalls_with_its_line(tmp_path: Path) -> None:
    settings = report_settings(Settings(), tmp_path / "data")
    report = await run_report([scenario("basics/sleep")], settings)
    (result,) = report.results
    assert not result.errored
    right, pitfall = result.right, result.pitfall
    # 20 requests of 100 ms: concurrent when right, one after another as the pitfall
    assert right.requests == pitfall.requests == 20
    assert right.wall_s < 1.5
    assert pitfall.wall_s >= 2.0
    assert pitfall.stalls is not None
    assert pitfall.stalls.count >= 15
    assert pitfall.stalls.total_ms >= 1800
    assert pitfall.stalls.location is not None
    assert pitfall.stalls.location.startswith("server/patterns/basics/router.py:")
    assert pitfall.lag is not None
    assert right.lag is not None
    assert pitfall.lag.max >= 90  # a sample waited out at least one 100 ms sleep
    assert (result.ratio(lambda f: f.wall_s) or 0) > 1.3
    assert pitfall.rss_peak_bytes > 0


NEWER_PATTERNS = ("ws", "sse", "stream", "db", "cache")


async def test_the_newer_patterns_show_their_lessons_in_the_figures(tmp_path: Path) -> None:
    """ws, sse, stream, db and cache, right then pitfall, on one embedded server (SQLite).

    The bounds are loose on purpose: each one is a lesson, not a benchmark.
    """
    scenarios = [s for s in SCENARIOS if s.pattern in NEWER_PATTERNS]
    assert [s.pattern for s in scenarios] == sorted(
        (s.pattern for s in scenarios), key=NEWER_PATTERNS.index
    )
    settings = report_settings(Settings(), tmp_path / "data")
    report = await run_report(scenarios, settings)
    results = {r.scenario.key: r for r in report.results}
    assert report.errors == 0, [(r.right.error, r.pitfall.error) for r in report.results]

    # ws: the right room gets every message and drops the member that never reads; the
    # naive room stops until that member is unplugged
    ws = results["ws/slow-reader"]
    right, pitfall = ws.right.extra, ws.pitfall.extra
    assert right["delivered"] == right["expected"]
    assert right["stuck_at"] is None
    assert right["stalled_dropped"] in {"outbox full", "send timeout"}
    assert pitfall["stuck_at"] is not None
    assert pitfall["stuck_at"] < pitfall["expected"]
    assert pitfall["longest_pause_s"] >= 3.0
    assert pitfall["stalled_dropped"] is None
    # the pane's figure: in the stuck room a message waits as long as the room is stuck
    assert pitfall["oldest_undelivered_s"] >= 2.5
    assert pitfall["oldest_undelivered_s"] > right["oldest_undelivered_s"] + 1.0
    assert ws.pitfall.wall_s > ws.right.wall_s + 1.0
    assert "until never-reads was unplugged" in ws.pitfall.note

    # sse: only the pitfall leaves producers ticking, and DELETE /sse/leaked ends them all
    sse = results["sse/ticker-left"]
    assert sse.right.extra["leaked_producers"] == 0
    assert sse.right.extra["unread_ticks"] == 0
    assert sse.pitfall.extra["leaked_producers"] == 20
    assert sse.pitfall.extra["unread_ticks"] > 50
    assert sse.pitfall.extra["ended_by_delete"] == 20

    # stream: reading the whole file costs the server its size in memory, and a stall
    stream = results["stream/download"]
    assert stream.right.extra["bytes_received"] == stream.pitfall.extra["bytes_received"]
    assert stream.right.rss_growth_bytes < 64 * MIB
    assert stream.pitfall.rss_growth_bytes >= 120 * MIB
    assert stream.pitfall.rss_growth_bytes > stream.right.rss_growth_bytes + 100 * MIB
    assert stream.pitfall.stalls is not None
    assert stream.pitfall.stalls.location is not None
    assert stream.pitfall.stalls.location.startswith("server/patterns/stream/router.py:")

    # db: sync sqlite3 stalls the loop at its own line; one connection serialises the
    # dashboard; N+1 makes 201 queries where prefetch makes 2
    report_query = results["db/slow-report"]
    stalls = report_query.pitfall.stalls
    assert stalls is not None
    assert stalls.location is not None
    assert stalls.location.startswith("server/patterns/db/router.py:")
    assert stalls.total_ms >= 700  # 4 queries of 250 ms, one after another on the loop
    assert report_query.pitfall.wall_s > report_query.right.wall_s + 0.3
    dashboard = results["db/dashboard"]
    assert dashboard.right.extra["effective"] == "pool"
    assert dashboard.pitfall.extra["effective"] == "one_connection"
    assert min(dashboard.pitfall.extra["dashboard_ms"]) >= 450  # 5 of 100 ms in a row
    assert max(dashboard.right.extra["dashboard_ms"]) < min(dashboard.pitfall.extra["dashboard_ms"])
    # by the database's own clock: at the same time on the pool, never on one connection
    assert dashboard.right.extra["overlapped"] == [True] * 3
    assert dashboard.pitfall.extra["overlapped"] == [False] * 3
    posts = results["db/posts"]
    assert posts.right.extra["queries_per_page"] == 2
    assert posts.pitfall.extra["queries_per_page"] == 1 + 2 * posts.pitfall.extra["posts"]

    # cache: the stampede, the hang waited out, a client per call
    stampede = results["cache/stampede"]
    assert stampede.right.extra["upstream_calls"] == 1
    assert stampede.pitfall.extra["upstream_calls"] >= 10
    hanging = results["cache/hanging"]
    assert hanging.right.extra["statuses"] == {"504": 5}
    assert hanging.pitfall.extra["statuses"] == {"200": 5}
    assert hanging.right.wall_s < 2.5 <= 3.0 <= hanging.pitfall.wall_s
    clients = results["cache/clients"]
    assert clients.right.extra["clients_created"] == 0
    assert clients.pitfall.extra["clients_created"] == 50
    assert clients.pitfall.extra["connections_opened"] == 50

    # nothing is left behind: no task on this loop, no sample file on disk
    assert asyncio.all_tasks() == {asyncio.current_task()}
    assert list((tmp_path / "data" / "files").iterdir()) == []
    table = output.markdown(report)
    for key in results:
        assert table.count(f"| {key} |") == 1


async def test_a_failing_form_is_recorded_and_the_rest_still_runs(tmp_path: Path) -> None:
    broken = Scenario("broken", "fine", "breaks", failing, pattern="basics")
    settings = report_settings(Settings(), tmp_path / "data")
    report = await run_report([broken, scenario("concurrency/gather")], settings)
    assert report.errors == 1
    first, second = report.results
    assert first.errored
    assert first.pitfall.error is not None
    assert "broke on purpose" in first.pitfall.error
    assert first.ratio(lambda f: f.wall_s) is None
    assert not second.errored
    assert "gather: 10 ok" in second.right.note
    assert "sequential: 10 ok" in second.pitfall.note
    table = output.markdown(report)
    assert "ERROR ScenarioError: the pitfall form broke on purpose" in table
    assert "1 scenario(s) errored" in table
    data = output.as_json(report)
    assert data["errors"] == 1
    assert data["scenarios"][1]["ratio_pitfall_over_right"]["wall_s"] > 1.3


def test_the_command_exits_non_zero_when_a_scenario_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = Scenario("broken", "fine", "breaks", failing, pattern="basics")
    monkeypatch.setattr(report_cli, "SCENARIOS", (broken,))
    from explorer.cli import main

    code = main(["report", "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert code == 1
    assert "1 scenario(s) errored" in captured.err
    assert (tmp_path / "out" / "report.md").exists()
    log = (tmp_path / "out" / "report.log").read_text()
    assert "basics/broken (pitfall) failed" in log


def test_report_command_writes_markdown_and_json(tmp_path: Path) -> None:
    """The real command in a child process: plain progress lines (no terminal), two files."""
    out = tmp_path / "out"
    completed = subprocess.run(
        [sys.executable, "-m", "explorer.cli", "report", "--only", "tasks", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert "[0/2] tasks/fire-and-forget (right)" in completed.stdout
    assert "[2/2] done" in completed.stdout
    assert "Traceback" not in completed.stderr
    data = json.loads((out / "report.json").read_text())
    (entry,) = data["scenarios"]
    assert entry["scenario"] == "tasks/fire-and-forget"
    assert entry["right"]["note"] == "failures recorded 10/10"
    assert "outcome never heard" in entry["pitfall"]["note"]
    markdown = (out / "report.md").read_text()
    assert markdown.count("| tasks/fire-and-forget |") == 1
    assert "| pitfall | task lost |" in markdown


def test_only_picks_patterns_of_the_one_list(capsys: pytest.CaptureFixture[str]) -> None:
    from server.patterns import PATTERNS

    picked = report_cli.selected(["cache", "basics"])
    assert [s.pattern for s in picked] == sorted((s.pattern for s in picked), key=PATTERNS.index)
    assert {s.pattern for s in picked} == {"cache", "basics"}
    assert [s.key for s in report_cli.selected(["db"])] == [
        s.key for s in SCENARIOS if s.pattern == "db"
    ]
    assert report_cli.selected(None) == list(SCENARIOS)
    from explorer.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["report", "--only", "nope"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'nope'" in err
    assert ", ".join(repr(slug) for slug in PATTERNS) in err


def test_unwritable_out_dir_is_a_sentence(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    completed = subprocess.run(
        [sys.executable, "-m", "explorer.cli", "report", "--out", str(blocker / "sub")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert completed.returncode == 2
    assert "cannot write the report to" in completed.stderr
    assert "Traceback" not in completed.stderr
