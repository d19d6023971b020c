"""The child's output, followed: the new lines of a file that another process appends to."""

from __future__ import annotations

from pathlib import Path

#: at most this much is read at a time (a chatty app cannot flood the log pane)
MAX_READ = 64 * 1024


class LogTail:
    """Hands out the lines appended to ``path`` since the last call (blocking file reads:
    call it in a thread).

    Bounded: at most :data:`MAX_READ` bytes a call. What was written beyond that since the
    last call (a file already big at the start, an app that writes faster than the pane
    reads) is skipped, its newest end kept, and a line says how much was left out.
    """

    def __init__(self, path: Path, max_read: int = MAX_READ) -> None:
        self.path = path
        self.max_read = max_read
        self._offset = 0
        self._partial = ""

    def read_new(self) -> list[str]:
        """Whole lines written since the last call (none when the file is not there)."""
        try:
            with self.path.open("rb") as file:
                size = file.seek(0, 2)
                if size < self._offset:  # truncated: from its start again
                    self._offset, self._partial = 0, ""
                skipped = max(0, size - self._offset - self.max_read)
                file.seek(self._offset + skipped)
                chunk = file.read(self.max_read)
        except OSError:
            return []
        self._offset += skipped + len(chunk)
        lines: list[str] = []
        if skipped:
            # the line the skip cut through is left out whole, not shown half
            cut = chunk.find(b"\n") + 1 or len(chunk)
            left_out = skipped + cut + len(self._partial.encode())
            chunk, self._partial = chunk[cut:], ""
            lines.append(f"… {left_out:,} bytes of output left out")
        parts = (self._partial + chunk.decode("utf-8", errors="replace")).split("\n")
        self._partial = parts.pop()
        return lines + [line.rstrip("\r") for line in parts]
