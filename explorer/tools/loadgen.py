"""A small closed-loop HTTP/1.1 load generator, run as its own process by ``bench``.

``python -m explorer.tools.loadgen URL --connections N --duration S --warmup 1`` keeps N
keep-alive connections busy with one request in flight on each, counts the 2xx responses
that complete inside the measured window (after the warm-up) and prints one JSON line::

    {"requests": 12345, "errors": 0, "seconds": 5.0, "rps": 2469.0,
     "latency_ms": {"p50": 12.9, "p99": 20.1}}

Why not httpx or aiohttp: server and client share the machine's two cores, so every
microsecond the client spends per request is taken from the server it measures. Raw
asyncio streams with a pre-built request and a minimal response parser cost a fraction
of a full client, and uvloop (part of ``uvicorn[standard]``) halves that again.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from fastasync_probe.monitor.records import percentile

#: a response head larger than this is treated as a protocol error
MAX_HEAD_BYTES = 64 * 1024
#: seconds to wait after a failed connect before retrying (avoids a hot refusal loop)
RECONNECT_PAUSE_S = 0.01
#: seconds the workers get to finish their in-flight request after the window closes
DRAIN_GRACE_S = 2.0


class ProtocolError(Exception):
    """The server sent something this client cannot parse."""


@dataclass(slots=True)
class Target:
    """Where to connect and the exact bytes of the request to send."""

    host: str
    port: int
    request: bytes

    @classmethod
    def from_url(cls, url: str) -> Target:
        """Parse ``http://host:port/path?query`` (plain HTTP only)."""
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"need an http://host[:port]/path URL, not {url!r}")
        port = parts.port or 80
        path = parts.path or "/"
        if parts.query:
            path = f"{path}?{parts.query}"
        netloc = parts.netloc.rpartition("@")[2]
        # Built once: the hot loop only writes these bytes.
        request = f"GET {path} HTTP/1.1\r\nHost: {netloc}\r\nUser-Agent: fastasync-loadgen\r\n\r\n"
        return cls(host=parts.hostname, port=port, request=request.encode("ascii"))


@dataclass(slots=True)
class Tally:
    """Counts shared by all workers (one thread, so no locking)."""

    measure_from: float
    measure_until: float
    requests: int = 0
    errors: int = 0
    latencies_s: list[float] = field(default_factory=list)

    def in_window(self, t: float) -> bool:
        """Whether an event at ``t`` (perf_counter) falls in the measured window."""
        return self.measure_from <= t < self.measure_until


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one response; return (status, whether the server keeps the connection open).

    Handles Content-Length and chunked bodies, and bodies delimited by connection close.
    """
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError:
        raise ProtocolError("response head too large") from None
    lines = head[:-4].split(b"\r\n")
    status_line = lines[0].split(None, 2)
    if len(status_line) < 2 or not status_line[0].startswith(b"HTTP/1."):
        raise ProtocolError(f"bad status line {lines[0][:80]!r}")
    try:
        status = int(status_line[1])
    except ValueError:
        raise ProtocolError(f"bad status code {status_line[1][:20]!r}") from None
    keep_alive = status_line[0] == b"HTTP/1.1"
    length: int | None = None
    chunked = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                raise ProtocolError(f"bad Content-Length {value[:20]!r}") from None
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"connection":
            token = value.strip().lower()
            if token == b"close":
                keep_alive = False
            elif token == b"keep-alive":
                keep_alive = True
    if 100 <= status < 200 or status in (204, 304):
        return status, keep_alive
    if chunked:
        await _read_chunked(reader)
    elif length is not None:
        await reader.readexactly(length)
    else:
        await reader.read()  # no framing: the body ends when the server closes
        keep_alive = False
    return status, keep_alive


async def _read_chunked(reader: asyncio.StreamReader) -> None:
    while True:
        size_line = await reader.readuntil(b"\r\n")
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise ProtocolError(f"bad chunk size {size_line[:20]!r}") from None
        if size == 0:
            # Trailers, if any, end with an empty line.
            while await reader.readuntil(b"\r\n") != b"\r\n":
                pass
            return
        await reader.readexactly(size + 2)


async def worker(target: Target, tally: Tally) -> None:
    """Keep one connection busy with back-to-back requests until the window closes."""
    writer: asyncio.StreamWriter | None = None
    reader: asyncio.StreamReader | None = None
    clock = time.perf_counter
    try:
        while clock() < tally.measure_until:
            if writer is None or reader is None:
                try:
                    reader, writer = await asyncio.open_connection(
                        target.host, target.port, limit=MAX_HEAD_BYTES
                    )
                except OSError:
                    if tally.in_window(clock()):
                        tally.errors += 1
                    await asyncio.sleep(RECONNECT_PAUSE_S)
                    continue
            sent = clock()
            try:
                writer.write(target.request)
                # No drain(): one small request per round trip never fills the buffer.
                status, keep_alive = await read_response(reader)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ProtocolError):
                done = clock()
                if tally.in_window(done):
                    tally.errors += 1
                writer.close()
                writer = reader = None
                continue
            done = clock()
            if tally.in_window(done):
                if 200 <= status < 300:
                    tally.requests += 1
                    tally.latencies_s.append(done - sent)
                else:
                    tally.errors += 1
            if not keep_alive:
                writer.close()
                writer = reader = None
    finally:
        if writer is not None:
            writer.close()


async def run_load(
    url: str, connections: int, duration_s: float, warmup_s: float
) -> dict[str, object]:
    """Drive ``url`` for ``warmup_s + duration_s`` seconds; return the figures."""
    target = Target.from_url(url)
    start = time.perf_counter()
    tally = Tally(measure_from=start + warmup_s, measure_until=start + warmup_s + duration_s)
    tasks = [asyncio.create_task(worker(target, tally)) for _ in range(connections)]
    # Workers stop by themselves after the window; a request stuck on a wedged server
    # must not hold the result hostage, so the stragglers are cancelled after a grace.
    _, pending = await asyncio.wait(tasks, timeout=warmup_s + duration_s + DRAIN_GRACE_S)
    for task in pending:
        task.cancel()
    for task in pending:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    for task in tasks:
        error = None if task.cancelled() else task.exception()
        if error is not None:
            raise error  # a bug in this client, not a server error: let it show
    latencies = sorted(tally.latencies_s)
    seconds = tally.measure_until - tally.measure_from
    return {
        "requests": tally.requests,
        "errors": tally.errors,
        "seconds": round(seconds, 3),
        "rps": round(tally.requests / seconds, 1),
        # nearest rank (the monitor's own percentile), seconds in, milliseconds out
        "latency_ms": {f"p{q}": round(percentile(latencies, q) * 1000.0, 3) for q in (50, 99)},
    }


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m explorer.tools.loadgen``."""
    parser = argparse.ArgumentParser(
        prog="python -m explorer.tools.loadgen",
        description="Closed-loop HTTP/1.1 keep-alive load; prints one JSON line of results.",
    )
    parser.add_argument("url", help="http://host:port/path?query to GET")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections")
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first")
    parser.add_argument(
        "--no-uvloop", action="store_true", help="use the stdlib event loop even if uvloop exists"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse, run the load, print the JSON line."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.connections < 1:
        parser.error("--connections must be at least 1")
    if args.duration <= 0 or args.warmup < 0:
        parser.error("--duration must be positive and --warmup not negative")
    try:
        Target.from_url(args.url)
    except ValueError as exc:
        parser.error(str(exc))
    coro = run_load(args.url, args.connections, args.duration, args.warmup)
    loop_factory = None
    if not args.no_uvloop:
        try:
            import uvloop
        except ImportError:  # optional: the stdlib loop works, it just costs more CPU
            pass
        else:
            loop_factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        result = runner.run(coro)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
