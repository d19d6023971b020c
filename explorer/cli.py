"""``fastasync-explorer``: the TUI (default), ``serve`` (standalone), ``bench`` and ``report``."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import logging
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from explorer.tools.report.cli import add_arguments as add_report_arguments
from explorer.tools.report.cli import run_report_command
from explorer.tools.web import add_arguments as add_web_arguments
from explorer.yourapp.cli_commands import COMMANDS as YOURAPP_COMMANDS
from explorer.yourapp.cli_commands import YOURAPP_EPILOG, split_uvicorn_args
from explorer.yourapp.cli_commands import add_commands as add_yourapp_commands
from explorer.yourapp.cli_commands import run_command as run_yourapp_command
from explorer.yourapp.hosted import HostError as YourAppError
from fastasync_probe.monitor import MonitorConfig
from server import __version__
from server.patterns import PATTERNS
from server.settings import SERVER_CODE, Settings

#: ``fastasync-explorer bench <slug>``: the patterns that have a benchmark of their own,
#: ``explorer/patterns/<slug>/bench.py`` with ``main(argv)`` (found, not imported: the
#: CLI must not load Textual for ``serve``)
PATTERN_BENCHMARKS: dict[str, str] = {
    slug: f"explorer.patterns.{slug}.bench"
    for slug in PATTERNS
    if importlib.util.find_spec(f"explorer.patterns.{slug}.bench") is not None
}

EPILOG = f"""\
keys in the explorer:
  b  blocking mode on/off       c  code of the handler that ran
  r  run (or Enter in a field)  s / l  stall inspector / log
  1-9, 0  open a pane          ctrl+p  command palette
  escape  back (code view, field)   q  quit

examples:
  fastasync-explorer                       the explorer, serving on 127.0.0.1:8000
  fastasync-explorer --port 0              any free port (shown in the title bar)
  fastasync-explorer serve --port 8000     the same app without the UI, for curl
  fastasync-explorer bench                 throughput and lag figures, side by side
  fastasync-explorer bench ws              a pattern's own ({", ".join(PATTERN_BENCHMARKS)})
  fastasync-explorer web --port 8080      the explorer in a browser, one per tab
  fastasync-explorer report --out DIR      each pattern right vs pitfall: charts, Markdown, JSON
"""


def _add_server_options(parser: argparse.ArgumentParser, *, sub: bool = False) -> None:
    """The options the TUI and ``serve`` share.

    On a subcommand the defaults are SUPPRESS, so ``--port 9000 serve`` and
    ``serve --port 9000`` both work (argparse would otherwise reset the value).
    """

    def default(value: object) -> object:
        return argparse.SUPPRESS if sub else value

    parser.add_argument(
        "--host",
        default=default("127.0.0.1"),
        help="address to listen on (default 127.0.0.1; anything else is reachable "
        "from other machines and gets a warning)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=default(8000),
        help="port to listen on; 0 picks a free one (default 8000)",
    )
    parser.add_argument(
        "--blocking",
        action="store_true",
        default=default(False),
        help="start with blocking mode on",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=default(None),
        metavar="DIR",
        help="where the app keeps its SQLite database and files "
        "(default $XDG_DATA_HOME/fastasync-explorer, else ~/.local/share/fastasync-explorer)",
    )
    parser.add_argument(
        "--database-url",
        default=default(None),
        metavar="URL",
        help="database of the db pane: postgresql://user@host:5432/db (asyncpg) or "
        "sqlite:///file; default $FASTASYNC_DATABASE_URL, else an SQLite file in the data "
        "directory. A URL that does not work falls back to SQLite (the pane says why).",
    )
    parser.add_argument(
        "--redis-url",
        default=default(None),
        metavar="URL",
        help="Redis of the durable queue pane (default $FASTASYNC_REDIS_URL, else "
        "redis://127.0.0.1:6379/0); when it does not answer the pane says so and keeps to "
        "the in-process backend",
    )
    parser.add_argument(
        "--stall-threshold-ms",
        type=float,
        default=default(MonitorConfig().stall_threshold_s * 1000),
        metavar="MS",
        help="a loop iteration at least this long is a stall (default 15)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastasync-explorer",
        description="A terminal lab for FastAPI async patterns: a real server on the UI's "
        "own event loop, every pattern shown right and with its pitfall, measured live.",
        epilog=EPILOG + "\n" + YOURAPP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_server_options(parser)
    # the task inspector's benchmark runs the TUI without its task book (its baseline)
    parser.add_argument("--no-task-book", action="store_true", help=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="run the same FastAPI app without the UI (for curl, browsers, wrk)",
        description="Run the explorer's FastAPI app standalone under uvicorn. "
        "Stop with Ctrl+C or SIGTERM.",
    )
    _add_server_options(serve, sub=True)
    serve.add_argument(
        "--access-log", action="store_true", help="log every request (off by default)"
    )

    bench = commands.add_parser(
        "bench",
        help="measure the explorer's overhead and the stall accuracy; prints a table",
        description="In one run of alternating rounds: idle CPU of the TUI and of `serve`, "
        "requests/s of /basics/async with the TUI running vs `serve` (wrk), a bare FastAPI "
        "app with the loop monitor vs without, idle loop lag vs a bare asyncio loop, and "
        "stall-duration accuracy.",
    )
    bench.add_argument(
        "--duration", type=float, default=8.0, help="seconds of load per throughput run"
    )
    bench.add_argument("--connections", type=int, default=32, help="concurrent load connections")
    bench.add_argument(
        "--idle", type=float, default=10.0, help="seconds idle for the CPU and lag figures"
    )
    bench.add_argument(
        "--rounds", type=int, default=3, help="serve/explorer throughput pairs (median is kept)"
    )
    bench.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    bench.add_argument(
        "--task-inspector",
        action="store_true",
        help="instead: requests/s of /basics/async with the task book off, the Tasks tab "
        "hidden and shown, ratios side by side",
    )
    bench.add_argument(
        "--probe",
        action="store_true",
        help="instead: the probe in the sample shop app (a checkout's examples/shop): what it "
        "names for each injected stall beside fastapi-loopguard and blockbuster, and its "
        "requests/s and idle CPU cost on asyncio and uvloop",
    )
    bench.add_argument(
        "--probe-cost",
        action="store_true",
        help="instead: only the cost part of --probe (requests/s, CPU per request and idle "
        "CPU of the shop with the probe ÷ without)",
    )
    bench.add_argument(
        "--probe-asgi",
        action="store_true",
        help="instead: the probe's cost per request without HTTP (the shop's ASGI app "
        "called in-process, wall and CPU µs with the probe and without)",
    )
    bench.add_argument(
        "pattern",
        nargs="?",
        choices=list(PATTERN_BENCHMARKS),
        help="a pattern's own benchmark instead (its options follow it; see `bench ws -h`)",
    )
    bench.add_argument("pattern_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)

    report = commands.add_parser(
        "report",
        help="run every pattern right and as its pitfall, headless; write charts, Markdown, JSON",
        description="Run each pattern's scenario against the embedded server with no UI, "
        "once right and once with blocking mode on, and write report.html (a chart of the "
        "loop's lag per scenario, stalls marked), report.md and report.json: "
        "wall time, requests/s, loop lag, stalls and where they came from, memory, and the "
        "ratio pitfall ÷ right. Exits 1 if a scenario errors.",
    )
    _add_server_options(report, sub=True)
    add_report_arguments(report)

    web = commands.add_parser(
        "web",
        help="the explorer in a browser: one explorer process per tab (textual-serve)",
        description="Serve the explorer's terminal UI to browsers with textual-serve. "
        "--host and --port are the page's (default 127.0.0.1:8000); each tab gets its own "
        "explorer process, its server on a free loopback port, ended when the tab closes. "
        "The other options are passed to every explorer. Stop with Ctrl+C or SIGTERM.",
    )
    _add_server_options(web, sub=True)
    add_web_arguments(web)
    add_yourapp_commands(commands)
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    if not 0 <= args.port <= 65535:
        raise SystemExit(f"fastasync-explorer: --port must be 0 to 65535, not {args.port}")
    if args.stall_threshold_ms <= 0:
        raise SystemExit("fastasync-explorer: --stall-threshold-ms must be positive")
    monitor = MonitorConfig(
        project_code=SERVER_CODE,
        stall_threshold_s=args.stall_threshold_ms / 1000.0,
        task_book=not getattr(args, "no_task_book", False),
    )
    settings = Settings(
        host=args.host, port=args.port, blocking_mode=args.blocking, monitor=monitor
    )
    if args.data_dir is not None:
        settings = replace(settings, data_dir=args.data_dir.expanduser().resolve())
    database_url = args.database_url or os.environ.get("FASTASYNC_DATABASE_URL") or None
    if database_url:
        settings = replace(settings, database_url=database_url)
    redis_url = getattr(args, "redis_url", None) or os.environ.get("FASTASYNC_REDIS_URL")
    if redis_url:
        settings = replace(settings, redis_url=redis_url)
    return settings


def warn_if_exposed(settings: Settings) -> None:
    if not settings.is_loopback:
        print(
            f"fastasync-explorer: warning: listening on {settings.host}, reachable from other "
            "machines; this is a teaching server with deliberately blocking endpoints.",
            file=sys.stderr,
        )


def run_tui(settings: Settings) -> int:
    from explorer.app import ExplorerApp  # imported here so `serve` never loads Textual

    warn_if_exposed(settings)
    app = ExplorerApp(settings)
    app.run()
    return app.return_code or 0


def run_serve(settings: Settings, access_log: bool) -> int:
    from server.runner import ServerError, ServerHandle

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s"
    )
    # one INFO line per outbound call (the simulated upstreams) would drown the rest
    logging.getLogger("httpx").setLevel(logging.WARNING)
    warn_if_exposed(settings)

    async def serve() -> None:
        handle = ServerHandle(settings, access_log=access_log)
        await handle.start()
        loop = asyncio.get_running_loop()
        # First SIGINT/SIGTERM: graceful shutdown. A second one: stop waiting for clients.
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, handle.request_stop)
        try:
            await handle.wait()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    try:
        asyncio.run(serve())
    except ServerError as exc:
        print(f"fastasync-explorer: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    # what follows `--` after run/check is uvicorn's, kept from argparse
    argv, uvicorn_args = split_uvicorn_args(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if args.command in YOURAPP_COMMANDS:
        try:
            return run_yourapp_command(args, uvicorn_args, print)
        except YourAppError as exc:
            print(f"fastasync-explorer: {exc}", file=sys.stderr)
            return 2
    settings = settings_from(args)
    if args.command == "serve":
        return run_serve(settings, args.access_log)
    if args.command == "report":
        return run_report_command(args, settings)
    if args.command == "web":
        from explorer.tools.web import run_web  # textual-serve (aiohttp) only for this command

        return run_web(args)
    if args.command == "bench":
        if args.pattern:
            module = importlib.import_module(PATTERN_BENCHMARKS[args.pattern])
            code: int = module.main(args.pattern_args)
            return code
        if args.task_inspector:
            from explorer.tools.bench_tasks import run_task_inspector_bench

            return run_task_inspector_bench(args)
        if args.probe:
            from explorer.tools.bench_probe import run_probe_bench

            return run_probe_bench(args)
        if args.probe_asgi:
            from explorer.tools.bench_probe_asgi import run_probe_asgi_bench

            return run_probe_asgi_bench(args)
        if args.probe_cost:
            from explorer.tools.bench_probe import run_probe_cost_bench

            return run_probe_cost_bench(args)
        from explorer.tools.bench import run_bench

        return run_bench(args)
    return run_tui(settings)


if __name__ == "__main__":
    sys.exit(main())
