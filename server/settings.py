"""Settings shared by the embedded and the standalone server."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from fastasync_probe.monitor import MonitorConfig, ProjectCode

#: the server package's own code: what a stall in the server blames
SERVER_CODE = ProjectCode.of(Path(__file__).resolve().parent)

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def default_data_dir() -> Path:
    """Where the app keeps its files: ``$XDG_DATA_HOME/fastasync-explorer``."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(base) / "fastasync-explorer"


DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def default_redis_url() -> str:
    """``$FASTASYNC_REDIS_URL``, else Redis's own default on this machine."""
    return os.environ.get("FASTASYNC_REDIS_URL") or DEFAULT_REDIS_URL


@dataclass(frozen=True)
class Settings:
    """How to run the app. Defaults are the safe ones: loopback, ephemeral nothing."""

    host: str = "127.0.0.1"
    port: int = 8000
    blocking_mode: bool = False
    #: Shutdown budget (quit must take seconds, not minutes): uvicorn first waits this
    #: long for open requests (background tasks included) before cancelling them ...
    graceful_timeout_s: int = 1
    #: ... then the lifespan gives unfinished queued jobs this long before recording them
    #: as cancelled. stop() bounds the whole at the sum plus one second.
    job_grace_s: float = 1.0
    #: worker processes for offloaded CPU work (started on first use)
    cpu_workers: int = 2
    monitor: MonitorConfig = field(default_factory=lambda: MonitorConfig(project_code=SERVER_CODE))
    #: server-owned files: the SQLite database (job history), generated samples
    data_dir: Path = field(default_factory=default_data_dir)
    #: /stream: the largest upload accepted (bigger ones get 413, nothing kept) ...
    upload_max_bytes: int = 64 * 1024 * 1024
    #: ... and how long an upload is kept before the cleanup task deletes it
    upload_ttl_s: float = 600.0
    #: /stream: the largest sample file the server will generate
    sample_max_bytes: int = 1024 * 1024 * 1024
    #: the /db patterns' database: ``postgresql://...`` (asyncpg), ``sqlite:///file``, or
    #: ``None`` for an SQLite file in ``data_dir``. A URL that does not work falls back to
    #: that file, and ``/db/status`` says why.
    database_url: str | None = None
    #: the durable queue's Redis (/queue): the arq workers and the server meet there. When
    #: it does not answer, /queue says so and only the in-process backend runs.
    redis_url: str = field(default_factory=default_redis_url)

    @property
    def is_loopback(self) -> bool:
        """True when only this machine can connect."""
        if self.host in LOOPBACK_HOSTS:
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False
