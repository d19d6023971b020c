"""``report.html``: one self-contained page, a chart per scenario, code-derived text escaped,
opened in headless Chromium with the network cut off."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from explorer.tools.report import output
from explorer.tools.report.html_page import page
from explorer.tools.report.measure import FormResult, StallMark, StallSummary
from explorer.tools.report.runner import Report, ScenarioResult, report_settings, run_report
from explorer.tools.report.scenario import Outcome, Scenario, ScenarioRun
from explorer.tools.report.scenarios import SCENARIOS
from fastasync_probe.monitor import LagStats
from server.settings import Settings
from tests.browser import run_offline

#: a blamed line as hostile as code can make it: markup, an entity, quotes
HOSTILE_LINE = 'app/views.py:7 in <script>alert("x")</script> & <b>co</b>'
HOSTILE_ROUTE = "GET /search?q=<img src=x onerror=alert(1)>&n=1"


async def nothing(run: ScenarioRun) -> Outcome:
    return Outcome(requests=0)


def hostile_result() -> ScenarioResult:
    """A scenario measured by hand, whose stall is blamed on :data:`HOSTILE_LINE`."""
    scenario = Scenario(
        name="hostile", right="await <it>", pitfall="block & wait", run=nothing, pattern="x"
    )
    mark = StallMark(at_s=0.05, duration_ms=120.0, location=HOSTILE_LINE, route=HOSTILE_ROUTE)
    right = FormResult(
        scenario.key, "right", wall_s=0.2, requests=4, lag=LagStats.of([0.2, 0.3, 0.4])
    )
    right.lag_series = [(0.01 * n, 0.2 + 0.01 * n) for n in range(20)]
    pitfall = FormResult(
        scenario.key,
        "pitfall",
        wall_s=0.4,
        requests=4,
        lag=LagStats.of([0.3, 120.0]),
        stalls=StallSummary(1, 120.0, 120.0, HOSTILE_LINE),
        note="<i>slow</i> & late",
    )
    pitfall.lag_series = [(0.0, 0.3), (0.17, 120.0), (0.3, 0.4)]
    pitfall.stall_marks = [mark]
    return ScenarioResult(scenario, right, pitfall)


def test_code_derived_text_is_escaped_everywhere() -> None:
    html = page(Report(results=[hostile_result()]))
    # no element the code under test wrote: its text is text
    assert "<script" not in html.lower()
    assert "<img" not in html.lower()
    assert "<b>co" not in html
    assert "<i>slow" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;co&lt;/b&gt;" in html
    assert "&lt;i&gt;slow&lt;/i&gt; &amp; late" in html  # the note, in the figures table
    # the hover text of the stall's mark on the chart, escaped as well
    titles = re.findall(r"<title>(.*?)</title>", html.split("</head>", 1)[1])
    assert any("&lt;script&gt;" in title and "120 ms" in title for title in titles)
    assert html.count("<svg") == 1


def test_every_scenario_of_a_page_has_its_chart_and_headline() -> None:
    results = [hostile_result(), hostile_result()]
    html = page(Report(results=results))
    assert html.count('<section id="x-hostile" class="scenario">') == 2
    assert html.count("<svg") == 2
    # the headline leads with the figure that moved most: lag p99, 0.3 → 120 ms
    assert re.search(r"pitfall ÷ right: <b>\d+\.\d×</b> lag p99", html)
    # nothing the page would fetch: no script, no stylesheet link, no remote source
    assert not re.search(r"<(script|link|iframe|img)\b", html)
    # every link on the page points within it
    targets = re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', html)
    assert targets
    assert all(target.startswith("#") for target in targets), targets


async def test_the_page_in_chromium_offline(tmp_path: Path, chromium: str) -> None:
    """A real report (two scenarios) written as a page: in Chromium with the network cut
    off, every scenario shows its chart and nothing asks the network for anything. The
    screenshot is saved for a look (and for the README when ``FASTASYNC_SCREENSHOTS``
    names a folder). Then the same page with the hostile line: it reads as text."""
    chosen = [s for s in SCENARIOS if s.key in ("basics/sleep", "basics/cpu")]
    report = await run_report(chosen, report_settings(Settings(), tmp_path / "data"))
    assert report.errors == 0
    paths = output.write(report, tmp_path / "out")
    url = next(p for p in paths if p.suffix == ".html").as_uri()

    dom, asked = await run_offline(
        chromium, url, tmp_path / "profile", "--dump-dom", "--virtual-time-budget=5000"
    )
    assert asked == []
    sections = re.findall(r'<section id="([^"]+)" class="scenario">(.*?)</section>', dom, re.S)
    assert [key for key, _ in sections] == ["basics-sleep", "basics-cpu"]
    for _, body in sections:
        assert body.count("<svg") == 1
        assert "<path" in body  # a drawn line, not an empty frame
        assert "stall(s)" in body  # the pitfall's stalls, in the caption

    shot = tmp_path / "report.png"
    _, asked = await run_offline(
        chromium, url, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1100,1500"
    )
    assert asked == []
    assert shot.stat().st_size > 20_000  # a drawn page, not a blank one
    keep = os.environ.get("FASTASYNC_SCREENSHOTS")
    if keep:
        shutil.copy(shot, Path(keep) / "report-page.png")

    report.results.append(hostile_result())
    hostile = tmp_path / "hostile.html"
    hostile.write_text(page(report), encoding="utf-8")
    dom, asked = await run_offline(chromium, hostile.as_uri(), tmp_path / "profile", "--dump-dom")
    assert asked == []
    assert "<script" not in dom.lower()
    assert "&lt;script&gt;alert" in dom  # text in the document, not an element


async def test_the_trap_sees_a_page_that_reaches_out(tmp_path: Path, chromium: str) -> None:
    """The offline check can fail: a page with one remote image is caught."""
    leaky = tmp_path / "leaky.html"
    leaky.write_text('<html><body><img src="http://cdn.example.com/chart.png"></body></html>')
    _, asked = await run_offline(chromium, leaky.as_uri(), tmp_path / "profile", "--dump-dom")
    assert any(b"cdn.example.com" in line for line in asked)
