"""The report command: choose scenarios, show progress, write the files, set the exit code."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from explorer.tools.report import output
from explorer.tools.report.runner import Progress as ProgressCallback
from explorer.tools.report.runner import report_settings, run_report
from explorer.tools.report.scenario import Scenario
from explorer.tools.report.scenarios import SCENARIOS
from server.patterns import PATTERNS
from server.runner import ServerError
from server.settings import Settings

LOG_FILE = "report.log"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The report's own options (the server options are shared with the other commands)."""
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("fastasync-report"),
        help="directory for report.md, report.json, report.html and report.log "
        "(default: ./fastasync-report)",
    )
    parser.add_argument(
        "--html",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also write report.html: a page with a chart per scenario, self-contained "
        "(the default; --no-html for Markdown and JSON only)",
    )
    # a slug of the one list: argparse refuses any other, naming the ones there are
    parser.add_argument(
        "--only",
        metavar="PATTERN",
        action="append",
        choices=PATTERNS,
        help=f"run only this pattern's scenarios (repeatable; one of {', '.join(PATTERNS)})",
    )


def selected(only: Sequence[str] | None) -> list[Scenario]:
    """The scenarios to run, in catalogue order (``only``: of these patterns only)."""
    return [s for s in SCENARIOS if not only or s.pattern in only]


@contextmanager
def progress_display(stream_is_tty: bool) -> Iterator[ProgressCallback]:
    """A progress bar on a terminal, one plain line per step otherwise."""
    if not stream_is_tty:

        def plain(label: str, done: int, total: int) -> None:
            print(f"[{done}/{total}] {label}", flush=True)

        yield plain
        return
    # Rich only when there is a terminal to draw on (and only then imported).
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("starting", total=None)

        def update(label: str, done: int, total: int) -> None:
            bar.update(task, description=label, completed=done, total=total)

        yield update


@contextmanager
def log_to(path: Path) -> Iterator[None]:
    """Route the server's and the report's logging to a file, not the terminal."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    saved_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        yield
    finally:
        # A pitfall's task whose exception nobody retrieved is reported by asyncio when the
        # task is collected: collect now, so that lands in the log rather than on stderr.
        gc.collect()
        root.removeHandler(handler)
        root.setLevel(saved_level)
        handler.close()


def run_report_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run the report; 0 when every scenario ran, 1 when one errored, 2 when none could."""
    scenarios = selected(args.only)
    out_dir: Path = args.out.expanduser()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        print(f"fastasync-explorer: cannot write the report to {out_dir}: {error}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="fastasync-report-") as scratch:
        # the user's own data directory only when asked: a report leaves no history behind
        data_dir = settings.data_dir if args.data_dir else Path(scratch)
        try:
            with log_to(out_dir / LOG_FILE), progress_display(sys.stderr.isatty()) as progress:
                report = asyncio.run(
                    run_report(scenarios, report_settings(settings, data_dir), progress)
                )
        except ServerError as error:
            print(f"fastasync-explorer: {error}", file=sys.stderr)
            return 2
    written = output.write(report, out_dir, with_html=args.html)
    print(output.markdown(report))
    names = ", ".join(str(path) for path in written[:-1]) + f" and {written[-1]}"
    print(f"wrote {names} (log: {out_dir / LOG_FILE})")
    if report.errors:
        print(
            f"fastasync-explorer: {report.errors} scenario(s) errored; see {out_dir / LOG_FILE}",
            file=sys.stderr,
        )
        return 1
    return 0
