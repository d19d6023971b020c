"""The server's memory over one download: its RSS when the request came in, and at its peak.

A client polling ``/stream/stats`` cannot see the pitfall's memory: the whole-file read
happens while the loop (and so every poll) is blocked, and by the next poll the download
may be over and the memory given back. So the download samples the RSS itself: before
the handler reads anything, then every ``SAMPLE_EVERY_BYTES`` of body sent, and at the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from server.process_stats import rss_bytes

#: body bytes between two RSS samples (a read of /proc/self/statm each, a few µs)
SAMPLE_EVERY_BYTES = 1024 * 1024


@dataclass(eq=False)
class RssWatch:
    """One download's RSS: at its start and the highest seen while it was sent."""

    name: str
    before: int
    peak: int
    bytes_sent: int = 0
    finished: bool = False
    _unsampled: int = 0

    @classmethod
    def start(cls, name: str) -> RssWatch:
        """Take the baseline now: call before the handler reads any of the file."""
        rss = rss_bytes()
        return cls(name, rss, rss)

    def sample(self) -> None:
        self.peak = max(self.peak, rss_bytes())

    def sent(self, count: int) -> None:
        """``count`` more body bytes went out; sample every ``SAMPLE_EVERY_BYTES``."""
        self.bytes_sent += count
        self._unsampled += count
        if self._unsampled >= SAMPLE_EVERY_BYTES:
            self._unsampled = 0
            self.sample()

    def finish(self) -> None:
        self.sample()
        self.finished = True

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "rss_before_bytes": self.before,
            "rss_peak_bytes": self.peak,
            "peak_growth_bytes": self.peak - self.before,
            "bytes_sent": self.bytes_sent,
            "finished": self.finished,
        }
