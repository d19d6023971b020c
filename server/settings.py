"""Settings shared by the embedded and the standalone server."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from .monitor import MonitorConfig

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


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

    @property
    def is_loopback(self) -> bool:
        """True when only this machine can connect."""
        if self.host in LOOPBACK_HOSTS:
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False
