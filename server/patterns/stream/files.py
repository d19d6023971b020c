"""The server-owned files directory: safe name lookup, and sample files to download.

Every download is looked up with :func:`resolve_inside`: a plain name (no directory part,
no NUL, no leading dot), resolved with symlinks followed, and only accepted if the result
is still inside the directory and a regular file. The name a client sends is never
joined onto a path any other way.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path

#: what a file name may look like (every name the server generates matches)
FILE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
_NAME = re.compile(FILE_NAME_PATTERN)
#: sample files kept at once, and their total size
MAX_FILES = 32
MAX_TOTAL_BYTES = 8 * 1024**3
#: generation writes this much per call (one random block, repeated)
_BLOCK = 1024 * 1024


class BadName(ValueError):
    """The name can never denote a file in the directory (the API answers 400)."""


class NoSuchFile(LookupError):
    """No regular file of that name inside the directory (the API answers 404)."""


class StoreFull(RuntimeError):
    """A bound on files or bytes was reached (the API answers 507)."""


def check_name(name: str) -> None:
    """Refuse anything that is not a plain file name, saying why."""
    if "\x00" in name:
        raise BadName("file names cannot contain NUL")
    if "/" in name or "\\" in name:
        raise BadName("file names have no directory part ('/' or '\\')")
    if name in {".", ".."} or name.startswith("."):
        raise BadName("file names cannot be '.', '..' or start with a dot")
    if not _NAME.match(name):
        raise BadName("file names are 1-128 letters, digits, '.', '_' or '-'")


def resolve_inside(root: Path, name: str) -> Path:
    """The regular file ``name`` inside ``root``, symlinks followed, or an exception.

    ``resolve()`` follows a symlink to wherever it points; ``is_relative_to`` then
    refuses a target outside ``root``. These are two local syscalls, cheap enough to
    run on the loop.
    """
    check_name(name)
    base = root.resolve()
    path = (base / name).resolve()
    if not path.is_relative_to(base) or path == base:
        raise NoSuchFile(f"no file {name!r} in the server's directory")
    if not path.is_file():
        raise NoSuchFile(f"no file {name!r} in the server's directory")
    return path


@dataclass(frozen=True)
class FileInfo:
    name: str
    size: int
    modified: float


def list_files(root: Path) -> list[FileInfo]:
    """The regular, visible files of ``root`` (blocking: call it in a thread)."""
    found = []
    with os.scandir(root) as entries:
        for entry in entries:
            if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
                continue
            stat = entry.stat(follow_symlinks=False)
            found.append(FileInfo(entry.name, stat.st_size, stat.st_mtime))
    return sorted(found, key=lambda f: f.modified)


class SampleFiles:
    """Generated files to download, in ``<data_dir>/files``. One generation at a time."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self._busy = asyncio.Lock()

    def open(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        for leftover in self.root.glob(".*.part"):  # a generation a crash interrupted
            leftover.unlink(missing_ok=True)

    @property
    def busy(self) -> bool:
        return self._busy.locked()

    def path_of(self, name: str) -> Path:
        return resolve_inside(self.root, name)

    async def listing(self) -> list[FileInfo]:
        return await asyncio.to_thread(list_files, self.root)

    async def generate(self, size: int) -> FileInfo:
        """Write a ``size``-byte file under a server-chosen name, in a worker thread.

        Written to a hidden ``.part`` name and renamed when complete, so a download can
        never see half a file; cancelled (client gone, shutdown) means no file at all.
        """
        if self._busy.locked():
            raise StoreFull("a sample file is being generated; try again when it is done")
        async with self._busy:
            existing = await self.listing()
            if len(existing) >= MAX_FILES:
                raise StoreFull(f"{MAX_FILES} files already; delete some first")
            if sum(f.size for f in existing) + size > MAX_TOTAL_BYTES:
                raise StoreFull(f"sample files are capped at {MAX_TOTAL_BYTES:,} bytes in total")
            name = f"sample-{_human(size)}-{secrets.token_hex(4)}.bin"
            part = self.root / f".{name}.part"
            stop = threading.Event()
            writing = asyncio.ensure_future(asyncio.to_thread(_write, part, size, stop))
            try:
                await asyncio.shield(writing)
                final = self.root / name
                part.rename(final)
            except BaseException:
                stop.set()  # the thread checks it between blocks
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await writing
                part.unlink(missing_ok=True)
                raise
            stat = final.stat()
            return FileInfo(name, stat.st_size, stat.st_mtime)

    async def delete(self, name: str) -> None:
        path = self.path_of(name)
        await asyncio.to_thread(path.unlink)


def _write(path: Path, size: int, stop: threading.Event) -> None:
    block = os.urandom(min(size, _BLOCK))  # incompressible, so no transport can cheat
    with path.open("wb") as out:
        left = size
        while left > 0:
            if stop.is_set():
                raise InterruptedError("generation cancelled")
            out.write(block[: min(left, len(block))])
            left -= min(left, len(block))


def _human(size: int) -> str:
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= scale and size % scale == 0:
            return f"{size // scale}{unit}"
    return f"{size}B"
