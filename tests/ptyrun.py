"""Run a command in a real pseudo-terminal, as a user's terminal would, and read its screen."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import signal
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Sequence


class PtyProcess:
    """A child on a pty of a given size; its output is drained continuously."""

    def __init__(self, argv: Sequence[str], *, columns: int = 140, rows: int = 45) -> None:
        self.master, self.slave = pty.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        self.termios_before = termios.tcgetattr(self.slave)
        env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(columns)}
        env.pop("TEXTUAL", None)
        self.process = subprocess.Popen(
            list(argv),
            stdin=self.slave,
            stdout=self.slave,
            stderr=self.slave,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
        self._chunks: list[bytes] = []
        self._lock = threading.Lock()
        # Textual blocks on a full pty buffer: someone must always be reading.
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return
            if not chunk:
                return
            with self._lock:
                self._chunks.append(chunk)

    @property
    def output(self) -> bytes:
        with self._lock:
            return b"".join(self._chunks)

    def text(self) -> str:
        return self.output.decode("utf-8", "replace")

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def wait_for_output(self, needle: bytes, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.output:
                return True
            if self.process.poll() is not None:
                return needle in self.output
            time.sleep(0.05)
        return False

    def wait(self, timeout: float) -> int | None:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def close(self) -> None:
        """Kill the child if it is still there and release the pty."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)
        for fd in (self.slave, self.master):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._reader.join(timeout=2)
