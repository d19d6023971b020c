"""What the probe serves under its prefix: the monitor's figures, stalls, tasks, source.

The JSON is the explorer's own (``GET /monitor``, ``/monitor/tasks``), so the explorer
reads a user's app and its own server alike. Read by ``fastasync-explorer attach``/``run``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from . import PROTOCOL, __version__
from .asgi_io import BadQuery, Receive, Send, number
from .monitor import LoopMonitor, request_tasks
from .monitor.attribution import short_path

#: lines of source around a stall's line that one request may read
MAX_CONTEXT = 40


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 3)


def info(monitor: LoopMonitor) -> dict[str, Any]:
    """``GET /_fastasync``: who is here and how it measures."""
    loop = type(monitor.loop)
    return {
        "probe": "fastasync_probe",
        "version": __version__,
        "protocol": PROTOCOL,
        "pid": os.getpid(),
        "python": sys.version.split()[0],
        "loop": f"{loop.__module__}.{loop.__qualname__}",
        "method": monitor.method,
        "precision_ms": round(monitor.precision_ms, 3),
        "rest_precision_ms": round(monitor.rest_precision_ms, 3),
        "rest_look_ms": _ms(monitor.config.rest_look_s),
        "stall_threshold_ms": round(monitor.config.stall_threshold_s * 1000.0, 3),
        "code_roots": list(monitor.config.project_code.roots),
        "started_at": monitor.started_at,
    }


def monitor_report(monitor: LoopMonitor, query: dict[str, str]) -> dict[str, Any]:
    """``GET /_fastasync/monitor``: lag, utilization, the stalls after ``after``."""
    window = number(query, "window", 10.0, 0.01, 60.0)
    after = int(number(query, "after", 0, 0, 2**53))
    snapshot = monitor.snapshot(window_s=window)
    return {
        "lag_ms": snapshot.lag.as_dict(),
        "window_s": window,
        "samples": snapshot.lag.samples,
        "utilization": snapshot.utilization,
        "method": monitor.method,
        "precision_ms": round(monitor.precision_ms, 3),
        "rest_precision_ms": round(monitor.rest_precision_ms, 3),
        "stall_count": snapshot.stall_count,
        "stall_total_ms": round(snapshot.stall_total_ms, 3),
        "stall_in_progress_ms": monitor.stall_in_progress_ms(),
        "in_flight": len(request_tasks),
        "stalls": [s.as_dict() for s in snapshot.stalls if s.seq > after],
        "windows": [w.as_dict() for w in list(monitor.windows)[-60:]],
    }


def tasks_report(monitor: LoopMonitor, query: dict[str, str]) -> dict[str, Any]:
    """``GET /_fastasync/tasks``: the task inspector's snapshot of the app's loop."""
    long_wait_s = number(query, "long_wait_s", 1.0, 0.01, 3600.0)
    limit = int(number(query, "limit", 200, 1, 1000))
    return monitor.tasks.snapshot(long_wait_s=long_wait_s, limit=limit, fold=frozenset())


def source_lines(monitor: LoopMonitor, query: dict[str, str]) -> dict[str, Any] | None:
    """``GET /_fastasync/source``: lines around ``line`` of one of the app's own files.

    None (a 404) for any other file: the probe shows the app's code, never a library's
    or anything else on the machine.
    """
    name = query.get("file", "")
    line = int(number(query, "line", 1, 1, 10**7))
    context = int(number(query, "context", 8, 0, MAX_CONTEXT))
    if not name or not os.path.isabs(name):
        raise BadQuery("file must be an absolute path, as a stall's frames give it")
    path = Path(name).resolve()
    if path.suffix != ".py" or not monitor.config.project_code.owns(str(path)):
        return None
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    first = max(1, line - context)
    return {
        "file": str(path),
        "path": short_path(str(path)),
        "line": line,
        "first_line": first,
        "lines": lines[first - 1 : line + context],
    }


async def stream(monitor: LoopMonitor, receive: Receive, send: Send) -> None:
    """``GET /_fastasync/monitor/stream``: SSE, a ``lag`` event per window, a ``stall``
    event per stall, until the client goes away."""
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/event-stream; charset=utf-8"),
                (b"cache-control", b"no-store"),
                (b"x-accel-buffering", b"no"),
            ],
        }
    )
    last_window = monitor.windows[-1].seq if monitor.windows else 0
    last_stall = monitor.last_stall_seq()
    hello = {"method": monitor.method, "precision_ms": monitor.precision_ms}
    await _event(send, "hello", hello, retry_ms=2000)
    gone = asyncio.ensure_future(_disconnected(receive))
    try:
        while not gone.done():
            for window in [w for w in list(monitor.windows) if w.seq > last_window]:
                last_window = window.seq
                await _event(send, "lag", window.as_dict())
            for stall in monitor.stalls_after(last_stall):
                last_stall = stall.seq
                await _event(send, "stall", stall.as_dict())
            await asyncio.wait({gone}, timeout=monitor.config.window_s)
    finally:
        gone.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await gone
    with contextlib.suppress(OSError, RuntimeError):  # the client is gone already
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _event(send: Send, name: str, data: Any, retry_ms: int | None = None) -> None:
    text = f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n"
    if retry_ms is not None:
        text += f"retry: {retry_ms}\n"
    await send({"type": "http.response.body", "body": (text + "\n").encode(), "more_body": True})
