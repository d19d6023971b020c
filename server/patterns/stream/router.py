"""Streaming: file downloads with Range, uploads with a cap, CSV and HTML streamed in parts.

- Downloads come only from ``<data_dir>/files``
  (:func:`server.patterns.stream.files.resolve_inside`), sent
  by Starlette's ``FileResponse``: async chunked reads, ``Range`` (206; unsatisfiable 416,
  malformed 400), ``ETag``/``Last-Modified``. Pitfall (blocking mode): the whole file read
  with a plain ``open().read()`` inside the handler - the loop stalls for the read, and the
  server's memory grows by the file's size. Each download records the server's RSS at its
  start and at its peak (:class:`server.patterns.stream.memory.RssWatch`).
- Uploads stream to disk under a generated name, capped (413, nothing left behind) and
  deleted ``upload_ttl_s`` later by a cleanup task.
- ``/stream/export.csv``: the job history in keyset batches, formula cells neutralised.
- ``/stream/report``: an HTML report sent section by section, everything escaped.
- ``/stream/stats``: active downloads, bytes sent, the server's RSS and open descriptors,
  and the last download's RSS peak.

The models are in :mod:`.models`, the counting responses in :mod:`.tracking`, the figures
and the report's sections in :mod:`.stats`.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request, status
from fastapi.responses import FileResponse, StreamingResponse
from starlette.requests import ClientDisconnect

from server.deps import BlockingMode, MonitorDep, provided
from server.patterns.stream.export import HEAD, TAIL, csv_batches, render_section, sqlite_rows
from server.patterns.stream.files import (
    FILE_NAME_PATTERN,
    BadName,
    NoSuchFile,
    SampleFiles,
    StoreFull,
)
from server.patterns.stream.memory import RssWatch
from server.patterns.stream.models import FileOut, NewFileIn, UploadOut, UploadsOut
from server.patterns.stream.stats import (
    DownloadBook,
    StreamState,
    files_section,
    jobs_section,
    process_section,
    stalls_section,
    stream_stats,
)
from server.patterns.stream.tracking import TrackedFileResponse, TrackedStreamingResponse
from server.patterns.stream.uploads import TooLarge, UploadsFull, UploadStore
from server.patterns.tasks.jobs import JobStore
from server.patterns.tasks.journal import JOB_COLUMNS, JOB_TABLE, jobs_database
from server.state import state_of

#: the names other modules import from here besides the routes (StreamState: the tests)
__all__ = ["StreamState", "router"]

#: the pitfall reads whole files into memory: refuse the ones that would hurt the machine
PITFALL_MAX_BYTES = 256 * 1024 * 1024
#: the CSV export's batch bounds
MAX_BATCH = 10_000
#: the pitfall's read: one plain read of the whole file
WHOLE = -1


@asynccontextmanager
async def stream_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The files and uploads directories, and the upload cleanup task (cancelled at exit)."""
    state = state_of(app)
    settings = state.settings
    files = SampleFiles(settings.data_dir / "files", settings.sample_max_bytes)
    files.open()
    uploads = UploadStore(
        settings.data_dir / "uploads", settings.upload_max_bytes, settings.upload_ttl_s
    )
    await uploads.open()
    parts = StreamState(files, uploads, DownloadBook())
    async with state.opened(StreamState, parts, uploads.close):
        yield


router = APIRouter(prefix="/stream", tags=["stream"], lifespan=stream_lifespan)


StateDep = Annotated[StreamState, Depends(provided(StreamState))]
#: The schema states the rule (a 422 names it); server/patterns/stream/files.py checks it
#: again, then resolves the path and refuses anything outside the directory.
FileName = Annotated[
    str,
    Path(
        description="A name from GET /stream/files: 1-128 letters, digits, '.', '_' or '-'.",
        pattern=FILE_NAME_PATTERN,
        max_length=128,
    ),
]


def lookup(state: StreamState, name: str) -> os.PathLike[str]:
    """The file to send, or the 400/404 that says why not."""
    try:
        return state.files.path_of(name)
    except BadName as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail=str(exc)) from None
    except NoSuchFile as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from None


# -- files ----------------------------------------------------------------------------------


@router.get("/files")
async def list_sample_files(state: StateDep) -> list[FileOut]:
    """The sample files, oldest first."""
    return [FileOut(**vars(f)) for f in await state.files.listing()]


@router.post("/files", status_code=status.HTTP_201_CREATED)
async def create_file(body: NewFileIn, state: StateDep) -> FileOut:
    """Generate a file of ``size_bytes`` random bytes under a server-chosen name."""
    if body.size_bytes > state.files.max_bytes:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=f"size_bytes is capped at {state.files.max_bytes:,}",
        )
    try:
        info = await state.files.generate(body.size_bytes)
    except StoreFull as exc:
        raise HTTPException(status.HTTP_507_INSUFFICIENT_STORAGE, detail=str(exc)) from None
    return FileOut(**vars(info))


@router.get(
    "/files/{name:path}",
    response_class=FileResponse,
    responses={
        206: {"description": "The requested Range."},
        400: {"description": "Not a plain file name, or a malformed Range."},
        404: {"description": "No such file in the server's directory."},
        416: {"description": "Range outside the file."},
    },
)
async def download(name: FileName, state: StateDep, blocking: BlockingMode) -> Any:
    """Send a file from the server's directory: chunked async reads, Range supported.

    Pitfall (blocking mode): :func:`read_whole_file` - the file read whole, with a
    blocking call, before the first byte goes out.
    """
    path = lookup(state, name)
    watch = RssWatch.start(name)  # the server's RSS before anything is read
    if blocking:
        return await read_whole_file(state, path, watch)
    return TrackedFileResponse(
        state.downloads, path, media_type="application/octet-stream", filename=name, watch=watch
    )


async def read_whole_file(state: StateDep, path: os.PathLike[str], watch: RssWatch) -> Any:
    """The pitfall: ``open().read()`` in an ``async def``.

    The loop runs nothing else until the whole file is read (the stall shows on the
    monitor with this line), and the server holds the file's size in memory for as long
    as the download takes. No Range either. Refused over ``PITFALL_MAX_BYTES``.
    """
    if os.stat(path).st_size > PITFALL_MAX_BYTES:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"blocking mode reads files whole; refused over {PITFALL_MAX_BYTES:,} bytes",
        )
    with open(path, "rb") as f:  # noqa: ASYNC230 - the pitfall itself
        data = f.read(WHOLE)

    async def chunks() -> AsyncIterator[bytes | memoryview]:
        view = memoryview(data)
        for start in range(0, len(view), 256 * 1024):
            yield view[start : start + 256 * 1024]

    return TrackedStreamingResponse(
        state.downloads,
        chunks(),
        media_type="application/octet-stream",
        headers={"content-length": str(len(data))},
        watch=watch,
    )


@router.delete(
    "/files/{name:path}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={
        400: {"description": "Not a plain file name."},
        404: {"description": "No such file in the server's directory."},
    },
)
async def delete_file(name: FileName, state: StateDep) -> None:
    """Delete a sample file."""
    lookup(state, name)
    await state.files.delete(name)


# -- uploads --------------------------------------------------------------------------------


UPLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    413: {"description": "Over the upload cap; nothing is kept."},
    507: {"description": "Too many uploads waiting for cleanup."},
}


# POST and PUT (``curl -T``) are two operations, each with its own OpenAPI id.
@router.post("/uploads", status_code=status.HTTP_201_CREATED, responses=UPLOAD_RESPONSES)
@router.put(
    "/uploads",
    status_code=status.HTTP_201_CREATED,
    responses=UPLOAD_RESPONSES,
    operation_id="upload_put_stream_uploads",
)
async def upload(request: Request, state: StateDep) -> UploadOut:
    """Store the raw request body (``curl -T file`` (PUT) or ``--data-binary @file``).

    Streamed to disk as it arrives; refused with 413 before reading if Content-Length is
    over the cap, or as soon as the count passes it.
    """
    declared = request.headers.get("content-length")
    try:
        size = int(declared) if declared is not None else None
    except ValueError:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail="bad Content-Length") from None
    try:
        stored = await state.uploads.receive(request.stream(), size)
    except TooLarge as exc:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, detail=str(exc)) from None
    except UploadsFull as exc:
        raise HTTPException(status.HTTP_507_INSUFFICIENT_STORAGE, detail=str(exc)) from None
    except ClientDisconnect:
        # Nobody will read this answer; the part file is already gone.
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail="client went away") from None
    return UploadOut(**vars(stored))


@router.get("/uploads")
async def list_uploads(state: StateDep) -> UploadsOut:
    """Uploads waiting for cleanup."""
    store = state.uploads
    return UploadsOut(
        uploads=dict(store.expiry),
        ttl_s=store.ttl_s,
        max_bytes=store.max_bytes,
        deleted=store.deleted,
    )


# -- exports --------------------------------------------------------------------------------


@router.get("/export.csv", response_class=StreamingResponse)
async def export_csv(
    request: Request,
    state: StateDep,
    batch: Annotated[int, Query(ge=1, le=MAX_BATCH, description="Rows per query.")] = 500,
) -> StreamingResponse:
    """The job history as CSV: one keyset query per batch, one chunk per batch."""
    path = jobs_database(state_of(request.app).settings.data_dir)

    async def body() -> AsyncIterator[str]:
        try:
            async with sqlite_rows(path, JOB_TABLE, JOB_COLUMNS) as source:
                async for chunk in csv_batches(source, batch):
                    yield chunk
        except sqlite3.Error as exc:
            # The header may be out already: end the body with a line that says so.
            yield f"# export failed: {exc}\r\n"

    return TrackedStreamingResponse(
        state.downloads,
        body(),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": 'attachment; filename="jobs.csv"'},
    )


@router.get("/report", response_class=StreamingResponse)
async def report(
    request: Request,
    state: StateDep,
    monitor: MonitorDep,
    delay: Annotated[
        float,
        Query(ge=0, le=5, allow_inf_nan=False, description="Seconds between sections."),
    ] = 0.0,
) -> StreamingResponse:
    """An HTML report sent a section at a time, each built when its turn comes."""
    jobs = state_of(request.app).find(JobStore)

    async def sections() -> AsyncIterator[str]:
        yield HEAD + f"<h1>Server report, {time.strftime('%Y-%m-%d %H:%M:%S')}</h1>\n"
        for title in ("Process", "Sample files", "Job states", "Recent stalls"):
            await asyncio.sleep(delay)
            if title == "Process":
                columns, rows = process_section(state)
            elif title == "Sample files":
                columns, rows = await files_section(state)
            elif title == "Job states":
                columns, rows = jobs_section(jobs)
            else:
                columns, rows = stalls_section(monitor)
            yield render_section(title, columns, rows)
        yield TAIL

    return TrackedStreamingResponse(state.downloads, sections(), media_type="text/html")


@router.get("/stats")
async def stats(state: StateDep) -> dict[str, Any]:
    """Downloads in flight and done, uploads, the server's memory and open descriptors."""
    return stream_stats(state)
