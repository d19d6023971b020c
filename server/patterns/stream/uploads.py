"""Uploads: streamed to disk under a server-generated name, capped, deleted later.

The body goes from the socket to the file chunk by chunk (never whole in memory), into a
hidden ``.part`` file that becomes ``<random>.bin`` only once complete and within the
cap; anything else (too large, client gone, cancelled) removes the part file. A cleanup
task owned by the store (strong reference, cancelled at shutdown) deletes each upload
``ttl_s`` after it arrived; at startup it adopts what a previous run left, by mtime.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import anyio

from server.patterns.stream.files import list_files

log = logging.getLogger("fastasync.stream")

#: uploads kept at once; beyond, new ones are refused (507)
MAX_UPLOADS = 100


class TooLarge(ValueError):
    """The body is over the cap (the API answers 413)."""


class UploadsFull(RuntimeError):
    """``MAX_UPLOADS`` are waiting for cleanup (the API answers 507)."""


@dataclass(frozen=True)
class Upload:
    name: str
    size: int
    sha256: str
    expires_at: float  # unix time


class UploadStore:
    """``<data_dir>/uploads`` and the task that empties it."""

    def __init__(self, root: Path, max_bytes: int, ttl_s: float) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.ttl_s = ttl_s
        #: name -> unix time it is due for deletion
        self.expiry: dict[str, float] = {}
        self.receiving = 0
        self.deleted = 0
        self.refused = 0
        self._wake = asyncio.Event()
        self._reaper: asyncio.Task[None] | None = None

    async def open(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        for leftover in self.root.glob(".*.part"):
            leftover.unlink(missing_ok=True)
        for info in await asyncio.to_thread(list_files, self.root):
            self.expiry[info.name] = info.modified + self.ttl_s
        self._reaper = asyncio.create_task(self._reap(), name="stream-upload-cleanup")

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper

    async def receive(self, chunks: AsyncIterator[bytes], declared: int | None) -> Upload:
        """Stream ``chunks`` to a new file; :class:`TooLarge` as soon as the cap is passed."""
        if declared is not None and declared > self.max_bytes:
            self.refused += 1
            raise TooLarge(f"{declared:,} bytes declared; uploads are capped at {self._cap}")
        if len(self.expiry) + self.receiving >= MAX_UPLOADS:
            raise UploadsFull(f"{MAX_UPLOADS} uploads are waiting for cleanup")
        name = f"{secrets.token_hex(12)}.bin"
        part = self.root / f".{name}.part"
        digest = hashlib.sha256()
        size = 0
        self.receiving += 1
        try:
            async with await anyio.open_file(part, "wb") as out:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > self.max_bytes:
                        self.refused += 1
                        raise TooLarge(f"over {self._cap}; uploads are capped at {self._cap}")
                    digest.update(chunk)
                    await out.write(chunk)
            await anyio.Path(part).rename(self.root / name)
        except BaseException:
            # Shielded: a cancelled request must still remove what it wrote.
            with anyio.CancelScope(shield=True):
                await anyio.Path(part).unlink(missing_ok=True)
            raise
        finally:
            self.receiving -= 1
        expires = time.time() + self.ttl_s
        self.expiry[name] = expires
        self._wake.set()
        return Upload(name, size, digest.hexdigest(), expires)

    @property
    def _cap(self) -> str:
        return f"{self.max_bytes:,} bytes"

    async def _reap(self) -> None:
        """Sleep until the next upload is due (or a new one arrives), delete what is due."""
        while True:
            self._wake.clear()
            now = time.time()
            due = [name for name, at in self.expiry.items() if at <= now]
            for name in due:
                del self.expiry[name]
                try:
                    await anyio.Path(self.root / name).unlink(missing_ok=True)
                    self.deleted += 1
                except OSError as exc:
                    log.error("could not delete upload %s: %s", name, exc.strerror)
            wait = min(self.expiry.values(), default=now + 3600) - time.time()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(wait, 0.0)):
                    await self._wake.wait()
