"""``run``, ``attach`` and ``check``: the explorer's commands for a user's own app.

``run`` and ``check`` start the app in a child process (:class:`HostedApp`); ``attach``
reads a probe already in a running app. Every failure to get there is one sentence on
stderr and exit 2, and the Your app view never opens half-way.
"""

from __future__ import annotations

import argparse
import importlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from explorer.yourapp.check import add_check_parser, run_check
from explorer.yourapp.hosted import HostedApp, HostError, probe_info
from explorer.yourapp.target import ProbeTarget

if TYPE_CHECKING:
    from explorer.yourapp.check import Subcommands

#: the subcommands this module adds and runs
COMMANDS = ("run", "attach", "check")

YOURAPP_EPILOG = """\
your own app:
  fastasync-explorer run myproject.main:app               your app under the microscope
  fastasync-explorer run main:app --app-dir src -- --loop asyncio   uvicorn options after --
  fastasync-explorer attach http://127.0.0.1:8000         an app with install(app) in it
  fastasync-explorer check main:app --routes "GET /items/1" --budget 50ms   for CI
"""


def split_uvicorn_args(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """``argv`` without what follows ``--`` after ``run`` or ``check``, and that tail
    (uvicorn's options, which argparse must not see)."""
    words = list(argv)
    if "--" not in words:
        return words, []
    cut = words.index("--")
    if not any(word in ("run", "check") for word in words[:cut]):
        return words, []
    return words[:cut], words[cut + 1 :]


def _add_app_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="MODULE:APP", help="your ASGI app, as for uvicorn")
    parser.add_argument(
        "--app-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="the folder to import MODULE from, first on the path (default: the current one)",
    )
    parser.add_argument(
        "--stall-threshold-ms",
        type=float,
        default=argparse.SUPPRESS,
        metavar="MS",
        help="a loop iteration at least this long is a stall (default 15)",
    )


def add_commands(commands: Subcommands) -> None:
    """Add ``run``, ``attach`` and ``check`` to the explorer's subcommands."""
    run = commands.add_parser(
        "run",
        help="start your ASGI app under uvicorn with the probe in it, and look at it",
        description="Start MODULE:APP under uvicorn in a process of its own, with the probe "
        "installed, and open the Your app view on it: routes and a load driver, latency, "
        "stalls named by your line of code, tasks. uvicorn options go after --. Quitting "
        "the view stops the app.",
    )
    _add_app_options(run)
    run.add_argument("--port", type=int, default=0, help="your app's port (default: a free one)")
    run.add_argument("--token", default=None, help="the probe's token (default: none, loopback)")
    run.add_argument("--ready-timeout", type=float, default=30.0, help=argparse.SUPPRESS)
    attach = commands.add_parser(
        "attach",
        help="look at an app already running with install(app) in it",
        description="Open the Your app view on a running app that has the probe in it "
        "(from fastasync_probe import install; app = install(app)).",
    )
    attach.add_argument("url", metavar="URL", help="the app's base URL, http://host:port")
    attach.add_argument(
        "--token",
        default=None,
        help="the probe's token, needed unless on loopback (default: $FASTASYNC_PROBE_TOKEN)",
    )
    _add_app_options(add_check_parser(commands))


def _your_app_view() -> Callable[[ProbeTarget], int]:
    """The view's entry point, imported only now (Textual is heavy, ``check`` needs none)."""
    try:
        module = importlib.import_module("explorer.yourapp.app")
    except ModuleNotFoundError as exc:
        if exc.name == "explorer.yourapp.app":
            raise HostError("the Your app view is not part of this build") from None
        raise
    view: Callable[[ProbeTarget], int] = module.run_your_app
    return view


def run_app(args: argparse.Namespace, uvicorn_args: Sequence[str]) -> int:
    """``run``: the app in a child, the view on it; the child stopped when the view quits."""
    if not 0 <= args.port <= 65535:
        raise HostError(f"--port must be 0 to 65535, not {args.port}")
    hosted = HostedApp(
        args.target,
        app_dir=args.app_dir,
        port=args.port,
        token=args.token,
        stall_threshold_ms=args.stall_threshold_ms,
        uvicorn_args=uvicorn_args,
    )
    view: Callable[[ProbeTarget], int] | HostError
    try:
        hosted.start()
        # imported while the app starts (both take a moment); the app's own errors first
        try:
            view = _your_app_view()
        except HostError as exc:
            view = exc
        target = hosted.wait_ready(args.ready_timeout)
        if isinstance(view, HostError):
            raise view
    except HostError:
        hosted.stop()
        raise
    try:
        return view(target)
    finally:
        hosted.stop()


def attach(args: argparse.Namespace) -> int:
    """``attach``: the view on a running app, once its probe answered."""
    url = args.url if "://" in args.url else f"http://{args.url}"
    token = args.token or os.environ.get("FASTASYNC_PROBE_TOKEN") or None
    info = probe_info(url, token)
    view = _your_app_view()
    label = f"{url.rstrip('/')} (pid {info.get('pid')})"
    return view(ProbeTarget(url=url.rstrip("/"), label=label, token=token))


def run_command(
    args: argparse.Namespace, uvicorn_args: Sequence[str], out: Callable[[str], None]
) -> int:
    """Run the ``run``, ``attach`` or ``check`` in ``args`` (``check`` reports to ``out``):
    its exit status, or :class:`HostError` with the sentence of an exit 2."""
    if args.command == "run":
        return run_app(args, uvicorn_args)
    if args.command == "attach":
        return attach(args)
    return run_check(args, uvicorn_args, out)
