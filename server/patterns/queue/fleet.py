"""The worker processes the server starts: real OS processes running arq's worker.

Started and stopped off the loop (``fork``/``exec`` and the waits run in a thread), each
with its stderr in a file of its own, so a worker that dies at once can say why. Nothing
they print reaches the terminal. A worker that ends stays listed with how it ended
(killed by a signal, or its exit code and last line) until the fleet is cleared.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import server
from server.patterns.queue.names import MAX_WORKERS

#: the folder that holds the ``server`` package: the worker's interpreter needs it on its
#: path (in the wheel it is not a top-level package of site-packages)
_SERVER_ROOT = str(Path(server.__file__).resolve().parent.parent)


def last_line_of(log: Path) -> str:
    """The last line a child process wrote to ``log`` (why it gave up), or a placeholder."""
    try:
        lines = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no output"
    return lines[-1][:200] if lines else "no output"


@dataclass
class WorkerProcess:
    """One worker process and what is known of it without asking Redis."""

    process: subprocess.Popen[bytes]
    started: float
    stderr: Path
    #: the signal the fleet sent it, if any
    signalled: int | None = None
    ended: float | None = field(default=None)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def how_it_ended(self) -> str | None:
        """``killed -9``, ``stopped``, ``exited 1: <its last line>``; None if alive."""
        code = self.process.poll()
        if code is None:
            return None
        if self.ended is None:
            self.ended = time.time()
        if code < 0:
            if -code == signal.SIGTERM:
                return "stopped"
            return (
                "killed -9" if -code == signal.SIGKILL else f"killed ({signal.Signals(-code).name})"
            )
        if code == 0:
            return "stopped"
        return f"exited {code}: {self.last_line()}"

    def last_line(self) -> str:
        """The last line the worker wrote to stderr (why it gave up), or a placeholder."""
        return last_line_of(self.stderr)


class WorkerFleet:
    """Up to :data:`MAX_WORKERS` worker processes on one Redis."""

    def __init__(self, redis_url: str, log_dir: Path | None = None) -> None:
        self.redis_url = redis_url
        self._log_dir = log_dir
        self._workers: list[WorkerProcess] = []
        self._changing = asyncio.Lock()

    @property
    def workers(self) -> list[WorkerProcess]:
        """Every worker started since the last :meth:`clear`, oldest first."""
        return list(self._workers)

    def alive(self) -> list[WorkerProcess]:
        return [w for w in self._workers if w.alive and w.signalled is None]

    def find(self, pid: int) -> WorkerProcess | None:
        return next((w for w in self._workers if w.pid == pid), None)

    async def scale(self, count: int) -> list[WorkerProcess]:
        """Start or stop (SIGTERM, newest first) workers until ``count`` run."""
        if not 0 <= count <= MAX_WORKERS:
            raise ValueError(f"workers must be 0 to {MAX_WORKERS}, not {count}")
        async with self._changing:
            alive = self.alive()
            for worker in alive[count:][::-1]:
                self._signal(worker, signal.SIGTERM)
            for _ in range(count - len(alive)):
                self._workers.append(await asyncio.to_thread(self._start_one))
        return self.alive()

    def kill(self, pid: int, sig: int = signal.SIGKILL) -> WorkerProcess:
        """Send ``sig`` (SIGKILL unless told) to the worker ``pid``; KeyError if unknown."""
        worker = self.find(pid)
        if worker is None or not worker.alive:
            raise KeyError(pid)
        self._signal(worker, sig)
        return worker

    def clear(self) -> None:
        """Forget the workers that have ended (and their stderr files)."""
        for worker in self._workers:
            if not worker.alive:
                worker.stderr.unlink(missing_ok=True)
        self._workers = [w for w in self._workers if w.alive]

    async def stop_all(self, grace_s: float = 2.0) -> None:
        """SIGTERM every worker, SIGKILL what is left after ``grace_s``, and reap them all."""
        running = [w for w in self._workers if w.alive]
        for worker in running:
            self._signal(worker, signal.SIGTERM)
        await asyncio.to_thread(self._reap, running, grace_s)
        self.clear()

    @staticmethod
    def _reap(workers: list[WorkerProcess], grace_s: float) -> None:
        deadline = time.monotonic() + grace_s
        for worker in workers:
            try:
                worker.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()

    @staticmethod
    def _signal(worker: WorkerProcess, sig: int) -> None:
        if worker.alive:
            worker.signalled = sig
            with contextlib.suppress(ProcessLookupError):  # ended between look and signal
                worker.process.send_signal(sig)

    def _start_one(self) -> WorkerProcess:
        """Start one worker (in a thread: fork and exec take milliseconds)."""
        stderr_file = tempfile.NamedTemporaryFile(  # noqa: SIM115 (the worker keeps it open)
            prefix="fastasync-queue-worker-", suffix=".log", dir=self._log_dir, delete=False
        )
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_SERVER_ROOT, env.get("PYTHONPATH")) if p)
        with stderr_file:
            process = subprocess.Popen(
                [sys.executable, "-m", "server.patterns.queue.worker", self.redis_url],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr_file,
                env=env,
            )
        return WorkerProcess(process, time.time(), Path(stderr_file.name))
