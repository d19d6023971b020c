"""Run the explorer under asyncio.run as the CLI does, use it, quit, and report what is left.

Run as a child process by test_shell.py: a fresh interpreter is the only honest baseline
for threads, file descriptors and child processes.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
import time

import httpx

from explorer.app import ExplorerApp
from explorer.patterns.basics.pane import BasicsPane
from server.settings import Settings
from tests.conftest import eventually


def children() -> list[str]:
    """Command lines of this process's live children."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == os.getpid() and fields[0] != "Z":
                with open(f"/proc/{pid}/cmdline", "rb") as cmd:
                    found.append(cmd.read().replace(b"\0", b" ").decode())
        except (OSError, IndexError, ValueError):
            continue
    return found


async def drive(report: dict[str, object]) -> None:
    app = ExplorerApp(Settings(port=0))
    async with app.run_test(size=(120, 40)) as pilot:
        await eventually(lambda: app.context is not None and bool(app.query(BasicsPane)))
        report["port"] = app.server.port
        async with httpx.AsyncClient(base_url=app.server.url) as http:
            # Touch the loop, the threadpool and the process pool.
            for path, params in (
                ("/basics/async", {"delay": 0.01}),
                ("/basics/sync", {"delay": 0.01}),
                ("/basics/offload", {"n": 1000}),
                ("/monitor", {}),
            ):
                response = await http.get(path, params=params)
                assert response.status_code == 200, (
                    path,
                    response.text,
                    app._log_handler.drain()[-15:],
                )
        report["threads_while_running"] = sorted(t.name for t in threading.enumerate())
        started = time.monotonic()
        await pilot.press("q")
        await eventually(lambda: app.return_code is not None, within=10)
        report["quit_s"] = time.monotonic() - started
        report["return_code"] = app.return_code
    current = asyncio.current_task()
    report["tasks_left"] = [repr(t) for t in asyncio.all_tasks() if t is not current]


def main() -> None:
    baseline_fds = set(os.listdir("/proc/self/fd"))
    report: dict[str, object] = {}
    asyncio.run(drive(report))
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and threading.active_count() > 1:
        time.sleep(0.05)
    report["threads_left"] = [
        t.name for t in threading.enumerate() if t is not threading.main_thread()
    ]
    report["fds_left"] = sorted(
        os.readlink(f"/proc/self/fd/{fd}")
        for fd in set(os.listdir("/proc/self/fd")) - baseline_fds
        if os.path.exists(f"/proc/self/fd/{fd}")
    )
    report["children_left"] = children()
    with socket.socket() as probe:
        report["port_listening"] = probe.connect_ex(("127.0.0.1", int(report["port"]))) == 0  # type: ignore[call-overload]
    print(json.dumps(report))


if __name__ == "__main__":
    main()
