"""What the instrument costs, measured from outside: CPU from ``/proc``, requests/s by wrk.

``fastasync-explorer bench`` uses these on child processes: the TUI in a pseudo-terminal,
``serve``, and the bare FastAPI yardstick (``explorer.tools.bare_app``) with and without
the loop monitor.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import httpx

from explorer.tools.bench_figures import LoadResult
from explorer.tools.bench_kit import BenchError, Child, base_url, child_process

#: wrk's own threads: one, so the server under test keeps the other core of two
WRK_THREADS = 1
_RPS = re.compile(rb"Requests/sec:\s+([\d.]+)")
_TOTAL = re.compile(rb"(\d+) requests in ([\d.]+)s")
_LATENCY = re.compile(rb"^\s+(50|99)%\s+([\d.]+)(us|ms|s|m)\s*$", re.MULTILINE)
#: a failed request is one of these: a non-2xx answer, a connect, read, write or timeout error
_ERRORS = re.compile(
    rb"Non-2xx or 3xx responses:\s+(\d+)"
    rb"|Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)"
)
_UNITS_MS = {b"us": 0.001, b"ms": 1.0, b"s": 1000.0, b"m": 60_000.0}


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far, all its threads (``/proc``)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except OSError as exc:
        raise BenchError(f"cannot read the CPU time of process {pid}: {exc}") from None
    # after "pid (comm)": state is field 3, utime and stime are fields 14 and 15
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def idle_cpu_percent(pid: int, seconds: float) -> float:
    """How much of one core ``pid`` used over ``seconds`` of doing nothing asked of it."""
    began, cpu_began = time.monotonic(), cpu_seconds(pid)
    time.sleep(seconds)
    return (cpu_seconds(pid) - cpu_began) / (time.monotonic() - began) * 100.0


def require_wrk() -> str:
    """The path of wrk, or a BenchError that says how to get it."""
    path = shutil.which("wrk")
    if path is None:
        raise BenchError("wrk is not installed (Debian: apt-get install wrk)")
    return path


def parse_wrk(output: bytes, url: str) -> LoadResult:
    """wrk's report (run with ``--latency``) as a :class:`LoadResult`."""
    rps = _RPS.search(output)
    total = _TOTAL.search(output)
    latency = {q.decode(): float(v) * _UNITS_MS[unit] for q, v, unit in _LATENCY.findall(output)}
    if rps is None or total is None or "50" not in latency or "99" not in latency:
        raise BenchError(f"wrk printed something unexpected against {url}")
    errors = sum(int(n) for match in _ERRORS.findall(output) for n in match if n)
    return LoadResult(
        requests=int(total.group(1)),
        errors=errors,
        seconds=float(total.group(2)),
        rps=float(rps.group(1)),
        p50_ms=latency["50"],
        p99_ms=latency["99"],
    )


def pinned(command: list[str], core: int) -> list[str]:
    """``command`` held to one core by taskset, when the machine has two or more and
    taskset is installed (else as it is): a server and its load generator that never
    trade cores vary less from run to run."""
    taskset = shutil.which("taskset")
    if taskset is None or (os.cpu_count() or 1) < 2:
        return command
    return [taskset, "-c", str(core), *command]


def run_wrk(
    url: str,
    connections: int,
    duration_s: float,
    warmup_s: float,
    *,
    core: int | None = None,
    on_counted: Callable[[], None] | None = None,
) -> LoadResult:
    """What wrk measured against ``url``, after a warm-up run that is not counted (none
    when ``warmup_s`` is 0). ``core``: wrk held to that core; ``on_counted`` is called
    just before the counted run starts."""
    wrk = require_wrk()
    result: LoadResult | None = None
    runs = [(warmup_s, False)] if warmup_s > 0 else []
    for seconds, counted in [*runs, (duration_s, True)]:
        if counted and on_counted is not None:
            on_counted()
        command = [wrk, f"-t{WRK_THREADS}", f"-c{connections}", f"-d{max(1, round(seconds))}s"]
        if core is not None:
            command = pinned(command, core)
        try:
            done = subprocess.run(
                [*command, "--latency", url],
                capture_output=True,
                timeout=seconds + 30.0,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise BenchError(f"wrk did not finish against {url}") from None
        if done.returncode != 0:
            raise BenchError(f"wrk failed against {url}: {done.stderr.decode()[-200:]}")
        result = parse_wrk(done.stdout, url)
    assert result is not None
    if result.requests == 0:
        raise BenchError(f"no successful requests against {url} ({result.errors} errors)")
    return result


def _answers(port: int) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(f"{base_url(port)}/", timeout=1.0).status_code == 200
    return False


@contextlib.contextmanager
def bare_app_process(port: int, with_monitor: bool) -> Iterator[Child]:
    """The bare FastAPI yardstick on ``port``, serving when the block starts."""
    command = [sys.executable, "-m", "explorer.tools.bare_app", "--port", str(port)]
    what = "the bare FastAPI app" + (" with the monitor" if with_monitor else "")
    with child_process(
        command + (["--monitor"] if with_monitor else []), port, what, ready=_answers
    ) as child:
        yield child
