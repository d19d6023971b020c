"""The streaming pattern's scenario: downloading a large file, streamed or read whole.

Before each form (unmeasured) the server generates a 128 MiB sample file
(``POST /stream/files``); the form downloads it twice at once and then deletes it. Right,
``FileResponse`` sends it in 256 KiB reads made in a worker thread: the server's memory
hardly moves. As the pitfall, the handler reads the whole file with ``open().read()`` on
the event loop before the first byte goes out: the loop stalls for the read and every
download holds the whole file in memory (the RSS column). The client counts the bytes
and throws them away, so what the process's RSS gains is the server's doing.
"""

from __future__ import annotations

import time

from explorer.tools.report.measure import MIB
from explorer.tools.report.scenario import (
    Outcome,
    Scenario,
    ScenarioError,
    ScenarioRun,
    expect,
    gather_all,
)

SAMPLE_BYTES = 128 * MIB
DOWNLOADS = 2


class SampleDownload:
    """A sample file made before the form, downloaded by it, and deleted by it."""

    def __init__(self) -> None:
        self.name: str | None = None

    async def create(self, run: ScenarioRun) -> Outcome:
        """The warm-up: have the server generate the file (not part of the comparison)."""
        response = await run.http.post("/stream/files", json={"size_bytes": SAMPLE_BYTES})
        self.name = str(expect(response, 201).json()["name"])
        return Outcome(1)

    async def download(self, run: ScenarioRun) -> Outcome:
        """Two concurrent downloads of the 128 MiB sample file; then it is deleted."""
        name, self.name = self.name, None
        if name is None:
            raise ScenarioError("no sample file: the warm-up did not create one")
        try:
            received = await gather_all(*(fetch(run, name) for _ in range(DOWNLOADS)))
        finally:
            expect(await run.http.delete(f"/stream/files/{name}"), 204)
        for size, _ in received:
            if size != SAMPLE_BYTES:
                raise ScenarioError(f"a download got {size:,} bytes of {SAMPLE_BYTES:,}")
        first_byte_ms = max(first for _, first in received) * 1000
        total_mib = sum(size for size, _ in received) / MIB
        note = (
            f"{DOWNLOADS} concurrent downloads of a {SAMPLE_BYTES // MIB} MiB file "
            f"({total_mib:.0f} MiB received); first byte after {first_byte_ms:.0f} ms"
        )
        extra = {
            "file_bytes": SAMPLE_BYTES,
            "downloads": DOWNLOADS,
            "bytes_received": sum(size for size, _ in received),
            "first_byte_ms": round(first_byte_ms, 1),
        }
        return Outcome(DOWNLOADS + 1, note, extra)


async def fetch(run: ScenarioRun, name: str) -> tuple[int, float]:
    """Download ``name``, counting the bytes and keeping none; (bytes, seconds to first)."""
    started = time.perf_counter()
    first: float | None = None
    size = 0
    async with run.http.stream("GET", f"/stream/files/{name}") as response:
        if response.status_code != 200:
            await response.aread()
            expect(response)
        async for chunk in response.aiter_raw():
            if first is None:
                first = time.perf_counter() - started
            size += len(chunk)
    return size, first if first is not None else time.perf_counter() - started


_sample = SampleDownload()

SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "download",
        "FileResponse, 256 KiB reads",
        "whole file read into memory",
        _sample.download,
        _sample.create,
    ),
)
