"""A ``fastasync-explorer serve`` child that the pane may kill with -9.

The embedded server shares the explorer's process: SIGKILL it and the explorer goes too.
So the demo that kills a server starts one of its own, a real ``serve`` process on a free
port with a scratch data folder, and its output in a file (nothing reaches the terminal).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from explorer.own_process import own_env
from explorer.tools.bench_kit import base_url, free_port
from server.patterns.queue.fleet import last_line_of

#: a cold start imports FastAPI, uvicorn, Textual-free explorer code: seconds on a slow VM
READY_WITHIN_S = 30.0


class ChildFailed(Exception):
    """The child server did not start (the message says why, in one sentence)."""


class ServeChild:
    """One running ``serve`` child: its pid and URL, and SIGKILL."""

    def __init__(self, process: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.process = process
        self.url = url
        self._log = log

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no lifespan, no grace, no goodbye; what it held in memory is gone."""
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGKILL)

    def last_line(self) -> str:
        return last_line_of(self._log)

    @classmethod
    @contextlib.asynccontextmanager
    async def started(cls, redis_url: str) -> AsyncIterator[ServeChild]:
        """A child serving when the block starts; stopped (or reaped) when it ends."""
        with tempfile.TemporaryDirectory(prefix="fastasync-serve-child-") as scratch:
            port = free_port()
            log = Path(scratch) / "serve.log"
            command = [sys.executable, "-m", "explorer.cli", "serve", "--port", str(port)]
            command += ["--data-dir", str(Path(scratch) / "data"), "--redis-url", redis_url]
            with log.open("wb") as out:
                process = await asyncio.to_thread(
                    subprocess.Popen,
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=own_env(),
                    start_new_session=True,
                )
            child = cls(process, base_url(port), log)
            try:
                await child._wait_until_serving()
                yield child
            finally:
                await asyncio.to_thread(child._stop)

    async def _wait_until_serving(self) -> None:
        deadline = time.monotonic() + READY_WITHIN_S
        async with httpx.AsyncClient(base_url=self.url, timeout=1.0) as http:
            while time.monotonic() < deadline:
                if not self.alive:
                    raise ChildFailed(f"the server child exited: {self.last_line()}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get("/queue")).status_code == 200:
                        return
                await asyncio.sleep(0.1)
        raise ChildFailed(f"the server child did not answer within {READY_WITHIN_S:g} s")

    def _stop(self) -> None:
        if self.alive:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
                return
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process.wait()
