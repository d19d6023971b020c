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
"""

from __future__ import annotations

import asyncio
import os
import resource
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request, status
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import ClientDisconnect
from starlette.types import Message, Receive, Scope, Send

from server.deps import BlockingMode, MonitorDep, provided
from server.json_types import JsonInt
from server.patterns.stream.export import HEAD, TAIL, csv_batches, render_section, sqlite_rows
from server.patterns.stream.files import (
    FILE_NAME_PATTERN,
    BadName,
    NoSuchFile,
    SampleFiles,
    StoreFull,
)
from server.patterns.stream.memory import RssWatch
from server.patterns.stream.uploads import TooLarge, UploadsFull, UploadStore
from server.patterns.tasks.jobs import JobOut, JobStore
from server.state import state_of

#: the pitfall reads whole files into memory: refuse the ones that would hurt the machine
PITFALL_MAX_BYTES = 256 * 1024 * 1024
#: the CSV export's batch bounds
MAX_BATCH = 10_000
#: the pitfall's read: one plain read of the whole file
WHOLE = -1


@dataclass
class DownloadBook:
    """What ``/stream/stats`` reports about downloads, kept by :class:`Tracked`."""

    active: int = 0
    completed: int = 0
    aborted: int = 0
    bytes_sent: int = 0
    #: the newest file download's RSS, at its start and at its peak
    last_download: RssWatch | None = None


@dataclass
class StreamState:
    files: SampleFiles
    uploads: UploadStore
    downloads: DownloadBook


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
    state.provide(StreamState, StreamState(files, uploads, DownloadBook()))
    try:
        yield
    finally:
        await uploads.close()


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


class Tracked:
    """Mixin for a response: counts it as an active download and the bytes it sends.

    A response that ends without its last body message went out was cut short: the
    client left (Starlette cancels the send when it sees the disconnect). A file download
    also carries its :class:`RssWatch`, sampled as the body goes out.
    """

    book: DownloadBook
    watch: RssWatch | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        book, watch = self.book, self.watch
        finished = False

        async def counting_send(message: Message) -> None:
            nonlocal finished
            await send(message)
            if message["type"] == "http.response.body":
                size = len(message.get("body", b""))
                book.bytes_sent += size
                if watch is not None:
                    watch.sent(size)
                finished = finished or not message.get("more_body", False)

        book.active += 1
        if watch is not None:
            book.last_download = watch
            watch.sample()  # what the handler holds before the first byte goes out
        try:
            await super().__call__(scope, receive, counting_send)  # type: ignore[misc]
        finally:
            book.active -= 1
            if watch is not None:
                watch.finish()
            if finished:
                book.completed += 1
            else:
                book.aborted += 1


class TrackedFileResponse(Tracked, FileResponse):
    #: 256 KiB per read: a quarter of the thread hops of Starlette's 64 KiB default
    chunk_size = 256 * 1024

    def __init__(
        self, book: DownloadBook, *args: Any, watch: RssWatch | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.book = book
        self.watch = watch


class TrackedStreamingResponse(Tracked, StreamingResponse):
    def __init__(
        self, book: DownloadBook, *args: Any, watch: RssWatch | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.book = book
        self.watch = watch


def lookup(state: StreamState, name: str) -> os.PathLike[str]:
    """The file to send, or the 400/404 that says why not."""
    try:
        return state.files.path_of(name)
    except BadName as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail=str(exc)) from None
    except NoSuchFile as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from None


# -- files ----------------------------------------------------------------------------------


class FileOut(BaseModel):
    name: str
    size: int
    modified: float = Field(description="Unix time.")


class NewFileIn(BaseModel):
    """``POST /stream/files`` body."""

    model_config = ConfigDict(extra="forbid", strict=True)
    # the schema states the largest cap there can be; a server configured lower refuses
    # what is over its own cap with a 413 that says so
    size_bytes: JsonInt = Field(
        ge=1, le=2**30, description="1 byte up to the server's sample cap (at most 1 GiB)."
    )


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


class UploadOut(BaseModel):
    name: str = Field(description="Generated by the server; the client's name is never used.")
    size: int
    sha256: str
    expires_at: float = Field(description="Unix time the cleanup task deletes it.")


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


class UploadsOut(BaseModel):
    uploads: dict[str, float] = Field(description="Name -> unix time it will be deleted.")
    ttl_s: float
    max_bytes: int
    deleted: int = Field(description="Uploads the cleanup task has removed.")


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
    settings = state_of(request.app).settings
    path = settings.data_dir / "jobs.sqlite3"
    columns = tuple(JobOut.model_fields)

    async def body() -> AsyncIterator[str]:
        try:
            async with sqlite_rows(path, "jobs", columns) as source:
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


Rows = tuple[tuple[str, ...], list[tuple[Any, ...]]]


def process_section(state: StreamState) -> Rows:
    stats = stream_stats(state)
    return ("figure", "value"), [
        (k, v) for k, v in stats.items() if v is not None and not isinstance(v, dict)
    ]


async def files_section(state: StreamState) -> Rows:
    return ("name", "bytes"), [(f.name, f"{f.size:,}") for f in await state.files.listing()]


def jobs_section(jobs: JobStore | None) -> Rows:
    if jobs is None:
        return ("state", "jobs"), []
    return ("state", "jobs"), list(jobs.counts().items())


def stalls_section(monitor: Any) -> Rows:
    stalls = monitor.stalls_after(0)[-10:]
    return ("ms", "kind", "where", "route"), [
        (f"{s.duration_ms:.1f}", s.kind, s.location, s.route) for s in stalls
    ]


# -- figures --------------------------------------------------------------------------------


def memory() -> dict[str, int]:
    """Resident set size now and at its peak, in bytes (Linux /proc; else getrusage)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status_file:
            fields = dict(line.split(":", 1) for line in status_file if ":" in line)
        return {
            "rss_bytes": int(fields["VmRSS"].split()[0]) * 1024,
            "rss_peak_bytes": int(fields["VmHWM"].split()[0]) * 1024,
        }
    except (OSError, KeyError, ValueError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return {"rss_bytes": peak, "rss_peak_bytes": peak}


def open_fds() -> int | None:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return None


def stream_stats(state: StreamState) -> dict[str, Any]:
    book = state.downloads
    return {
        "downloads_active": book.active,
        "downloads_completed": book.completed,
        "downloads_aborted": book.aborted,
        "bytes_sent": book.bytes_sent,
        "uploads_receiving": state.uploads.receiving,
        "uploads_stored": len(state.uploads.expiry),
        "uploads_deleted": state.uploads.deleted,
        "uploads_refused": state.uploads.refused,
        "generating": state.files.busy,
        **memory(),
        "open_fds": open_fds(),
        "last_download": None if book.last_download is None else book.last_download.as_dict(),
    }


@router.get("/stats")
async def stats(state: StateDep) -> dict[str, Any]:
    """Downloads in flight and done, uploads, the server's memory and open descriptors."""
    return stream_stats(state)
