"""``python -m fastasync_probe.host module:app``: a user's ASGI app, under uvicorn, probed.

The explorer starts it (``run``, ``check``) with the app's folder first on the path. It
speaks to its parent on stdout, one JSON line per event, and nothing else goes there
(uvicorn's logs and the app's prints go to stderr):

- ``{"event": "ready", "url": ..., "pid": ..., "loop": ...}`` once serving;
- ``{"event": "error", "message": "<one sentence>"}``, then exit 2: the module is not
  found or raised on import, the attribute is missing or not an ASGI app, the lifespan
  startup raised, the port is taken, an option is wrong.

SIGINT or SIGTERM: uvicorn's graceful shutdown (the lifespan shutdown runs), exit 0.
Options after ``--`` are ``uvicorn.Config`` keyword arguments: ``-- --loop asyncio
--timeout-keep-alive 10 --no-proxy-headers``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import importlib
import inspect
import ipaddress
import json
import os
import signal
import socket
import sys
import threading
import traceback
import typing
from collections.abc import Iterator, MutableMapping, Sequence
from pathlib import Path
from typing import IO, Any

import uvicorn
import uvicorn.config

from fastasync_probe import install
from fastasync_probe.monitor import MonitorConfig, ProjectCode

#: exit status of every failure to start (the parent reads the sentence, not the number)
EXIT_ERROR = 2

#: uvicorn options the host sets itself or that cannot work under it, and why
NOT_HERE: dict[str, str] = {
    "app": "the app is the TARGET argument",
    "host": "use --host before --",
    "port": "use --port before --",
    "fd": "the host binds its own socket",
    "uds": "the host listens on TCP",
    "reload": "a reloader would restart the app without the probe",
    "workers": "the probe watches one process, so one worker",
    "interface": "the probe needs an ASGI 3 app",
    "factory": "point TARGET at the app itself",
    "log_config": "the host keeps uvicorn's logging on stderr",
}
_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}


class HostError(Exception):
    """Why the app cannot be served, as one sentence for the user."""


def _sentence(exc: BaseException, roots: Sequence[Path]) -> str:
    """``ValueError: bad (at /app/main.py:3)``: the exception, and where the user's own code
    raised it (else the innermost real frame)."""
    text = str(exc).strip().splitlines()
    message = f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__
    if isinstance(exc, SyntaxError) and exc.filename and exc.lineno:
        return f"{message} (at {exc.filename}:{exc.lineno})"
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith("<")]
    own = ProjectCode.of(*roots)
    mine = [f for f in frames if own.owns(f.filename)]
    where = (mine or frames)[-1:] if frames else []
    return f"{message} (at {where[0].filename}:{where[0].lineno})" if where else message


def load_app(target: str, app_dir: Path, roots: Sequence[Path]) -> Any:
    """Import ``module:attribute`` from ``app_dir`` (first on the path, as uvicorn does)."""
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise HostError(f"{target!r} is not MODULE:ATTRIBUTE (for example myproject.main:app)")
    sys.path.insert(0, str(app_dir))
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing and (module_name == missing or module_name.startswith(missing + ".")):
            raise HostError(
                f"no module named {missing!r} in {app_dir} (is --app-dir the folder that holds it?)"
            ) from None
        raise HostError(f"importing {module_name} raised {_sentence(exc, roots)}") from None
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # SystemExit too: the module's own business, a sentence
        raise HostError(f"importing {module_name} raised {_sentence(exc, roots)}") from None
    found: Any = module
    for part in attribute.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise HostError(
                f"module {module_name} ({getattr(module, '__file__', '?')}) has no attribute "
                f"{attribute!r}"
            ) from None
    check_asgi(found, target)
    return found


def check_asgi(candidate: Any, target: str) -> None:
    """An ASGI 3 app: ``async def app(scope, receive, send)`` or an object with that call."""
    if inspect.isroutine(candidate):
        what = f"{target} is a function"
    else:
        what = f"{target} is {candidate!r:.60} (of type {type(candidate).__name__})"
    shape = "an ASGI app is `async def app(scope, receive, send)` or an object with one"
    if inspect.isclass(candidate):
        raise HostError(f"{target} is a class, not an ASGI app: point at an instance of it")
    if not callable(candidate):
        raise HostError(f"{what}, not an ASGI app ({shape})")
    call = candidate if inspect.isroutine(candidate) else type(candidate).__call__
    if not inspect.iscoroutinefunction(call):
        hint = "if it builds the app, call it in your module: app = create_app()"
        raise HostError(f"{what}, not an ASGI app: its call is not async ({shape}; {hint})")
    try:
        parameters = inspect.signature(candidate).parameters.values()
    except (TypeError, ValueError):  # a builtin or an odd wrapper: let it try
        return
    kinds = [p.kind for p in parameters]
    if inspect.Parameter.VAR_POSITIONAL not in kinds and len(kinds) < 3:
        raise HostError(f"{what}, not an ASGI app: it takes {len(kinds)} arguments ({shape})")


def _uvicorn_value(name: str, raw: str | None) -> Any:
    """``raw`` as the type ``uvicorn.Config(name=...)`` wants, or a sentence why not."""
    parameters = inspect.signature(uvicorn.Config.__init__).parameters
    flag = f"--{name.replace('_', '-')}"
    if name in NOT_HERE:
        raise HostError(f"uvicorn option {flag} is not for here: {NOT_HERE[name]}")
    if name not in parameters or name == "self":
        raise HostError(f"uvicorn has no option {flag}")
    tokens = {t.strip() for t in str(parameters[name].annotation).split("|")}
    if "bool" in tokens:
        if raw is None or raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise HostError(f"uvicorn option {flag} takes true or false, not {raw!r}")
    if raw is None:
        raise HostError(f"uvicorn option {flag} needs a value")
    choices: list[str] = []
    for token in tokens:
        alias = getattr(uvicorn.config, token, None)
        if typing.get_origin(alias) is typing.Literal:
            choices += [str(choice) for choice in typing.get_args(alias)]
    if name == "log_level":
        choices = list(uvicorn.config.LOG_LEVELS)
    # a str beside the choices is an import string ("module:attr") of one's own
    if choices and raw not in choices and not ("str" in tokens and ":" in raw):
        raise HostError(f"uvicorn option {flag} is one of {', '.join(choices)}, not {raw!r}")
    for kind in (int, float):
        if kind.__name__ in tokens:
            try:
                return kind(raw)
            except ValueError:
                raise HostError(f"uvicorn option {flag} takes a number, not {raw!r}") from None
    if choices or tokens & {"str", "os.PathLike[str]", "list[str]"}:
        return raw
    raise HostError(f"uvicorn option {flag} cannot be given on the command line")


def uvicorn_options(extra: Sequence[str]) -> dict[str, Any]:
    """``--name value`` pairs (``--name=value``, a bare ``--flag``, ``--no-flag``) as
    ``uvicorn.Config`` keyword arguments."""
    options: dict[str, Any] = {}
    words = list(extra)
    while words:
        word = words.pop(0)
        if not word.startswith("--") or len(word) < 3:
            raise HostError(f"uvicorn options are --name value pairs; {word!r} is not one")
        name, has_value, raw = word[2:].partition("=")
        name = name.replace("-", "_")
        value: str | None = raw if has_value else None
        if not has_value and words and not words[0].startswith("--"):
            value = words.pop(0)
        if name.startswith("no_") and value is None and name[3:] not in NOT_HERE:
            with contextlib.suppress(HostError):
                if _uvicorn_value(name[3:], None) is True:
                    options[name[3:]] = False
                    continue
        options[name] = _uvicorn_value(name, value)
    return options


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so that a taken port is a sentence, not a log line."""
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        family = socket.AF_INET  # a name: resolved by bind()
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise HostError(f"port {port} on {host} is already in use") from None
        raise HostError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(False)
    return sock


class LifespanWatch:
    """Between uvicorn and the app: remembers why the lifespan startup failed."""

    def __init__(self, app: Any, roots: Sequence[Path]) -> None:
        self.app, self.roots = app, roots
        self.raised: BaseException | None = None
        self.failed_message: str | None = None

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            return await self.app(scope, receive, send)  # type: ignore[no-any-return]

        async def watched_send(message: MutableMapping[str, Any]) -> None:
            if message.get("type") == "lifespan.startup.failed":
                self.failed_message = str(message.get("message") or "")
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        except BaseException as exc:
            self.raised = exc
            raise

    def why(self) -> str:
        """The sentence for a lifespan startup that failed."""
        if self.raised is not None:
            return f"the app's lifespan startup raised {_sentence(self.raised, self.roots)}"
        lines = (self.failed_message or "").strip().splitlines()
        detail = f": {lines[-1][:200]}" if lines else " (its log says why)"
        return f"the app's lifespan startup failed{detail}"


class HostServer(uvicorn.Server):
    """uvicorn's server, saying "ready" (or why not) on the protocol channel."""

    def __init__(self, config: uvicorn.Config, channel: IO[str], url: str, watch: LifespanWatch):
        super().__init__(config)
        self.channel, self.url, self.watch = channel, url, watch
        self.failure: str | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets)
        except SystemExit:  # uvicorn's way out of a failed lifespan startup
            self.failure = self.watch.why()
            self.should_exit = True
            return
        if self.started:
            loop = type(asyncio.get_running_loop())
            name = f"{loop.__module__}.{loop.__qualname__}"
            emit(self.channel, event="ready", url=self.url, pid=os.getpid(), loop=name)

    def exit_at_end_of_stdin(self) -> None:
        """Read stdin to its end, then shut down: no app outlives the explorer."""
        # the raw fd, not sys.stdin: a daemon thread blocked in a buffered read holds its
        # lock, and the interpreter then aborts at exit
        with contextlib.suppress(OSError):
            while os.read(0, 4096):
                pass
        self.should_exit = True

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn's own re-raises the signal once shut down, which would end the process
        # with a KeyboardInterrupt (or killed by SIGTERM); a requested stop here is exit 0.
        # (The host runs on its main thread, where signal handlers can be set.)
        signals = (signal.SIGINT, signal.SIGTERM)
        saved = {sig: signal.signal(sig, self.handle_exit) for sig in signals}
        try:
            yield
        finally:
            for sig, handler in saved.items():
                signal.signal(sig, handler)


def emit(channel: IO[str], **event: Any) -> None:
    """One protocol line to the parent."""
    channel.write(json.dumps(event) + "\n")
    channel.flush()


def protocol_channel() -> IO[str]:
    """The real stdout, for protocol lines only; fd 1 (print, uvicorn's access log) goes to
    stderr from now on, so nothing else can ever land in the parent's protocol."""
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8")
    sys.stdout.flush()
    os.dup2(2, 1)
    return channel


class _Parser(argparse.ArgumentParser):
    """argparse, with its complaints as a :class:`HostError` (a protocol line), not usage."""

    def error(self, message: str) -> typing.NoReturn:
        raise HostError(f"bad host arguments: {message}")


def build_parser() -> argparse.ArgumentParser:
    """The host's own options (uvicorn's come after ``--``)."""
    parser = _Parser(
        prog="python -m fastasync_probe.host",
        description="Serve an ASGI app under uvicorn with the fastasync probe installed.",
    )
    parser.add_argument("target", metavar="MODULE:APP")
    parser.add_argument("--app-dir", type=Path, default=Path.cwd(), metavar="DIR")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--token", default=None)
    parser.add_argument("--stall-threshold-ms", type=float, default=15.0, metavar="MS")
    # the folders of the app's own code, what a stall may blame (default: --app-dir)
    parser.add_argument("--code", type=Path, action="append", default=[], metavar="DIR")
    # the parent's lifeline: stop serving once stdin ends (the parent went away)
    parser.add_argument("--exit-with-stdin", action="store_true")
    return parser


def prepare(argv: Sequence[str], channel: IO[str]) -> tuple[HostServer, socket.socket]:
    """Everything before serving; each failure is a :class:`HostError`."""
    words = list(argv)
    extra: list[str] = []
    if "--" in words:
        extra, words = words[words.index("--") + 1 :], words[: words.index("--")]
    args = build_parser().parse_args(words)
    if not 0 <= args.port <= 65535:
        raise HostError(f"--port must be 0 to 65535, not {args.port}")
    if args.stall_threshold_ms <= 0:
        raise HostError("--stall-threshold-ms must be positive")
    app_dir: Path = args.app_dir.expanduser().resolve()
    if not app_dir.is_dir():
        raise HostError(f"--app-dir {args.app_dir} is not a folder")
    roots = [Path(code).expanduser().resolve() for code in args.code] or [app_dir]
    # a bounded shutdown: a request still in flight must not keep a stopped app alive
    # (uvicorn waits for every one otherwise); the explorer kills it after 5 s
    options = {"access_log": False, "timeout_graceful_shutdown": 3, **uvicorn_options(extra)}
    app = load_app(args.target, app_dir, roots)
    config = MonitorConfig(stall_threshold_s=args.stall_threshold_ms / 1000.0)
    watch = LifespanWatch(install(app, token=args.token, code=roots, config=config), roots)
    try:
        uvicorn_config = uvicorn.Config(watch, host=args.host, port=args.port, **options)
        uvicorn_config.load()
    except (Exception, SystemExit) as exc:
        raise HostError(f"uvicorn refused the options: {type(exc).__name__}: {exc}") from None
    sock = bind(args.host, args.port)
    host, port = sock.getsockname()[:2]
    if host in {"0.0.0.0", "::"}:
        host = "127.0.0.1" if host == "0.0.0.0" else "::1"
    scheme = "https" if uvicorn_config.is_ssl else "http"
    url = f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}"
    server = HostServer(uvicorn_config, channel, url, watch)
    if args.exit_with_stdin:
        threading.Thread(target=server.exit_at_end_of_stdin, daemon=True).start()
    return server, sock


def main(argv: Sequence[str] | None = None) -> int:
    channel = protocol_channel()
    try:
        server, sock = prepare(sys.argv[1:] if argv is None else argv, channel)
    except HostError as exc:
        emit(channel, event="error", message=str(exc))
        return EXIT_ERROR
    except KeyboardInterrupt:  # stopped while the app was still importing
        return 0
    try:
        server.run(sockets=[sock])
    except SystemExit as exc:  # uvicorn's sys.exit() on a loop it could not set up
        if not server.started:
            emit(
                channel,
                event="error",
                message=f"uvicorn could not start (exit {exc.code}); its log says why",
            )
            return EXIT_ERROR
        raise
    finally:
        sock.close()
    if server.failure is not None:
        emit(channel, event="error", message=server.failure)
        return EXIT_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main())
