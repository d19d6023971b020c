"""The guide's upload handler, against a sandbox, next to a server-generated name.

The guide writes each upload to ``f"/tmp/{file.filename}"``: the client picks the path, and
``../escaped.txt`` lands beside the upload directory, not in it. Here the guide's join runs
against ``<data_dir>/correctness-sandbox/uploads/`` (standing for ``/tmp``); the path is
resolved first, and anything that would land outside the sandbox itself is refused (400,
nothing written), so the demo shows the escape without ever touching a real system path.
The fixed form names the file itself (``secrets.token_hex(8) + ".bin"``) and keeps the
client's filename only as escaped metadata.

- ``POST /upload?form=guide|fixed``: multipart, one file part named ``file``; the body is
  capped at 1 MiB (413). No ``form``: blocking mode picks the guide's.
- ``POST /upload/reset``: empty the sandbox.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.datastructures import UploadFile
from starlette.types import Message

from server.deps import BlockingMode, provided
from server.patterns.correctness.guide_params import absent_not_null

#: the request body's cap (the file and its multipart headers)
MAX_BODY = 1024 * 1024
#: files written since the last reset; beyond, uploads are refused (507)
MAX_FILES = 50
UploadForm = Literal["guide", "fixed"]


class TooLarge(ValueError):
    """The body passed ``MAX_BODY`` (the API answers 413)."""


class Refused(ValueError):
    """The guide's path cannot be written (the API answers 400 with this sentence)."""


@dataclass
class UploadSandbox:
    """``<data_dir>/correctness-sandbox/``, its ``uploads/`` (the guide's ``/tmp``), and the
    client filenames the fixed form kept, by stored name."""

    root: Path
    names: dict[str, str] = field(default_factory=dict)
    written: int = 0

    @property
    def uploads(self) -> Path:
        return self.root / "uploads"

    @classmethod
    async def open(cls, data_dir: Path) -> UploadSandbox:
        """The sandbox under ``data_dir``, emptied (whatever a previous run left)."""
        sandbox = cls((data_dir / "correctness-sandbox").resolve())
        await sandbox.reset()
        return sandbox

    async def reset(self) -> int:
        """Empty the sandbox (``uploads/`` stays, empty): how many files were removed."""
        removed = await asyncio.to_thread(_empty, self.root, self.uploads)
        self.names.clear()
        self.written = 0
        return removed

    async def close(self) -> None:
        """Leave nothing behind (the app is stopping)."""
        await self.reset()

    def guide_path(self, filename: str) -> Path:
        """Where the guide's ``f"/tmp/{file.filename}"`` puts it, resolved; :class:`Refused`
        for anything outside the sandbox, or that cannot be a new file."""
        path = f"{self.uploads}/{filename}"  # the guide: f"/tmp/{file.filename}"
        try:
            target = Path(path).resolve()
        except (ValueError, OSError) as exc:  # a NUL byte, a loop of links
            raise Refused(f"refused: {filename!r} is not a path ({exc})") from None
        if not target.is_relative_to(self.root) or target == self.root:
            raise Refused(
                f"refused: {filename!r} resolves to {target}, outside the sandbox "
                f"{self.root}; nothing written (the guide's handler would have written it)"
            )
        if target.is_dir() or not target.parent.is_dir():
            where = "is a directory" if target.is_dir() else f"has no directory {target.parent}"
            raise Refused(
                f"refused: {filename!r} resolves to {target}, which {where}; nothing written"
            )
        return target

    def room(self) -> None:
        if self.written >= MAX_FILES:
            raise HTTPException(
                status.HTTP_507_INSUFFICIENT_STORAGE,
                f"{MAX_FILES} files in the sandbox; POST /correctness/upload/reset empties it",
            )


def _empty(root: Path, uploads: Path) -> int:
    """Remove everything under ``root`` (never following a link out), keep ``uploads/``."""
    removed = 0
    if root.is_dir():
        for entry in root.rglob("*"):
            if entry.is_file() or entry.is_symlink():
                removed += 1
        shutil.rmtree(root)
    uploads.mkdir(parents=True, exist_ok=True)
    return removed


SandboxDep = Annotated[UploadSandbox, Depends(provided(UploadSandbox))]


def escaped(filename: str | None) -> str:
    """A client's filename made safe to show and keep: non-ASCII and controls escaped."""
    return (filename or "").encode("unicode_escape").decode("ascii")


async def guide_upload(sandbox: UploadSandbox, file: UploadFile) -> tuple[Path, int]:
    """The guide's handler: the client's filename is the path (resolved and checked first)."""
    path = sandbox.guide_path(file.filename or "")
    content = await file.read()
    await asyncio.to_thread(path.write_bytes, content)
    return path, len(content)


async def fixed_upload(sandbox: UploadSandbox, file: UploadFile) -> tuple[Path, int]:
    """The corrected handler: a name the server made; the client's only as metadata."""
    name = secrets.token_hex(8) + ".bin"
    path = sandbox.uploads / name
    content = await file.read()
    await asyncio.to_thread(path.write_bytes, content)
    sandbox.names[name] = escaped(file.filename)
    return path, len(content)


async def file_part(request: Request) -> tuple[UploadFile, Any]:
    """The body's one file part ``file``, read with the body capped at ``MAX_BODY``."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise TooLarge(f"{int(declared):,} bytes declared")
    seen = 0

    async def capped() -> Message:
        nonlocal seen
        message = await request.receive()
        seen += len(message.get("body", b""))
        if seen > MAX_BODY:
            raise TooLarge(f"over {MAX_BODY:,} bytes")
        return message

    form = await Request(request.scope, capped).form(max_files=1, max_fields=0)
    part = form.get("file")
    if not isinstance(part, UploadFile):
        await form.close()
        # FastAPI's own 422 shape (the app's handler sends it), as for any missing field
        raise RequestValidationError(
            [
                {
                    "type": "missing",
                    "loc": ["body", "file"],
                    "msg": "a multipart/form-data body with one file part named 'file' is needed",
                    "input": None,
                }
            ]
        )
    return part, form


class UploadOut(BaseModel):
    """Where one upload went."""

    form: UploadForm
    filename: str = Field(description="The client's filename, as received (escaped).")
    stored_as: str = Field(description="Where it was written, relative to the sandbox.")
    escaped: bool = Field(description="It landed outside the upload directory.")
    size: int
    verdict: str


class ResetOut(BaseModel):
    """What emptying the sandbox removed."""

    removed: int


router = APIRouter()

MULTIPART_FILE: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "additionalProperties": False,
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}
UPLOAD_ANSWERS: dict[int | str, dict[str, Any]] = {
    400: {"description": "The guide's path is outside the sandbox, or no file can go there."},
    413: {"description": f"The body is over {MAX_BODY:,} bytes; nothing is written."},
    507: {"description": f"{MAX_FILES} files in the sandbox: reset it."},
}


@router.post("/upload", responses=UPLOAD_ANSWERS, openapi_extra=MULTIPART_FILE)
async def upload(
    request: Request,
    sandbox: SandboxDep,
    blocking: BlockingMode,
    form: Annotated[
        str | None,
        Query(
            pattern="^(guide|fixed)$",
            json_schema_extra=absent_not_null,
            description="guide (client's filename), fixed; none: by mode",
        ),
    ] = None,
) -> UploadOut:
    """Store one uploaded file: where the client's filename says (guide) or under a
    server-generated name (fixed)."""
    # the pattern has let only "guide" and "fixed" through
    chosen: UploadForm = "guide" if form == "guide" or (form is None and blocking) else "fixed"
    sandbox.room()
    try:
        part, parsed = await file_part(request)
    except TooLarge as exc:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE, f"{exc}: uploads are capped at {MAX_BODY:,} bytes"
        ) from None
    try:
        written, size = await (guide_upload if chosen == "guide" else fixed_upload)(sandbox, part)
    except Refused as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
    except OSError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"cannot write it: {exc}") from None
    finally:
        await parsed.close()
    sandbox.written += 1
    stored = written.relative_to(sandbox.root).as_posix()
    outside = not written.is_relative_to(sandbox.uploads)
    shown = escaped(part.filename)
    if outside:
        verdict = f"ESCAPED the upload directory: wrote {sandbox.root.name}/{stored}"
    elif chosen == "guide":
        verdict = f"stayed in uploads/: wrote {sandbox.root.name}/{stored}"
    else:
        verdict = f"server-generated name: wrote {stored}; the filename sent is only metadata"
    return UploadOut(
        form=chosen,
        filename=shown,
        stored_as=stored,
        escaped=outside,
        size=size,
        verdict=verdict,
    )


@router.post("/upload/reset")
async def reset_sandbox(sandbox: SandboxDep) -> ResetOut:
    """Empty the sandbox (``uploads/`` stays, empty)."""
    return ResetOut(removed=await sandbox.reset())
