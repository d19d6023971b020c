"""The report as one self-contained HTML page: a chart and a headline per scenario.

Nothing on the page is fetched: the styles are inline, the charts are inline SVG
(:mod:`explorer.tools.report.charts`) and there is no script. Everything that comes from
the code under test (blamed lines, routes, notes, errors) is escaped, so a line that
contains ``<script>`` or ``&`` reads as text.
"""

from __future__ import annotations

import datetime
import platform
from collections import Counter
from collections.abc import Callable, Iterable
from html import escape

from explorer.tools.report.charts import PITFALL_COLOUR, RIGHT_COLOUR, lag_chart
from explorer.tools.report.measure import MIB, FormResult
from explorer.tools.report.runner import Report, ScenarioResult
from server import __version__

STYLE = f"""
body {{ font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 62rem;
       padding: 0 1rem; color: #1b1b1b; background: #fff; }}
h1 {{ font-size: 1.6rem; margin-bottom: .2rem; }}
h2 {{ font-size: 1.2rem; margin: 0; }}
section {{ border-top: 1px solid #ddd; padding: 1.2rem 0; }}
.forms {{ margin: .2rem 0 .6rem; color: #444; }}
.right {{ color: {RIGHT_COLOUR}; font-weight: 600; }}
.pitfall {{ color: {PITFALL_COLOUR}; font-weight: 600; }}
.headline {{ font-size: 1.35rem; margin: .3rem 0; }}
.headline b {{ font-size: 1.7rem; }}
.error {{ color: {PITFALL_COLOUR}; font-weight: 600; }}
figure {{ margin: .4rem 0; }}
figure svg {{ width: 100%; height: auto; }}
figcaption {{ font-size: .9rem; color: #333; }}
figcaption ul {{ margin: .2rem 0; padding-left: 1.2rem; }}
code {{ font: .85rem ui-monospace, monospace; background: #f3f3f3; padding: 0 .2rem; }}
table {{ border-collapse: collapse; font-size: .9rem; margin-top: .4rem; }}
th, td {{ border: 1px solid #ddd; padding: .2rem .5rem; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
.summary td:nth-child(2), .summary th:nth-child(2) {{ text-align: left; }}
"""

#: the figures a headline can lead with: name, how to read it, and what it measures
RATIOS: tuple[tuple[str, Callable[[FormResult], float]], ...] = (
    ("lag p99", lambda form: form.lag.p99 if form.lag else 0.0),
    ("wall time", lambda form: form.wall_s),
    ("memory growth", lambda form: float(form.rss_growth_bytes)),
)


#: memory growth below this in both forms is the allocator's noise, not a lesson: no ratio
MEMORY_NOISE_BYTES = 4 * MIB


def _ratios(result: ScenarioResult) -> list[tuple[str, float]]:
    """pitfall ÷ right for each figure that has one, the largest change first."""
    found = [(name, ratio) for name, figure in RATIOS if (ratio := result.ratio(figure))]
    growth = max(result.right.rss_growth_bytes, result.pitfall.rss_growth_bytes)
    if growth < MEMORY_NOISE_BYTES:
        found = [(name, ratio) for name, ratio in found if name != "memory growth"]
    return sorted(found, key=lambda item: -max(item[1], 1 / item[1]))


def headline(result: ScenarioResult) -> str:
    """The ratios, the one that moved most in large type (HTML)."""
    if result.errored:
        return '<p class="headline error">a form errored: no ratio</p>'
    ratios = _ratios(result)
    if not ratios:
        return '<p class="headline">pitfall ÷ right: no figure to compare</p>'
    (name, ratio), rest = ratios[0], ratios[1:]
    others = "".join(f" · {value:.2f}× {escape(what)}" for what, value in rest)
    return f'<p class="headline">pitfall ÷ right: <b>{ratio:.1f}×</b> {escape(name)}{others}</p>'


def stall_caption(result: ScenarioResult) -> str:
    """Each form's stalls, grouped by blamed line (HTML list items)."""
    items = []
    for form in (result.right, result.pitfall):
        marks = form.stall_marks
        if not marks:
            items.append(f'<li><span class="{form.form}">{form.form}</span>: no stall</li>')
            continue
        by_line: Counter[tuple[str, str]] = Counter()
        total: dict[tuple[str, str], float] = {}
        for mark in marks:
            where = (mark.location or "(no line of the project's code)", mark.route or "")
            by_line[where] += 1
            total[where] = total.get(where, 0.0) + mark.duration_ms
        lines = ", ".join(
            f"{count} × <code>{escape(line)}</code>"
            + (f" on {escape(route)}" if route else "")
            + f" ({total[line, route]:.0f} ms)"
            for (line, route), count in by_line.most_common(3)
        )
        more = f", and {len(by_line) - 3} other line(s)" if len(by_line) > 3 else ""
        longest = max(mark.duration_ms for mark in marks)
        items.append(
            f'<li><span class="{form.form}">{form.form}</span>: {len(marks)} stall(s), '
            f"{sum(m.duration_ms for m in marks):.0f} ms in all, the longest "
            f"{longest:.0f} ms: {lines}{more}</li>"
        )
    return "<ul>" + "".join(items) + "</ul>"


def _figure_row(form: FormResult) -> str:
    lag = form.lag
    lag_cell = f"{lag.p50:.1f} / {lag.p99:.1f} / {lag.max:.1f}" if lag and lag.samples else "–"
    stalls = form.stalls
    outcome = escape(form.note)
    if form.error:
        outcome = f'<span class="error">{escape(form.error)}</span>'
    cells = [
        f'<span class="{form.form}">{form.form}</span>',
        f"{form.wall_s:.3f}",
        f"{form.requests}",
        f"{form.requests_per_s:.1f}",
        lag_cell,
        f"{stalls.count} ({stalls.total_ms:.0f} ms)" if stalls else "–",
        f"{form.rss_peak_bytes / MIB:.0f} (+{form.rss_growth_bytes / MIB:.1f})",
        outcome,
    ]
    return "<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>"


FIGURE_COLUMNS = (
    "form",
    "wall s",
    "requests",
    "req/s",
    "lag p50 / p99 / max ms",
    "stalls",
    "RSS peak MiB (+growth)",
    "outcome",
)


def scenario_section(result: ScenarioResult) -> str:
    """One scenario: what its two forms run, the headline, the chart, the figures."""
    scenario = result.scenario
    header = "".join(f"<th>{escape(column)}</th>" for column in FIGURE_COLUMNS)
    rows = _figure_row(result.right) + _figure_row(result.pitfall)
    anchor = escape(scenario.key.replace("/", "-"))
    return (
        f'<section id="{anchor}" class="scenario">'
        f"<h2>{escape(scenario.key)}</h2>"
        f'<p class="forms"><span class="right">right</span>: {escape(scenario.right)}<br>'
        f'<span class="pitfall">pitfall</span>: {escape(scenario.pitfall)}</p>'
        f"{headline(result)}"
        f"<figure>{lag_chart(result)}<figcaption>{stall_caption(result)}</figcaption></figure>"
        f"<table><tr>{header}</tr>{rows}</table>"
        "</section>"
    )


def _summary(results: Iterable[ScenarioResult]) -> str:
    rows = []
    for result in results:
        ratios = _ratios(result)
        lead = f"{ratios[0][1]:.1f}× {ratios[0][0]}" if ratios else "–"
        if result.errored:
            lead = "a form errored"
        key = escape(result.scenario.key)
        rows.append(
            f'<tr><td><a href="#{escape(result.scenario.key.replace("/", "-"))}">{key}</a></td>'
            f"<td>{escape(lead)}</td></tr>"
        )
    return (
        '<table class="summary"><tr><th>scenario</th><th>pitfall ÷ right, the largest change'
        "</th></tr>" + "".join(rows) + "</table>"
    )


def page(report: Report) -> str:
    """The whole report as an HTML document (a string)."""
    when = datetime.datetime.fromtimestamp(report.started_at, datetime.UTC)
    where = (
        f"fastasync-explorer {__version__}, Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}, measured {when:%Y-%m-%d %H:%M} UTC in "
        f"{report.wall_s:.1f} s. Each scenario ran right (blocking mode off), then as its "
        "pitfall (blocking mode on), against the embedded server over loopback HTTP."
    )
    errors = f'<p class="error">{report.errors} scenario(s) errored.</p>' if report.errors else ""
    sections = "".join(scenario_section(result) for result in report.results)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>fastasync-explorer report</title>"
        f"<style>{STYLE}</style></head><body>"
        f"<h1>fastasync-explorer report</h1><p>{escape(where)}</p>{errors}"
        f"{_summary(report.results)}{sections}"
        "</body></html>\n"
    )
