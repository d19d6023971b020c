"""Responses that count themselves: active downloads, bytes sent, completed or cut short."""

from __future__ import annotations

from typing import Any

from fastapi.responses import FileResponse, StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from server.patterns.stream.memory import RssWatch
from server.patterns.stream.stats import DownloadBook


class Tracked:
    """Mixin for a response: counts it as an active download and the bytes it sends.

    A response that ends without its last body message went out was cut short: the
    client left (Starlette cancels the send when it sees the disconnect). A file download
    also carries its :class:`RssWatch`, sampled as the body goes out.
    """

    book: DownloadBook
    watch: RssWatch | None = None

    def __init__(
        self, book: DownloadBook, *args: Any, watch: RssWatch | None = None, **kwargs: Any
    ) -> None:
        """``book`` counts this response; ``args`` and ``kwargs`` go to the response class."""
        super().__init__(*args, **kwargs)
        self.book = book
        self.watch = watch

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
    """A file sent in chunked async reads (Range supported), counted."""

    #: 256 KiB per read: a quarter of the thread hops of Starlette's 64 KiB default
    chunk_size = 256 * 1024


class TrackedStreamingResponse(Tracked, StreamingResponse):
    """A body streamed from an iterator, counted."""
