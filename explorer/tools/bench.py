"""``fastasync-explorer bench``: what the explorer costs, and how well it measures.

Three figures, in one run, each against its baseline:

1. Throughput of ``GET /basics/async?delay=0`` with the real TUI running (gauges live, in
   a pseudo-terminal) versus ``fastasync-explorer serve`` (the same app, no UI), loaded
   the same way by ``explorer.tools.loadgen`` in a process of its own.
2. Idle event-loop lag of the TUI versus a bare ``asyncio.run`` loop with the same monitor.
3. Stall accuracy: a ``time.sleep(d)`` inside ``async def`` against what the watchdog
   reports for it.

Everything runs as child processes, each stopped in a ``finally`` so no server outlives
the benchmark, and every wait is bounded.
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
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

LOAD_PATH = "/basics/async?delay=0"
BLOCKING_ROUTE = "GET /basics/blocking"
STALL_DELAYS_S = (0.020, 0.050, 0.200, 1.000)
STALL_REPEATS = 3
THROUGHPUT_TARGET = 0.95
WARMUP_S = 1.0
#: the terminal the TUI gets: big enough that every pane lays out as it does for a user
TTY_COLUMNS, TTY_ROWS = 140, 45
READY_TIMEOUT_S = 20.0
#: after /monitor first answers, Textual is still mounting panes and doing first layout
SETTLE_S = 1.5
STOP_TIMEOUT_S = 10.0
KILL_TIMEOUT_S = 5.0
REQUEST_TIMEOUT_S = 30.0
#: how long a stall may take to show up in /monitor after its request answered (the
#: watchdog publishes from its own thread once the loop moves on, within a few polls)
STALL_PUBLISH_TIMEOUT_S = 2.0

#: the bare-loop baseline: the same LoopMonitor on an asyncio loop that does nothing
BARE_LOOP_SCRIPT = """\
import asyncio, json, sys
from server.monitor import LoopMonitor

async def main(idle: float) -> None:
    monitor = LoopMonitor.for_loop(asyncio.get_running_loop())
    monitor.start()
    try:
        await asyncio.sleep(idle)
        lag = monitor.lag(idle)
    finally:
        monitor.stop()
    print(json.dumps({**lag.as_dict(), "samples": lag.samples}))

asyncio.run(main(float(sys.argv[1])))
"""

ANSI_RE = re.compile(rb"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")


class BenchError(Exception):
    """An expected failure (port, startup, timeout); the message is for the user."""


# -- results -------------------------------------------------------------------------------


@dataclass(slots=True)
class LoadResult:
    """One ``explorer.tools.loadgen`` run."""

    requests: int
    errors: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float

    def as_dict(self) -> dict[str, Any]:
        """The figures for the JSON report."""
        return {
            "requests": self.requests,
            "errors": self.errors,
            "seconds": self.seconds,
            "rps": self.rps,
            "latency_ms": {"p50": self.p50_ms, "p99": self.p99_ms},
        }


@dataclass(slots=True)
class IdleLag:
    """Loop lag percentiles (ms) over an idle stretch."""

    p50: float
    p99: float
    max: float
    samples: int

    def as_dict(self) -> dict[str, Any]:
        """The figures for the JSON report."""
        return {"p50": self.p50, "p99": self.p99, "max": self.max, "samples": self.samples}


@dataclass(slots=True)
class StallRow:
    """One blocking request and the stall the monitor reported for it (None: missed)."""

    delay_s: float
    handler_ms: float
    duration_ms: float | None = None
    blocked_ms: float | None = None
    cpu_ms: float | None = None
    kind: str | None = None
    location: str | None = None
    seq: int | None = None
    extra_stalls: int = 0

    @property
    def missed(self) -> bool:
        """True when the monitor reported no stall for this sleep."""
        return self.blocked_ms is None

    @property
    def error_vs_delay_pct(self) -> float | None:
        """Relative error of blocked_ms against the requested sleep, in %."""
        if self.blocked_ms is None:
            return None
        return (self.blocked_ms - self.delay_s * 1000.0) / (self.delay_s * 1000.0) * 100.0

    @property
    def error_vs_handler_pct(self) -> float | None:
        """Relative error of blocked_ms against the sleep the handler measured, in %."""
        if self.blocked_ms is None or self.handler_ms <= 0:
            return None
        return (self.blocked_ms - self.handler_ms) / self.handler_ms * 100.0

    def as_dict(self) -> dict[str, Any]:
        """The figures for the JSON report."""
        return {
            "delay_ms": round(self.delay_s * 1000.0, 3),
            "handler_ms": round(self.handler_ms, 3),
            "duration_ms": self.duration_ms,
            "blocked_ms": self.blocked_ms,
            "cpu_ms": self.cpu_ms,
            "kind": self.kind,
            "location": self.location,
            "seq": self.seq,
            "error_vs_delay_pct": _round(self.error_vs_delay_pct),
            "error_vs_handler_pct": _round(self.error_vs_handler_pct),
            "extra_stalls": self.extra_stalls,
            "missed": self.missed,
        }


@dataclass(slots=True)
class BenchReport:
    """Everything one ``bench`` run measured."""

    serve: list[LoadResult] = field(default_factory=list)
    explorer: list[LoadResult] = field(default_factory=list)
    explorer_idle: IdleLag | None = None
    bare_idle: IdleLag | None = None
    stalls: list[StallRow] = field(default_factory=list)


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


# -- child processes -----------------------------------------------------------------------


def progress(message: str) -> None:
    """A progress line on stderr, so stdout stays the report."""
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    """A port nothing listens on right now (the OS picks it; the child binds it next)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def base_url(port: int) -> str:
    """The loopback URL of a child server on ``port``."""
    return f"http://127.0.0.1:{port}"


def last_line(output: bytes) -> str:
    """The last non-empty line of a child's output, terminal escape codes stripped."""
    text = ANSI_RE.sub(b"", output).decode("utf-8", "replace")
    lines = [line.strip() for line in re.split(r"[\r\n]+", text) if line.strip()]
    return lines[-1][:200] if lines else ""


def wait_until_serving(
    port: int, proc: subprocess.Popen[bytes], what: str, last_words: Callable[[], str]
) -> None:
    """Poll ``GET /monitor`` until it answers 200; raise BenchError on exit or timeout.

    ``last_words`` returns the child's last line of output, to say why it failed.
    """
    deadline = time.monotonic() + READY_TIMEOUT_S
    url = f"{base_url(port)}/monitor"
    with httpx.Client(timeout=1.0) as client:
        while time.monotonic() < deadline:
            code = proc.poll()
            if code is not None:
                detail = last_words()
                raise BenchError(
                    f"{what} exited with code {code} before serving on port {port}"
                    + (f": {detail}" if detail else "")
                )
            with contextlib.suppress(httpx.HTTPError):
                if client.get(url).status_code == 200:
                    return
            time.sleep(0.1)
    detail = last_words()
    raise BenchError(
        f"{what} did not answer GET /monitor on port {port} within {READY_TIMEOUT_S:.0f} s"
        + (f" (last output: {detail})" if detail else "")
    )


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
def serve_process(port: int) -> Iterator[None]:
    """``fastasync-explorer serve`` on ``port``, serving when the block starts."""
    command = [sys.executable, "-m", "explorer.cli", "serve", "--port", str(port)]
    # The log goes to an anonymous temporary file: kept only to quote its last line if
    # the server fails to start, and a file never blocks the writer the way a pipe can.
    with tempfile.TemporaryFile() as log:

        def last_words() -> str:
            # pread, not seek+read: the child shares this file's offset and writes at it.
            size = os.fstat(log.fileno()).st_size
            start = max(0, size - 8192)
            return last_line(os.pread(log.fileno(), size - start, start))

        # A session of its own: a Ctrl+C at the bench's terminal is handled by us, once.
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_until_serving(port, proc, "fastasync-explorer serve", last_words)
            yield
        finally:
            stop_process(proc, signal.SIGINT, group=True)


@contextlib.contextmanager
def explorer_process(port: int) -> Iterator[None]:
    """The real TUI in a 140x45 pseudo-terminal on ``port``, serving when the block starts."""
    master, slave = pty.openpty()
    drain: PtyDrain | None = None
    proc: subprocess.Popen[bytes] | None = None
    try:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", TTY_ROWS, TTY_COLUMNS, 0, 0))
        env = dict(os.environ, TERM="xterm-256color")
        env.pop("TEXTUAL", None)  # no devtools or other debug features from the caller
        proc = subprocess.Popen(
            [sys.executable, "-m", "explorer.cli", "--port", str(port)],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            start_new_session=True,
        )
        os.close(slave)  # the child has it; ours would keep the pty open after it exits
        slave = -1
        drain = PtyDrain(master)
        drain.start()
        wait_until_serving(port, proc, "the explorer TUI", drain.last_line)
        time.sleep(SETTLE_S)
        yield
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


# -- measurements --------------------------------------------------------------------------


def run_loadgen(port: int, connections: int, duration_s: float) -> LoadResult:
    """Run ``explorer.tools.loadgen`` against ``port`` and parse its JSON line."""
    command = [
        sys.executable,
        "-m",
        "explorer.tools.loadgen",
        f"{base_url(port)}{LOAD_PATH}",
        "--connections",
        str(connections),
        "--duration",
        str(duration_s),
        "--warmup",
        str(WARMUP_S),
    ]
    try:
        done = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=WARMUP_S + duration_s + 30.0,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BenchError("the load generator did not finish in time") from None
    lines = done.stdout.decode("utf-8", "replace").strip().splitlines()
    if done.returncode != 0 or not lines:
        err = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise BenchError(
            f"the load generator failed (exit {done.returncode})" + (f": {err[-1]}" if err else "")
        )
    try:
        data = json.loads(lines[-1])
        result = LoadResult(
            requests=int(data["requests"]),
            errors=int(data["errors"]),
            seconds=float(data["seconds"]),
            rps=float(data["rps"]),
            p50_ms=float(data["latency_ms"]["p50"]),
            p99_ms=float(data["latency_ms"]["p99"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise BenchError(f"the load generator printed something unexpected: {exc}") from None
    if result.requests == 0:
        raise BenchError(f"no successful requests on port {port} ({result.errors} errors)")
    return result


def read_monitor(client: httpx.Client, **params: float | int) -> dict[str, Any]:
    """``GET /monitor`` with query params, as JSON."""
    response = client.get("/monitor", params=params)
    response.raise_for_status()
    data: dict[str, Any] = response.json()
    return data


def measure_explorer_idle(client: httpx.Client, idle_s: float) -> IdleLag:
    """Let the TUI sit idle for ``idle_s`` and read the lag over exactly that stretch."""
    time.sleep(idle_s)
    data = read_monitor(client, window=idle_s)
    lag = data["lag_ms"]
    return IdleLag(
        p50=float(lag["p50"]), p99=float(lag["p99"]), max=float(lag["max"]), samples=data["samples"]
    )


def measure_bare_idle(idle_s: float) -> IdleLag:
    """The same monitor on a loop that does nothing: the floor the TUI is compared with."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", BARE_LOOP_SCRIPT, str(idle_s)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=idle_s + 30.0,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BenchError("the bare-loop lag probe did not finish in time") from None
    lines = done.stdout.decode("utf-8", "replace").strip().splitlines()
    if done.returncode != 0 or not lines:
        err = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise BenchError(
            f"the bare-loop lag probe failed (exit {done.returncode})"
            + (f": {err[-1]}" if err else "")
        )
    try:
        data = json.loads(lines[-1])
        return IdleLag(
            p50=float(data["p50"]),
            p99=float(data["p99"]),
            max=float(data["max"]),
            samples=int(data["samples"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise BenchError(f"the bare-loop lag probe printed something unexpected: {exc}") from None


def measure_stalls(client: httpx.Client) -> list[StallRow]:
    """Each blocking sleep once at a time, matched with the stall the watchdog reported."""
    # Startup stalls (imports, first layout) are already in the list: start after them.
    last_seq = max((int(s["seq"]) for s in read_monitor(client)["stalls"]), default=0)
    rows: list[StallRow] = []
    for delay in STALL_DELAYS_S:
        for _ in range(STALL_REPEATS):
            response = client.get("/basics/blocking", params={"delay": delay})
            response.raise_for_status()
            row = StallRow(delay_s=delay, handler_ms=float(response.json()["handler_ms"]))
            matched, last_seq = _await_stall(client, last_seq)
            if matched:
                first = matched[0]
                row.duration_ms = float(first["duration_ms"])
                row.blocked_ms = float(first["blocked_ms"])
                row.cpu_ms = float(first["cpu_ms"])
                row.kind = first["kind"]
                row.location = first["location"]
                row.seq = int(first["seq"])
                row.extra_stalls = len(matched) - 1
            rows.append(row)
    return rows


def _await_stall(client: httpx.Client, after: int) -> tuple[list[dict[str, Any]], int]:
    """Stalls of the blocking route published after ``after``, and the new last seq.

    The watchdog publishes a stall once the loop has moved on, which can be a moment after
    the response left, so poll briefly instead of reading once.
    """
    deadline = time.monotonic() + STALL_PUBLISH_TIMEOUT_S
    while True:
        time.sleep(0.02)
        stalls = read_monitor(client, after=after)["stalls"]
        matched = [s for s in stalls if s.get("route") == BLOCKING_ROUTE]
        if matched or time.monotonic() >= deadline:
            last = max((int(s["seq"]) for s in stalls), default=after)
            return matched, last


# -- orchestration -------------------------------------------------------------------------


def _check_args(
    duration: float, connections: int, idle: float, rounds: int, json_path: str | None
) -> None:
    if duration <= 0:
        raise BenchError("--duration must be positive")
    if connections < 1:
        raise BenchError("--connections must be at least 1")
    if not 0 < idle <= 60:
        raise BenchError("--idle must be more than 0 and at most 60 seconds")
    if rounds < 1:
        raise BenchError("--rounds must be at least 1")
    # Fail now rather than after a minute of measuring.
    if json_path and not os.access(os.path.dirname(os.path.abspath(json_path)), os.W_OK):
        raise BenchError(f"cannot write {json_path}: its directory is not writable")


def measure(args: argparse.Namespace) -> BenchReport:
    """Run every measurement; raise BenchError on an expected failure."""
    duration = float(args.duration)
    connections = int(args.connections)
    idle = float(args.idle)
    rounds = int(args.rounds)
    _check_args(duration, connections, idle, rounds, getattr(args, "json", None))
    report = BenchReport()
    for n in range(1, rounds + 1):
        # Alternate so drift (thermal, other tenants) hits both sides alike.
        progress(f"measuring serve round {n}/{rounds} ...")
        port = free_port()
        with serve_process(port):
            report.serve.append(run_loadgen(port, connections, duration))
        progress(f"  serve: {report.serve[-1].rps:.0f} requests/s")

        progress(f"measuring explorer round {n}/{rounds} ...")
        port = free_port()
        with (
            explorer_process(port),
            httpx.Client(base_url=base_url(port), timeout=REQUEST_TIMEOUT_S) as client,
        ):
            if n == 1:
                progress(f"  explorer idle for {idle:g} s ...")
                report.explorer_idle = measure_explorer_idle(client, idle)
            report.explorer.append(run_loadgen(port, connections, duration))
            progress(f"  explorer: {report.explorer[-1].rps:.0f} requests/s")
            if n == 1:
                progress("  stall accuracy ...")
                report.stalls = measure_stalls(client)

    progress(f"measuring a bare asyncio loop idle for {idle:g} s ...")
    report.bare_idle = measure_bare_idle(idle)
    return report


# -- output --------------------------------------------------------------------------------


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


def _spread_pct(results: Sequence[LoadResult]) -> float:
    rps = [r.rps for r in results]
    return (max(rps) - min(rps)) / statistics.median(rps) * 100.0


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def header_line() -> str:
    """Python version, platform, CPU count and date: what the figures depend on."""
    today = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    return (
        f"fastasync-explorer bench: Python {platform.python_version()} "
        f"({platform.python_implementation()}), {platform.platform()}, "
        f"{os.cpu_count()} CPUs, {today}"
    )


def render(report: BenchReport, args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """The text report and the same figures as a JSON-ready dict."""
    rounds = len(report.serve)
    serve_median = statistics.median(r.rps for r in report.serve)
    explorer_median = statistics.median(r.rps for r in report.explorer)
    ratio = explorer_median / serve_median
    verdict = "PASS" if ratio >= THROUGHPUT_TARGET else "BELOW"
    out: list[str] = [header_line(), ""]

    out.append(
        f"1. Throughput: GET {LOAD_PATH}, {args.connections} keep-alive connections, "
        f"{args.duration:g} s after {WARMUP_S:g} s warm-up, {rounds} round(s), median"
    )
    headers = ["server", *(f"round {i + 1}" for i in range(rounds)), "median rps"]
    # spread = (max - min) / median of the rounds: how much to trust a ratio near target
    headers += ["spread %", "p50 ms", "p99 ms", "errors"]
    rows = []
    for name, results, median in (
        ("serve (no UI)", report.serve, serve_median),
        ("explorer TUI", report.explorer, explorer_median),
    ):
        rows.append(
            [
                name,
                *(f"{r.rps:.0f}" for r in results),
                f"{median:.0f}",
                f"{_spread_pct(results):.1f}",
                f"{statistics.median(r.p50_ms for r in results):.2f}",
                f"{statistics.median(r.p99_ms for r in results):.2f}",
                str(sum(r.errors for r in results)),
            ]
        )
    out.append(format_table(headers, rows))
    out.append(
        f"  ratio explorer/serve: {ratio:.3f}   (target >= {THROUGHPUT_TARGET:.2f})   {verdict}"
    )
    out.append("")

    explorer_idle, bare_idle = report.explorer_idle, report.bare_idle
    # measure() fills both or raises
    assert explorer_idle is not None
    assert bare_idle is not None
    idle_ratio = explorer_idle.p99 / bare_idle.p99 if bare_idle.p99 > 0 else None
    out.append(f"2. Idle loop lag over {args.idle:g} s (ms; 10 ms sampling timer)")
    out.append(
        format_table(
            ["loop", "p50", "p99", "max", "samples"],
            [
                [
                    "explorer TUI",
                    f"{explorer_idle.p50:.3f}",
                    f"{explorer_idle.p99:.3f}",
                    f"{explorer_idle.max:.3f}",
                    str(explorer_idle.samples),
                ],
                [
                    "bare asyncio",
                    f"{bare_idle.p50:.3f}",
                    f"{bare_idle.p99:.3f}",
                    f"{bare_idle.max:.3f}",
                    str(bare_idle.samples),
                ],
            ],
        )
    )
    out.append(f"  p99 ratio explorer/bare: {_fmt(idle_ratio, '.2f')}")
    out.append("")

    missed = sum(row.missed for row in report.stalls)
    out.append(
        f"3. Stall accuracy: time.sleep(d) in async def (GET /basics/blocking), "
        f"{STALL_REPEATS} each, explorer TUI"
    )
    stall_rows = [
        [
            f"{row.delay_s * 1000:.0f}",
            f"{row.handler_ms:.2f}",
            "missed" if row.missed else _fmt(row.duration_ms, ".2f"),
            "missed" if row.missed else _fmt(row.blocked_ms, ".2f"),
            _fmt(row.error_vs_delay_pct, "+.2f"),
            _fmt(row.error_vs_handler_pct, "+.2f"),
            row.location or "-",
        ]
        for row in report.stalls
    ]
    stall_headers = ["d ms", "handler ms", "stall ms", "blocked ms", "err vs d %"]
    stall_headers += ["err vs handler %", "location"]
    out.append(format_table(stall_headers, stall_rows))
    out.append("  stall ms: wall time the loop ran nothing else; blocked ms: its off-CPU part")
    extra = sum(row.extra_stalls for row in report.stalls)
    out.append(
        f"  detected {len(report.stalls) - missed}/{len(report.stalls)}"
        + (f", {missed} MISSED" if missed else "")
        + (f", {extra} extra stall(s) on the same route" if extra else "")
    )

    figures: dict[str, Any] = {
        "environment": {
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        },
        "throughput": {
            "path": LOAD_PATH,
            "connections": args.connections,
            "duration_s": args.duration,
            "warmup_s": WARMUP_S,
            "rounds": rounds,
            "serve": [r.as_dict() for r in report.serve],
            "explorer": [r.as_dict() for r in report.explorer],
            "serve_median_rps": round(serve_median, 1),
            "serve_spread_pct": round(_spread_pct(report.serve), 2),
            "explorer_spread_pct": round(_spread_pct(report.explorer), 2),
            "explorer_median_rps": round(explorer_median, 1),
            "ratio": round(ratio, 4),
            "target": THROUGHPUT_TARGET,
            "pass": ratio >= THROUGHPUT_TARGET,
        },
        "idle_lag_ms": {
            "idle_s": args.idle,
            "explorer": explorer_idle.as_dict(),
            "bare_asyncio": bare_idle.as_dict(),
            "p99_ratio": _round(idle_ratio, 3),
        },
        "stall_accuracy": {
            "route": BLOCKING_ROUTE,
            "rows": [row.as_dict() for row in report.stalls],
            "missed": missed,
        },
    }
    return "\n".join(out), figures


def run_bench(args: argparse.Namespace) -> int:
    """``fastasync-explorer bench``: 0 on success, 1 if a stall was missed, 2 on failure."""
    try:
        report = measure(args)
    except BenchError as exc:
        print(f"fastasync-explorer bench: {exc}", file=sys.stderr)
        return 2
    except httpx.HTTPError as exc:
        print(f"fastasync-explorer bench: request to the explorer failed: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"fastasync-explorer bench: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fastasync-explorer bench: interrupted", file=sys.stderr)
        return 130
    text, figures = render(report, args)
    print(text)
    if args.json:
        try:
            with open(args.json, "w", encoding="utf-8") as fh:
                json.dump(figures, fh, indent=2)
                fh.write("\n")
        except OSError as exc:
            print(f"fastasync-explorer bench: cannot write {args.json}: {exc}", file=sys.stderr)
            return 2
    return 1 if figures["stall_accuracy"]["missed"] else 0
