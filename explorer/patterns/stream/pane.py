"""Streaming pane: generate a file, download it with a progress bar, cancel, export, upload."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import Any

import httpx
from textual import on, work
from textual.app import ComposeResult
from textual.message import Message
from textual.widgets import Button, Input, Label, ProgressBar

from explorer.code_source import SourceBlock, source_of
from explorer.pane import Lesson, LessonLine, PatternPane, Teaching
from explorer.patterns.stream.figures import MiB, Transfer, transfer_text
from explorer.widgets.control_row import ControlRow
from explorer.widgets.follow_log import FollowLog
from explorer.widgets.live_text import LiveText
from explorer.widgets.number_field import number_input
from fastasync_probe.monitor import Stall
from server.patterns.stream import export as files_export
from server.patterns.stream import router as routes
from server.patterns.stream import uploads as files_uploads

#: progress redraws at most this often (the download itself runs at full speed)
REFRESH_S = 0.25

#: what a download teaches, right and as the pitfall (Generate, which only makes the file,
#: says the same)
DOWNLOAD_LESSON = Teaching(
    lesson="FileResponse: 256 KiB async reads from the server's own directory, Range "
    "supported: the RSS peak stays small whatever the size. Cancel: the server "
    "stops at its next chunk.",
    pitfall="Blocking mode: open().read() reads the whole file on the loop: it stalls "
    "(the UI too), and the server holds all of it until the download ends: "
    "read the peak (RSS 'now' is back down by then).",
)
#: CSV export and Report, which have no pitfall form
EXPORT_LESSON = Teaching(
    lesson="CSV: one keyset query per batch, one chunk per batch; cells starting with "
    "= + - @ tab or CR get a leading apostrophe. Report: each section is built "
    "and sent in turn, everything escaped."
)
UPLOAD_LESSON = Teaching(
    lesson="The body goes to disk chunk by chunk under a name the server picks; over "
    "the cap it is a 413 and nothing is left; a cleanup task deletes it later."
)
#: what each action teaches
LESSONS = {
    "download": DOWNLOAD_LESSON,
    "generate": DOWNLOAD_LESSON,
    "csv": EXPORT_LESSON,
    "report": EXPORT_LESSON,
    "upload": UPLOAD_LESSON,
}


class StreamPane(
    PatternPane,
    slug="stream",
    title="Streaming",
    summary="downloads with progress and Range, CSV and report streams, uploads",
):
    """Downloads with a real progress bar and the server's memory beside it."""

    DEFAULT_CSS = """
    StreamPane #more { margin-top: 1; }
    StreamPane #size { width: 6; margin-right: 1; }
    /* a fixed height: a lesson of another length must not resize the log below (a log
       no longer at its end stops following new lines) */
    StreamPane Lesson { height: 3; margin-top: 1; }
    StreamPane #progress { height: 1; }
    StreamPane #progress Bar { width: 1fr; }
    /* the bar's percentage (a Label) keeps a space at its right */
    StreamPane #progress Label { padding: 0 1 0 0; }
    StreamPane #transfer { height: 4; }
    StreamPane #results { height: 1fr; min-height: 3; }
    """

    @dataclass
    class Done(Message):
        """A request finished: what to log."""

        line: str
        ok: bool = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.file: dict[str, Any] | None = None
        self.transfer: Transfer | None = None
        self.server: dict[str, Any] = {}
        self.last_action = "download"
        self._bar = ProgressBar(id="progress", show_eta=False, total=100)
        self._transfer_line = LiveText(id="transfer")
        self._log = FollowLog(max_lines=300, id="results")

    def compose(self) -> ComposeResult:
        with ControlRow(id="controls"):
            yield Label("size (MiB)")
            yield number_input("size", "64", 1, 1024, "File size (MiB)")
            yield Button("Download", id="download", variant="primary", compact=True)
            yield Button("Cancel", id="cancel", compact=True)
            yield Button("Generate", id="generate", compact=True)
        with ControlRow(id="more"):
            yield Button("CSV export", id="csv", compact=True)
            yield Button("Report", id="report", compact=True)
            yield Button("Upload", id="upload", compact=True)
        yield Lesson(id="lesson")
        yield self._bar
        yield self._transfer_line
        yield self._log

    def on_mount(self) -> None:
        self.poll_stats()
        self.set_interval(REFRESH_S, self._show_transfer)

    # -- buttons --------------------------------------------------------------------------

    def _start(self, action: str) -> None:
        self.last_action = action
        self.show_lesson()

    def _start_sized(self, action: str, start: Callable[[int], object]) -> None:
        """Start ``action`` with the size field in bytes, unless the field is not valid."""
        size_field = self.query_one("#size", Input)
        if self.fields_valid(size_field):
            self._start(action)
            start(int(size_field.value) * MiB)

    @on(Button.Pressed, "#download")
    def _download(self) -> None:
        self.action_run()

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.workers.cancel_group(self, "stream-download")

    @on(Button.Pressed, "#generate")
    def _generate(self) -> None:
        self._start_sized("generate", self.generate)

    @on(Button.Pressed, "#csv")
    def _csv(self) -> None:
        self._start("csv")
        self.fetch("/stream/export.csv?batch=200", "CSV export")

    @on(Button.Pressed, "#report")
    def _report(self) -> None:
        self._start("report")
        self.fetch("/stream/report?delay=0.3", "Report")

    @on(Button.Pressed, "#upload")
    def _upload(self) -> None:
        self._start_sized("upload", self.upload)

    def action_run(self) -> None:
        """The ``r`` key: download a file of the size asked (generated first if need be)."""
        self._start_sized("download", self.download)

    @work(group="stream-generate", exclusive=True)
    async def generate(self, size: int) -> None:
        await self._generated(size)

    async def _generated(self, size: int) -> bool:
        """Have the server generate a sample file of ``size`` bytes; True if it did."""
        try:
            response = await self.context.http.post("/stream/files", json={"size_bytes": size})
            if response.status_code != 201:
                self.post_message(self.Done(f"generate: {response.status_code} {response.text}"))
                return False
            self.file = response.json()
            self.post_message(self.Done(f"generated {self.file['name']} ({size:,} bytes)"))
            return True
        except httpx.HTTPError as exc:
            self.post_message(self.Done(f"generate: {type(exc).__name__}", ok=False))
            return False

    @work(group="stream-download", exclusive=True)
    async def download(self, size: int) -> None:
        """Stream the file, counting bytes as they arrive; the bar redraws from the counts.

        The file is the last one generated if it has the size asked, else a new one.
        """
        http = self.context.http
        if (self.file is None or self.file["size"] != size) and not await self._generated(size):
            return
        assert self.file is not None
        name = self.file["name"]
        form = "read whole" if self.context.blocking.enabled else "FileResponse"
        transfer = Transfer(name, self.file["size"], started=time.monotonic())
        self.transfer = transfer
        try:
            async with http.stream("GET", f"/stream/files/{name}", timeout=None) as response:
                if response.status_code != 200:
                    await response.aread()
                    transfer.outcome = f"{response.status_code} {response.text[:120]}"
                    return
                async for chunk in response.aiter_raw():
                    transfer.received += len(chunk)
            transfer.outcome = "complete"
        except asyncio.CancelledError:
            transfer.outcome = "cancelled: the server stops at its next chunk"
            raise
        except httpx.HTTPError as exc:
            transfer.outcome = f"{type(exc).__name__}"
        finally:
            transfer.finished = time.monotonic()
            self.post_message(self.Done(f"download {name} ({form}): {transfer.outcome}"))

    @work(group="stream-fetch")
    async def fetch(self, path: str, title: str) -> None:
        """A streamed text response: log each chunk as it arrives (size and when)."""
        started = time.monotonic()
        chunks = 0
        size = 0
        try:
            async with self.context.http.stream("GET", path) as response:
                async for chunk in response.aiter_text():
                    chunks += 1
                    size += len(chunk)
                    first = chunk.strip().splitlines()[0][:70] if chunk.strip() else ""
                    elapsed = time.monotonic() - started
                    self.post_message(
                        self.Done(f"{title} +{elapsed:.2f}s  {len(chunk):>6} B  {first}")
                    )
            self.post_message(self.Done(f"{title}: {chunks} chunks, {size:,} characters"))
        except httpx.HTTPError as exc:
            self.post_message(self.Done(f"{title}: {type(exc).__name__}", ok=False))

    @work(group="stream-upload")
    async def upload(self, size: int) -> None:
        """Send ``size`` random bytes as a streamed body (no Content-Length: counted)."""

        async def body() -> AsyncIterator[bytes]:
            left = size
            while left > 0:
                block = os.urandom(min(left, MiB))
                left -= len(block)
                yield block

        try:
            response = await self.context.http.post("/stream/uploads", content=body())
            detail = response.json()
            if response.status_code == 201:
                line = f"uploaded as {detail['name']}, {detail['size']:,} bytes, deleted at " + (
                    time.strftime("%H:%M:%S", time.localtime(detail["expires_at"]))
                )
            else:
                line = f"upload: {response.status_code} {detail.get('detail')}"
            self.post_message(self.Done(line, ok=response.status_code == 201))
        except (httpx.HTTPError, ValueError) as exc:
            self.post_message(self.Done(f"upload: {type(exc).__name__}", ok=False))

    @work(group="stream-stats")
    async def poll_stats(self) -> None:
        """The server's memory and books, 4 times a second, for as long as the pane lives."""
        await self.poll_while_shown("/stream/stats", REFRESH_S, self._got_stats)

    def _got_stats(self, stats: dict[str, Any]) -> None:
        self.server = stats

    def on_stream_pane_done(self, message: Done) -> None:
        self._log.write_line(message.line)

    # -- drawing --------------------------------------------------------------------------

    def _show_transfer(self) -> None:
        """Redraw the bar and the figures (4 Hz), only when a figure has changed."""
        t = self.transfer
        if t is not None:
            self._bar.update(total=max(t.total, 1), progress=t.received)
        self._transfer_line.show(transfer_text(t, self.server))

    @property
    def transfer_shown(self) -> str:
        """The figures under the bar as displayed (plain text)."""
        return self._transfer_line.shown

    def lesson_of(self, blocking: bool) -> LessonLine:
        line = LESSONS[self.last_action].line(blocking)
        if self.last_action == "download":
            return line
        # Generate only makes the file: the download's pitfall words, not as an error
        return replace(line, pitfall=False)

    def code_blocks(self, stall: Stall | None = None) -> list[SourceBlock]:
        if self.last_action == "csv":
            return [
                source_of(routes.export_csv, "server: GET /stream/export.csv"),
                source_of(files_export.csv_batches, "server: the batches"),
            ]
        if self.last_action == "report":
            return [source_of(routes.report, "server: GET /stream/report")]
        if self.last_action == "upload":
            return [
                source_of(routes.upload, "server: POST /stream/uploads"),
                source_of(files_uploads.UploadStore.receive, "server: streamed to disk"),
            ]
        server = routes.read_whole_file if self.context.blocking.enabled else routes.download
        return [
            source_of(server, "server: the download"),
            source_of(StreamPane.download, "client: this pane's worker"),
        ]
