"""Run the app under uvicorn on a loop someone else owns (Textual's), or standalone.

Rules of the shared loop (docs/architecture.md): no signal capture when embedded, no
logging config of uvicorn's own (``log_config=None``: records go to whatever handlers the
host installed), the port bound by us first so "port taken" is a sentence rather than a
traceback, and a bounded graceful shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import tempfile
from collections.abc import Callable, Generator
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from fastasync_probe.monitor import TaskBook
from server.app import create_app
from server.settings import SERVER_CODE, Settings
from server.state import state_of

log = logging.getLogger("fastasync.server")


class ServerError(Exception):
    """The server could not start; the message is meant for the user."""


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening-ready TCP socket on ``host:port`` (port 0: any free port)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ServerError(f"Cannot listen on {host!r}: {exc.strerror}.") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ServerError(
                f"Port {port} on {host} is already in use. "
                "Choose another with --port, or --port 0 for any free port."
            ) from None
        raise ServerError(f"Cannot listen on {host}:{port}: {exc.strerror}.") from None
    return sock


def prepare_data_dir(path: Path) -> None:
    """Create the data directory if needed and prove it writable, or say why it is not."""
    hint = "Choose another with --data-dir."
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-check-"):
            pass
    except NotADirectoryError:
        raise ServerError(f"The data directory {path} is not a directory. {hint}") from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ServerError(f"The data directory {path} is not usable: {reason}. {hint}") from None


class EmbeddedUvicorn(uvicorn.Server):
    """A ``uvicorn.Server`` that leaves signals to its host.

    In the explorer Textual owns the terminal; standalone, ``serve`` installs its own
    handlers (uvicorn's would re-raise the signal after shutdown, ending the process with
    130 or death by SIGTERM instead of a clean exit).
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    def __init__(self, config: uvicorn.Config, stopping: Callable[[], None] = lambda: None) -> None:
        super().__init__(config)
        self._stopping = stopping

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Tell the app it is stopping (its hooks end deliberate waits), then shut down:
        a request that waits on purpose answers within uvicorn's grace, not cancelled."""
        self._stopping()
        await super().shutdown(sockets)


class ServerHandle:
    """Start, address and stop one server instance on the running loop."""

    def __init__(
        self, settings: Settings, app: FastAPI | None = None, *, access_log: bool = False
    ) -> None:
        self.settings = settings
        self.app = app or create_app(settings)
        self._access_log = access_log
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._socket: socket.socket | None = None
        self.host = settings.host
        self.port = settings.port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def shutdown_budget_s(self) -> float:
        """The longest a graceful stop may take before the server task is cancelled."""
        return self.settings.graceful_timeout_s + self.settings.job_grace_s + 1.0

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Bind, run the lifespan, accept connections; raise ServerError if it can't."""
        prepare_data_dir(self.settings.data_dir)
        sock = bind_socket(self.settings.host, self.settings.port)
        self._socket = sock
        self.host, self.port = sock.getsockname()[:2]
        # Patterns that call the server over real HTTP (simulated upstreams) need its
        # address before the lifespan runs.
        state_of(self.app).base_url = self.url
        config = uvicorn.Config(
            self.app,
            log_config=None,
            access_log=self._access_log,
            lifespan="on",
            ws="websockets-sansio",
            timeout_graceful_shutdown=self.settings.graceful_timeout_s,
        )
        self._server = server = EmbeddedUvicorn(config, state_of(self.app).stopping)
        self._task = asyncio.create_task(self._serve(server, sock), name="uvicorn")
        self._task.add_done_callback(self._report_end)
        while not server.started:
            if self._task.done():
                await self._task  # raises the startup error
                raise ServerError("The server stopped during startup; see the log.")
            await asyncio.sleep(0.005)
        log.info("serving on %s (docs at %s/docs)", self.url, self.url)

    async def _serve(self, server: uvicorn.Server, sock: socket.socket) -> None:
        try:
            await server.serve(sockets=[sock])
        except SystemExit:  # uvicorn exits the process when the lifespan fails to start
            raise ServerError("The app failed to start; see the log.") from None
        finally:
            sock.close()

    def _report_end(self, task: asyncio.Task[None]) -> None:
        """Never lose a server crash: log it (the UI's log pane shows it)."""
        if task.cancelled():
            log.warning("the server task was cancelled")
        elif isinstance(error := task.exception(), ServerError):
            log.error("%s", error)  # meant for the user as it is: no traceback
        elif error is not None:
            log.error("the server stopped with an error: %r", error, exc_info=error)

    async def wait(self) -> None:
        """Until the server has stopped (after :meth:`request_stop`, or on its own)."""
        if self._task is not None:
            await self._task

    def request_stop(self) -> None:
        """Begin a graceful shutdown; a second call stops waiting for connections."""
        if self._server is None:
            return
        if self._server.should_exit:
            self._server.force_exit = True
        self._server.should_exit = True

    async def stop(self) -> None:
        """Graceful shutdown within the settings' budget (+1 s), then cancel."""
        task, server = self._task, self._server
        if task is None or server is None:
            return
        server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=self.shutdown_budget_s)
        except TimeoutError:
            log.error("server did not stop in time; cancelling it")
            server.force_exit = True
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        finally:
            self._task = None
            self._note_pending()

    def _note_pending(self) -> None:
        """Log the server's tasks still pending now that it has stopped (a leak, or work
        cut short); the task inspector keeps them (``pending_at_shutdown``)."""
        pending = TaskBook.for_loop().note_shutdown(SERVER_CODE.owns)
        if pending:
            names = "; ".join(
                f"{t['name']} ({t['coro']}, created at {t['created_at'] or '?'})"
                for t in pending[:10]
            )
            log.warning(
                "%d task(s) still pending after the server stopped: %s", len(pending), names
            )
