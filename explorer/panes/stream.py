"""Streaming pane: generate a file, download it with a progress bar, cancel, export, upload."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Button, Input, Label, Log, ProgressBar, Static

from server import files_export, files_uploads
from server.monitor import Stall
from server.routes import stream as routes

from ..code_source import SourceBlock, source_of
from ..widgets.number_field import invalid_fields, number_input
from .base import PatternPane

MiB = 1024 * 1024
#: progress redraws at most this often (the download itself runs at full speed)
REFRESH_S = 0.25


@dataclass
class Transfer:
    """A download in flight: counters the refresh timer reads."""

    name: str
    total: int
    received: int = 0
    started: float = 0.0
    finished: float | None = None
    outcome: str = "running"

    @property
    def rate(self) -> float:
        elapsed = (self.finished or time.monotonic()) - self.started
        return self.received / elapsed if elapsed > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        rate = self.rate
        return (self.total - self.received) / rate if rate > 0 else None


class StreamPane(PatternPane):
    """Downloads with a real progress bar and the server's memory beside it."""

    SLUG: ClassVar[str] = "stream"
    TITLE: ClassVar[str] = "Streaming"
    SUMMARY: ClassVar[str] = "downloads with progress and Range, CSV and report streams, uploads"

    DEFAULT_CSS = """
    StreamPane #controls, StreamPane #more { height: auto; }
    StreamPane Button { margin-right: 1; }
    StreamPane Label { padding: 1 1 0 1; }
    StreamPane #size { width: 10; }
    StreamPane #lesson { height: auto; color: $text-muted; }
    StreamPane #lesson.-blocking { color: $error; }
    StreamPane #progress { height: 1; margin: 1 0 0 0; }
    StreamPane #progress Bar { width: 1fr; }
    StreamPane #transfer { height: 3; }
    StreamPane #results { height: 1fr; }
    """

    class Done(Message):
        """A request finished: what to log."""

        def __init__(self, line: str, ok: bool = True) -> None:
            super().__init__()
            self.line = line
            self.ok = ok

    class Figures(Message):
        def __init__(self, stats: dict[str, Any]) -> None:
            super().__init__()
            self.stats = stats

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.file: dict[str, Any] | None = None
        self.transfer: Transfer | None = None
        self.server: dict[str, Any] = {}
        self.rss_at_start: int | None = None
        self.last_action = "download"
        self._bar = ProgressBar(id="progress", show_eta=False, total=100)
        self._transfer_line = Static(id="transfer")
        self._log = Log(max_lines=300, id="results")
        self._lesson = Static(id="lesson")

    def compose(self) -> ComposeResult:
        with Horizontal(id="controls"):
            yield Label("size (MiB)")
            yield number_input("size", "64", 1, 1024, "File size (MiB)")
            yield Button("Generate", id="generate")
            yield Button("Download", id="download", variant="primary")
            yield Button("Cancel", id="cancel")
        with Horizontal(id="more"):
            yield Button("CSV export", id="csv")
            yield Button("Report", id="report")
            yield Button("Upload", id="upload")
        yield self._lesson
        yield self._bar
        yield self._transfer_line
        yield self._log

    def on_mount(self) -> None:
        self.context.blocking.subscribe(lambda _: self._show_lesson())
        self._show_lesson()
        self.poll_stats()
        self.set_interval(REFRESH_S, self._show_transfer)

    # -- buttons --------------------------------------------------------------------------

    @on(Button.Pressed)
    def _button(self, event: Button.Pressed) -> None:
        button = event.button.id or ""
        if button == "cancel":
            self.workers.cancel_group(self, "stream-download")
            return
        size_field = self.query_one("#size", Input)
        if button in ("generate", "upload"):
            problems = invalid_fields(size_field)
            if problems:
                self.notify(problems[0][1], title="Invalid input", severity="error")
                return
        self.last_action = button
        self._show_lesson()
        if button == "generate":
            self.generate(int(size_field.value) * MiB)
        elif button == "download":
            self.download()
        elif button == "csv":
            self.fetch("/stream/export.csv?batch=200", "CSV export")
        elif button == "report":
            self.fetch("/stream/report?delay=0.3", "Report")
        elif button == "upload":
            self.upload(int(size_field.value) * MiB)

    def action_run(self) -> None:
        """The ``r`` key: download (generating a file first if there is none)."""
        self.download()

    # -- workers --------------------------------------------------------------------------

    @work(group="stream-generate", exclusive=True)
    async def generate(self, size: int) -> None:
        try:
            response = await self.context.http.post("/stream/files", json={"size_bytes": size})
            if response.status_code != 201:
                self.post_message(self.Done(f"generate: {response.status_code} {response.text}"))
                return
            self.file = response.json()
            self.post_message(self.Done(f"generated {self.file['name']} ({size:,} bytes)"))
        except httpx.HTTPError as exc:
            self.post_message(self.Done(f"generate: {type(exc).__name__}", ok=False))

    @work(group="stream-download", exclusive=True)
    async def download(self) -> None:
        """Stream the file, counting bytes as they arrive; the bar redraws from the counts."""
        http = self.context.http
        if self.file is None:
            listing = (await http.get("/stream/files")).json()
            if not listing:
                self.post_message(self.Done("no file yet: press Generate first", ok=False))
                return
            self.file = listing[-1]
        name = self.file["name"]
        transfer = Transfer(name, self.file["size"], started=time.monotonic())
        self.transfer = transfer
        self.rss_at_start = self.server.get("rss_bytes")
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
            self.post_message(self.Done(f"download {name}: {transfer.outcome}"))

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
        while True:
            if not self.display:  # hidden behind another pane: cost the server nothing
                await asyncio.sleep(0.5)
                continue
            try:
                response = await self.context.http.get("/stream/stats")
                self.post_message(self.Figures(response.json()))
            except (httpx.HTTPError, ValueError):
                pass  # the server is starting or stopping; the next poll will say
            await asyncio.sleep(REFRESH_S)

    def on_stream_pane_figures(self, message: Figures) -> None:
        self.server = message.stats

    def on_stream_pane_done(self, message: Done) -> None:
        self._log.write_line(message.line)

    # -- drawing --------------------------------------------------------------------------

    def _show_transfer(self) -> None:
        t, s = self.transfer, self.server
        text = Text()
        if t is not None:
            self._bar.update(total=max(t.total, 1), progress=t.received)
            eta = t.eta_s
            text.append(
                f"{t.received / MiB:,.1f} / {t.total / MiB:,.1f} MiB  "
                f"{t.rate / MiB:,.1f} MiB/s  "
                f"ETA {'-' if eta is None or t.finished else f'{eta:.1f} s'}  {t.outcome}"
            )
        text.append("\nserver ", style="bold")
        rss = s.get("rss_bytes")
        growth = (
            ""
            if rss is None or self.rss_at_start is None
            else (f" ({(rss - self.rss_at_start) / MiB:+.1f} since the download started)")
        )
        text.append(
            f"RSS {0 if rss is None else rss / MiB:,.1f} MiB{growth}\n       "
            f"downloads active {s.get('downloads_active', '-')}  "
            f"aborted {s.get('downloads_aborted', '-')}  open fds {s.get('open_fds', '-')}  "
            f"uploads kept {s.get('uploads_stored', '-')}"
        )
        self._transfer_line.update(text, layout=False)

    def _show_lesson(self) -> None:
        blocking = self.context.blocking.enabled
        if self.last_action in ("csv", "report"):
            lesson = (
                "CSV: one keyset query per batch, one chunk per batch; cells starting with "
                "= + - @ tab or CR get a leading apostrophe. Report: each section is built "
                "and sent in turn, everything escaped."
            )
        elif self.last_action == "upload":
            lesson = (
                "The body goes to disk chunk by chunk under a name the server picks; over "
                "the cap it is a 413 and nothing is left; a cleanup task deletes it later."
            )
        elif blocking:
            lesson = (
                "Blocking mode: the handler reads the whole file with open().read(): the "
                "loop stalls for the read (the UI too) and the server's RSS grows by the "
                "file's size before the first byte goes out."
            )
        else:
            lesson = (
                "FileResponse: async chunked reads from the server's own directory, Range "
                "supported, memory flat. Cancel mid-way: the server stops at its next chunk."
            )
        self._lesson.update(lesson)
        self._lesson.set_class(blocking and self.last_action == "download", "-blocking")

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
