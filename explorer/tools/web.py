"""``fastasync-explorer web``: the explorer in a browser, with textual-serve.

textual-serve (Textual's own way to put an app in a browser) serves a page that draws a
terminal, and for each browser tab that opens it starts one process of the command it is
given, over a WebSocket. Here that command is the explorer itself, on a free port of its
own, so each tab has its own explorer and its own embedded server; closing the tab closes
the WebSocket, textual-serve tells the app to quit, and its process ends.

The page works offline: textual-serve's page links its terminal font from Google Fonts,
while the same font lies in its own static folder. The page is served from a copy of its
template in which that one link is replaced by an ``@font-face`` on the local file.
"""

from __future__ import annotations

import argparse
import errno
import ipaddress
import re
import shlex
import socket
import sys
import tempfile
from pathlib import Path

#: textual-serve's template, the one element that reaches the network, and its stand-in
TEMPLATE = "app_index.html"
GOOGLE_FONTS_LINK = re.compile(r"<link\s[^>]*fonts\.googleapis\.com[^>]*>", re.S)
LOCAL_FONT = """<style>
      @font-face { font-family: "Roboto Mono"; font-style: normal;
        src: url("{{ config.static.url }}fonts/RobotoMono-VariableFont_wght.ttf"); }
      @font-face { font-family: "Roboto Mono"; font-style: italic;
        src: url("{{ config.static.url }}fonts/RobotoMono-Italic-VariableFont_wght.ttf"); }
    </style>"""


class WebError(Exception):
    """Why ``web`` cannot start, in one sentence."""


def explorer_command(args: argparse.Namespace) -> str:
    """The shell command textual-serve runs for each tab: the explorer, its server on a
    free loopback port, with the options given to ``web`` that are the explorer's own.

    ``exec``: the shell textual-serve starts becomes the explorer, so the process that
    textual-serve waits for and stops is the explorer itself.
    """
    argv = [sys.executable, "-m", "fastasync_explorer", "--host", "127.0.0.1", "--port", "0"]
    if getattr(args, "blocking", False):
        argv.append("--blocking")
    for option in ("data_dir", "database_url", "redis_url", "stall_threshold_ms"):
        value = getattr(args, option, None)
        if value is not None:
            argv += ["--" + option.replace("_", "-"), str(value)]
    return "exec " + shlex.join(argv)


def offline_template(into: Path) -> Path:
    """textual-serve's page template, with its Google Fonts link replaced by the font
    files of its own static folder, written into ``into``: that folder."""
    import textual_serve

    original = Path(textual_serve.__file__).parent / "templates" / TEMPLATE
    text = GOOGLE_FONTS_LINK.sub(LOCAL_FONT, original.read_text(encoding="utf-8"))
    (into / TEMPLATE).write_text(text, encoding="utf-8")
    return into


def free_port(host: str) -> int:
    """A port nothing listens on now, on ``host``."""
    with socket.socket(_family(host)) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def check_port(host: str, port: int) -> None:
    """Fail in one sentence when ``host:port`` cannot be listened on."""
    with socket.socket(_family(host)) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                in_use = f"port {port} on {host} is in use: pick another with --port"
                raise WebError(in_use) from None
            raise WebError(f"cannot listen on {host}:{port}: {error.strerror}") from None


def _family(host: str) -> socket.AddressFamily:
    try:
        return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:  # a name: resolved by bind, on IPv4
        return socket.AF_INET


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def run_web(args: argparse.Namespace) -> int:
    """Serve the explorer to browsers until Ctrl+C or SIGTERM; 2 when it cannot start."""
    from textual_serve.server import Server

    host: str = args.host
    port: int = args.port
    try:
        port = free_port(host) if port == 0 else port
        check_port(host, port)
    except WebError as error:
        print(f"fastasync-explorer: {error}", file=sys.stderr)
        return 2
    if not is_loopback(host):
        print(
            f"fastasync-explorer: warning: the page listens on {host}, reachable from other "
            "machines; each visitor gets an explorer process on this machine, a teaching "
            "server with deliberately blocking endpoints"
            + ("" if args.public_url else " (give browsers elsewhere --public-url)")
            + ".",
            file=sys.stderr,
        )
    url = args.public_url or f"http://{host}:{port}"
    print(f"fastasync-explorer web: open {url} (one explorer per tab; Ctrl+C stops)")
    with tempfile.TemporaryDirectory(prefix="fastasync-web-") as templates:
        server = Server(
            explorer_command(args),
            host=host,
            port=port,
            title="fastasync-explorer",
            public_url=url,
            templates_path=offline_template(Path(templates)),
        )
        server.serve()
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``web``'s own option (``--host`` and ``--port``, shared with the other commands,
    are the page's here; each tab's explorer takes a free loopback port of its own)."""
    parser.add_argument(
        "--public-url",
        metavar="URL",
        help="the address browsers use to reach the page, when it is not http://HOST:PORT "
        "(behind a proxy, or with --host 0.0.0.0)",
    )
