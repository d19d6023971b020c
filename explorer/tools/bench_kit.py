"""What every benchmark and the soak share: child servers, free ports, tables, output.

``fastasync-explorer bench`` (``explorer.tools.bench``), each pattern's own
``explorer/patterns/<slug>/bench.py`` and the soak (``explorer.tools.soak``) start their
servers as child processes with :func:`serve_process`, :func:`explorer_process` or
:func:`child_process`: each waits until the child serves, and stops it in a ``finally``
(a polite signal, then SIGTERM, then SIGKILL to its process group), so no server outlives
the run, and every wait is bounded.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import fcntl
import json
import os
import platform
import pty
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import IO, Any

import httpx

from explorer.own_process import own_env

#: the terminal the TUI gets: big enough that every pane lays out as it does for a user
TTY_COLUMNS, TTY_ROWS = 140, 45
READY_TIMEOUT_S = 20.0
#: after /monitor first answers, Textual is still mounting panes and doing first layout
SETTLE_S = 1.5
STOP_TIMEOUT_S = 10.0
KILL_TIMEOUT_S = 5.0
REQUEST_TIMEOUT_S = 30.0

ANSI_RE = re.compile(rb"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")

#: is the child on ``port`` ready yet (one quick, bounded try)
Probe = Callable[[int], bool]


class BenchError(Exception):
    """An expected failure (port, startup, timeout); the message is for the user."""


# -- output --------------------------------------------------------------------------------


def progress(message: str) -> None:
    """A progress line on stderr, so stdout stays the report."""
    print(message, file=sys.stderr, flush=True)


def say(text: str = "", *, error: bool = False) -> None:
    """One line of output, flushed: the report on stdout, failures on stderr."""
    print(text, file=sys.stderr if error else sys.stdout, flush=True)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "  ") -> str:
    """Plain-text columns: the first left-aligned, the others right-aligned."""
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        out = [
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return indent + "  ".join(out).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])


def fmt(value: float | None, spec: str) -> str:
    """``value`` formatted with ``spec``; ``-`` for a figure there is none of."""
    return "-" if value is None else format(value, spec)


def header_line(command: str = "bench") -> str:
    """Python version, platform, CPU count and date: what the figures depend on."""
    today = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    return (
        f"fastasync-explorer {command}: Python {platform.python_version()} "
        f"({platform.python_implementation()}), {platform.platform()}, "
        f"{os.cpu_count()} CPUs, {today}"
    )


def bench_parser(
    slug: str, description: str, *, json_option: bool = False
) -> argparse.ArgumentParser:
    """The command line of pattern ``slug``'s benchmark (``python -m`` its ``bench`` module).

    With ``json_option``, ``--json FILE`` too: where :func:`write_json` puts the figures.
    """
    parser = argparse.ArgumentParser(
        prog=f"python -m explorer.patterns.{slug}.bench", description=description
    )
    if json_option:
        parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    return parser


def write_json(path: str, figures: Mapping[str, Any], command: str) -> bool:
    """Write ``figures`` to ``path``; False, having said why on stderr, if it cannot."""
    try:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(figures, fh, indent=2, default=str)
            fh.write("\n")
    except OSError as exc:
        say(f"fastasync-explorer {command}: cannot write {path}: {exc}", error=True)
        return False
    return True


# -- ports and readiness -------------------------------------------------------------------


def free_port() -> int:
    """A port nothing listens on right now (the OS picks it; the child binds it next)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def base_url(port: int) -> str:
    """The loopback URL of a child server on ``port``."""
    return f"http://127.0.0.1:{port}"


def answers_monitor(port: int) -> bool:
    """The explorer's app is up: ``GET /monitor`` answers 200."""
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(f"{base_url(port)}/monitor", timeout=1.0).status_code == 200
    return False


def accepts_connections(port: int) -> bool:
    """Something listens on ``port`` (a server that speaks no plain HTTP)."""
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1.0):
        return True
    return False


def last_line(output: bytes) -> str:
    """The last non-empty line of a child's output, terminal escape codes stripped."""
    text = ANSI_RE.sub(b"", output).decode("utf-8", "replace")
    lines = [line.strip() for line in re.split(r"[\r\n]+", text) if line.strip()]
    return lines[-1][:200] if lines else ""


def wait_until_serving(
    port: int,
    proc: subprocess.Popen[bytes],
    what: str,
    last_words: Callable[[], str],
    ready: Probe = answers_monitor,
    timeout_s: float = READY_TIMEOUT_S,
) -> None:
    """Poll ``ready(port)`` until it holds; raise BenchError on exit or timeout.

    ``last_words`` returns the child's last line of output, to say why it failed.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        code = proc.poll()
        if code is not None:
            detail = last_words()
            raise BenchError(
                f"{what} exited with code {code} before serving on port {port}"
                + (f": {detail}" if detail else "")
            )
        if ready(port):
            return
        time.sleep(0.1)
    detail = last_words()
    raise BenchError(
        f"{what} did not answer on port {port} within {timeout_s:.0f} s"
        + (f" (last output: {detail})" if detail else "")
    )


# -- child processes -----------------------------------------------------------------------


def stop_process(
    proc: subprocess.Popen[bytes], first: signal.Signals | None, *, group: bool
) -> int | None:
    """Stop ``proc``: ``first`` (None: already asked to), then SIGTERM, then SIGKILL.

    The polite ``first`` goes to the process itself; with ``group`` the fallbacks go to
    its process group (it was started in a session of its own), so any helper it forked
    goes with it. Returns the exit code (None if even SIGKILL did not reap it in time).
    """
    if proc.poll() is not None:
        return proc.returncode
    if first is not None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(first)
    try:
        return proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pass
    for sig in (signal.SIGTERM, signal.SIGKILL):
        progress(f"  process {proc.pid} did not stop; sending {sig.name}")
        with contextlib.suppress(ProcessLookupError):
            if group:
                os.killpg(proc.pid, sig)
            else:
                proc.send_signal(sig)
        try:
            return proc.wait(timeout=KILL_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            continue
    return None


class Child:
    """A child server and its log (an anonymous file: never blocks the child as a pipe can)."""

    def __init__(
        self, proc: subprocess.Popen[bytes], log: IO[bytes], stop_signal: signal.Signals
    ) -> None:
        self.proc = proc
        self._log = log
        self._stop_signal = stop_signal

    def stop(self) -> int | None:
        """Stop it (once; again is a no-op) and return its exit code."""
        return stop_process(self.proc, self._stop_signal, group=True)

    @property
    def log_bytes(self) -> int:
        """How much the child has written so far."""
        return os.fstat(self._log.fileno()).st_size

    def _tail(self, size: int) -> bytes:
        # pread, not seek+read: the child shares this file's offset and writes at it.
        end = self.log_bytes
        start = max(0, end - size)
        return os.pread(self._log.fileno(), end - start, start)

    def log_tail(self, size: int = 8192) -> str:
        """The last ``size`` bytes of the log, as text."""
        return self._tail(size).decode("utf-8", "replace")

    def last_words(self) -> str:
        """The last line the child wrote (why it failed to start, typically)."""
        return last_line(self._tail(8192))


@contextlib.contextmanager
def child_process(
    command: Sequence[str],
    port: int,
    what: str,
    *,
    ready: Probe = answers_monitor,
    stop_signal: signal.Signals = signal.SIGINT,
    ready_timeout_s: float = READY_TIMEOUT_S,
    env: Mapping[str, str] | None = None,
) -> Iterator[Child]:
    """``command`` (which serves on ``port``) as a child, ready when the block starts.

    ``env`` defaults to this environment with the explorer's own packages on the path; a
    user's app (``examples/``) gets a plain one instead.
    """
    with tempfile.TemporaryFile() as log:
        # A session of its own: a Ctrl+C at the bench's terminal is handled by us, once.
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=own_env() if env is None else dict(env),
            start_new_session=True,
        )
        child = Child(proc, log, stop_signal)
        try:
            wait_until_serving(port, proc, what, child.last_words, ready, ready_timeout_s)
            yield child
        finally:
            child.stop()


@contextlib.contextmanager
def serve_process(
    port: int, *, scratch: bool = False, ready_timeout_s: float = READY_TIMEOUT_S
) -> Iterator[Child]:
    """``fastasync-explorer serve`` on ``port``, serving when the block starts.

    ``scratch``: with a data directory of its own that goes when the block ends (else the
    user's, as ``serve`` has by default).
    """
    command = [sys.executable, "-m", "explorer.cli", "serve", "--port", str(port)]
    with contextlib.ExitStack() as stack:
        if scratch:
            data_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="fastasync-"))
            command += ["--data-dir", data_dir]
        yield stack.enter_context(
            child_process(
                command, port, "fastasync-explorer serve", ready_timeout_s=ready_timeout_s
            )
        )


class PtyDrain(threading.Thread):
    """Reads and discards the pty master so the TUI never blocks on a full terminal.

    Keeps the last few KB, so an early exit ("port in use") can be reported in words.
    """

    def __init__(self, master_fd: int) -> None:
        super().__init__(name="pty-drain", daemon=True)
        self._fd = master_fd
        self._halt = threading.Event()
        self._tail: deque[bytes] = deque(maxlen=64)

    def run(self) -> None:
        """Read until the TUI closes the terminal or stop() is called."""
        # select() with a timeout rather than a bare blocking read, so stop() is honoured
        # promptly and the fd is never closed under a read in progress.
        while not self._halt.is_set():
            try:
                ready, _, _ = select.select([self._fd], [], [], 0.2)
                if not ready:
                    continue
                data = os.read(self._fd, 65536)
            except OSError:  # EIO: every slave fd is closed, the TUI is gone
                return
            if not data:
                return
            self._tail.append(data)

    def stop(self) -> None:
        """Stop reading (within one select timeout) and wait for the thread."""
        self._halt.set()
        self.join(timeout=2.0)

    def last_line(self) -> str:
        """The last non-empty line the TUI wrote (an exit message, typically)."""
        return last_line(b"".join(self._tail))


@contextlib.contextmanager
def explorer_process(
    port: int, *, options: Sequence[str] = (), keys: bytes = b""
) -> Iterator[subprocess.Popen[bytes]]:
    """The real TUI in a 140x45 pseudo-terminal on ``port``, serving when the block starts
    (with command-line ``options``, and ``keys`` typed once it has settled)."""
    master, slave = pty.openpty()
    drain: PtyDrain | None = None
    proc: subprocess.Popen[bytes] | None = None
    try:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", TTY_ROWS, TTY_COLUMNS, 0, 0))
        env = dict(os.environ, TERM="xterm-256color")
        env.pop("TEXTUAL", None)  # no devtools or other debug features from the caller
        proc = subprocess.Popen(
            [sys.executable, "-m", "explorer.cli", "--port", str(port), *options],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=own_env(env),
            start_new_session=True,
        )
        os.close(slave)  # the child has it; ours would keep the pty open after it exits
        slave = -1
        drain = PtyDrain(master)
        drain.start()
        wait_until_serving(port, proc, "the explorer TUI", drain.last_line)
        time.sleep(SETTLE_S)
        if keys:
            os.write(master, keys)
            time.sleep(SETTLE_S)
        yield proc
    finally:
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(OSError):
                os.write(master, b"q")  # the app's own quit: graceful server shutdown
            stop_process(proc, None, group=True)
        if drain is not None:
            drain.stop()
        for fd in (master, slave):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
