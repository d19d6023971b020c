"""The report as Markdown (for slides and READMEs), JSON (for CI artifacts) and a page
(:mod:`explorer.tools.report.html_page`: charts, for a browser or a pull request)."""

from __future__ import annotations

import datetime
import json
import platform
import sys
from pathlib import Path
from typing import Any

from explorer.tools.report.measure import MIB, FormResult
from explorer.tools.report.runner import Report, ScenarioResult
from server import __version__

COLUMNS = (
    "scenario",
    "form",
    "what runs",
    "wall s",
    "req/s",
    "lag p50 / p99 / max ms",
    "stalls (total ms)",
    "blocking location",
    "RSS peak MiB (+growth)",
    "pitfall ÷ right",
    "outcome",
)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}×"


def _row(result: ScenarioResult, form: FormResult) -> list[str]:
    scenario = result.scenario
    pitfall = form.form == "pitfall"
    lag = form.lag
    stalls = form.stalls
    lag_cell = f"{lag.p50:.1f} / {lag.p99:.1f} / {lag.max:.1f}" if lag and lag.samples else "–"
    stall_cell = f"{stalls.count} ({stalls.total_ms:.0f})" if stalls else "–"
    ratio = ""
    if pitfall:
        wall = _ratio(result.ratio(lambda f: f.wall_s))
        lag_p99 = _ratio(result.ratio(lambda f: f.lag.p99 if f.lag else 0.0))
        ratio = f"{wall} wall, {lag_p99} lag p99"
    outcome = f"ERROR {form.error}" if form.error else form.note
    return [
        scenario.key if not pitfall else "",
        form.form,
        scenario.pitfall if pitfall else scenario.right,
        f"{form.wall_s:.3f}",
        f"{form.requests_per_s:.1f}",
        lag_cell,
        stall_cell,
        f"`{stalls.location}`" if stalls and stalls.location else "–",
        f"{form.rss_peak_bytes / MIB:.0f} (+{form.rss_growth_bytes / MIB:.1f})",
        ratio,
        outcome,
    ]


def markdown(report: Report) -> str:
    """A Markdown table, one row per form, with a header saying where it was measured."""
    when = datetime.datetime.fromtimestamp(report.started_at, datetime.UTC)
    lines = [
        "# fastasync-explorer report",
        "",
        f"fastasync-explorer {__version__}, Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}, measured {when:%Y-%m-%d %H:%M} UTC "
        f"in {report.wall_s:.1f} s. Each scenario ran right (blocking mode off), then as its "
        "pitfall (blocking mode on), against the embedded server over loopback HTTP.",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join("---" for _ in COLUMNS) + "|",
    ]
    for result in report.results:
        for form in (result.right, result.pitfall):
            lines.append("| " + " | ".join(_cell(c) for c in _row(result, form)) + " |")
    lines.append("")
    if report.errors:
        lines.append(f"**{report.errors} scenario(s) errored.**")
        lines.append("")
    return "\n".join(lines)


def as_json(report: Report) -> dict[str, Any]:
    """Every figure, per scenario and form, plus the ratios pitfall ÷ right."""
    scenarios = []
    for result in report.results:
        scenarios.append(
            {
                "scenario": result.scenario.key,
                "right_form": result.scenario.right,
                "pitfall_form": result.scenario.pitfall,
                "right": result.right.as_dict(),
                "pitfall": result.pitfall.as_dict(),
                "ratio_pitfall_over_right": {
                    "wall_s": result.ratio(lambda f: f.wall_s),
                    "requests_per_s": result.ratio(lambda f: f.requests_per_s),
                    "lag_p99_ms": result.ratio(lambda f: f.lag.p99 if f.lag else 0.0),
                    "rss_growth": result.ratio(lambda f: float(f.rss_growth_bytes)),
                },
            }
        )
    return {
        "version": __version__,
        "python": sys.version.split()[0],
        "platform": f"{platform.system()} {platform.machine()}",
        "started_at": datetime.datetime.fromtimestamp(report.started_at, datetime.UTC).isoformat(),
        "wall_s": round(report.wall_s, 3),
        "errors": report.errors,
        "scenarios": scenarios,
    }


def write(report: Report, out_dir: Path, with_html: bool = True) -> list[Path]:
    """Write ``report.md``, ``report.json`` and (unless told not to) ``report.html`` into
    ``out_dir`` (created if needed): the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    md_path, json_path = out_dir / "report.md", out_dir / "report.json"
    md_path.write_text(markdown(report), encoding="utf-8")
    json_path.write_text(json.dumps(as_json(report), indent=2) + "\n", encoding="utf-8")
    written = [md_path, json_path]
    if with_html:
        # the charts (matplotlib) are drawn here, after the run: never while it measures
        from explorer.tools.report.html_page import page

        html_path = out_dir / "report.html"
        html_path.write_text(page(report), encoding="utf-8")
        written.append(html_path)
    return written
