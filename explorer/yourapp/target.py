"""What the Your app view looks at: a probe's address, and the process the explorer started."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class ProbeTarget:
    """An app with the probe in it, reachable over HTTP.

    ``url`` is the app's base URL (the probe answers under ``/_fastasync``); ``token`` is
    sent as ``Authorization: Bearer`` when set. ``log_path`` is the file the child's output
    goes to when the explorer started the app itself (``run``), else None (``attach``).
    """

    url: str
    label: str
    token: str | None = None
    log_path: Path | None = None
    #: the child's pid when the explorer started the app (``run``), else None
    pid: int | None = None

    def headers(self) -> dict[str, str]:
        """The headers every request to the probe carries."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}
