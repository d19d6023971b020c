"""Settings shared by the embedded and the standalone server."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from .monitor import MonitorConfig

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def default_data_dir() -> Path:
    """Where the app keeps its files: ``$XDG_DATA_HOME/fastasync-explorer``."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(base) / "fastasync-explorer"


@dataclass(frozen=True)
class Settings:
    """How to run the app. Defaults are the safe ones: loopback, ephemeral nothing."""

    host: str = "127.0.0.1"
    port: int = 8000
    blocking_mode: bool = False
    #: seconds uvicorn waits for open connections on shutdown before cancelling them
    graceful_timeout_s: int = 2
    #: worker processes for offloaded CPU work (started on first use)
    cpu_workers: int = 2
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    #: server-owned files: the SQLite database (job history), generated samples
    data_dir: Path = field(default_factory=default_data_dir)

    @property
    def is_loopback(self) -> bool:
        """True when only this machine can connect."""
        if self.host in LOOPBACK_HOSTS:
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False
