"""The parent side of ``python -m fastasync_probe.host``: a user's app in a child process.

The child gets this process's plain environment (never the explorer's own packages put
first), the app's folder first on its path, its stdin as a lifeline (it stops when this
process goes away) and its stdout as a line protocol; its stderr goes to a log file.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import httpx

from explorer.yourapp.target import ProbeTarget
from fastasync_probe import PREFIX, PROTOCOL

#: how long a stopped child has for its graceful shutdown before it is killed
STOP_GRACE_S = 5.0


class HostError(Exception):
    """Why the app could not be started or reached, as one sentence for the user."""


def _last_log_line(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1].strip()[:200] if lines else ""


class HostedApp:
    """A user's ASGI app served by a child process with the probe in it.

    ``start()`` then ``wait_ready()`` (or ``with HostedApp(...) as hosted:`` and
    ``hosted.wait_ready()``); ``stop()`` always leaves no process behind.
    """

    def __init__(
        self,
        target: str,
        *,
        app_dir: Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        stall_threshold_ms: float | None = None,
        code: Sequence[Path] = (),
        uvicorn_args: Sequence[str] = (),
        log_path: Path | None = None,
    ) -> None:
        self.target = target
        self.token = token
        self.log_path = log_path
        #: the log is a temporary file of ours (removed after a clean run; kept when the
        #: app failed to start, since the error names it)
        self._owns_log = log_path is None
        argv = [sys.executable, "-m", "fastasync_probe.host", target, "--host", host]
        argv += ["--port", str(port), "--exit-with-stdin"]
        argv += ["--app-dir", str((app_dir or Path.cwd()).expanduser().resolve())]
        if token:
            argv += ["--token", token]
        if stall_threshold_ms is not None:
            argv += ["--stall-threshold-ms", str(stall_threshold_ms)]
        for folder in code:
            argv += ["--code", str(folder.expanduser().resolve())]
        if uvicorn_args:
            argv += ["--", *uvicorn_args]
        self.argv = argv
        self._process: subprocess.Popen[str] | None = None
        self._events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._ready: ProbeTarget | None = None

    @property
    def pid(self) -> int | None:
        """The child's pid once started."""
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        """Start the child (once); :meth:`wait_ready` says whether the app came up."""
        if self._process is not None:
            return
        if self.log_path is None:
            handle, name = tempfile.mkstemp(prefix="fastasync-app-", suffix=".log")
            os.close(handle)
            self.log_path = Path(name)
        with self.log_path.open("w") as log:
            # the plain environment: the child must not find the explorer's own packages
            self._process = subprocess.Popen(
                self.argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                env=dict(os.environ),
            )
        assert self._process.stdout is not None
        threading.Thread(
            target=self._read_events, args=(self._process.stdout,), daemon=True
        ).start()

    def _read_events(self, stdout: IO[str]) -> None:
        for line in stdout:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue  # the host writes nothing else; a stray line is not ours to parse
            if isinstance(event, dict):
                self._events.put(event)
        self._events.put(None)  # end of stdout: the child is gone

    def wait_ready(self, timeout: float = 30.0) -> ProbeTarget:
        """The app's :class:`ProbeTarget` once it serves, else :class:`HostError`
        (the child is then stopped)."""
        if self._ready is not None:
            return self._ready
        self.start()
        assert self._process is not None
        try:
            event = self._events.get(timeout=timeout)
        except queue.Empty:
            self.stop()
            raise HostError(
                f"{self.target} was not serving after {timeout:g} s (its log: {self.log_path})"
            ) from None
        if event is not None and event.get("event") == "ready":
            self._ready = ProbeTarget(
                url=str(event["url"]),
                label=self.target,
                token=self.token,
                log_path=self.log_path,
                pid=self._process.pid,
            )
            return self._ready
        # it said why (or its stdout ended): let it exit on its own before stop() signals
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(STOP_GRACE_S)
        self.stop()
        if event is not None and event.get("event") == "error":
            if self._owns_log and self.log_path is not None:  # the sentence says it all
                self.log_path.unlink(missing_ok=True)
            raise HostError(str(event.get("message") or "the app could not start"))
        assert self.log_path is not None
        last = _last_log_line(self.log_path)
        raise HostError(
            f"the app's process ended (exit {self._process.returncode}) before serving"
            + (f": {last}" if last else "")
            + f" (its log: {self.log_path})"
        )

    def stop(self, grace_s: float = STOP_GRACE_S) -> int | None:
        """SIGINT (uvicorn's graceful shutdown), then SIGKILL after ``grace_s``; the exit
        status (None if never started)."""
        process = self._process
        if process is None:
            return None
        ended_on_its_own = process.poll() is not None
        if not ended_on_its_own:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(grace_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                pipe.close()
        served_and_stopped = self._ready is not None and not ended_on_its_own
        if self._owns_log and served_and_stopped and self.log_path is not None:
            self.log_path.unlink(missing_ok=True)
        return process.returncode

    def __enter__(self) -> HostedApp:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def probe_info(url: str, token: str | None = None, timeout: float = 5.0) -> dict[str, Any]:
    """``GET {url}/_fastasync``: the probe's info, or :class:`HostError` saying why not."""
    base = url.rstrip("/")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = httpx.get(f"{base}{PREFIX}", headers=headers, timeout=timeout)
    except httpx.TimeoutException:
        raise HostError(f"{base} did not answer within {timeout:g} s") from None
    except (httpx.HTTPError, OSError):
        raise HostError(f"nothing answers at {base}") from None
    if response.status_code == 403:
        raise HostError(
            f"the probe at {base} refused this explorer (a non-loopback client needs its "
            "token): give it with --token or FASTASYNC_PROBE_TOKEN"
        )
    try:
        info = response.json() if response.status_code == 200 else None
    except ValueError:
        info = None
    if not isinstance(info, dict) or info.get("probe") != "fastasync_probe":
        raise HostError(
            f"{base} answers but has no fastasync probe: add `install(app)` "
            "(from fastasync_probe import install) to the app"
        )
    if info.get("protocol") != PROTOCOL:
        raise HostError(
            f"the probe at {base} speaks protocol {info.get('protocol')}, this explorer "
            f"{PROTOCOL}: install the same version of fastasync-explorer on both sides"
        )
    return info
