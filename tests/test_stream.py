"""Streaming over real HTTP: downloads (Range, traversal refused), uploads (cap, cleanup),
CSV export (formula cells neutralised), the HTML report, disconnect hygiene, the pitfall;
then the pane (Pilot)."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import os
import random
import re
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import httpx
import pytest
from starlette.types import Message, Receive, Scope, Send
from textual.pilot import Pilot
from textual.widgets import Button, Input, Log, ProgressBar, Static

from explorer.app import ExplorerApp
from explorer.patterns.stream.figures import Transfer
from explorer.patterns.stream.pane import StreamPane
from explorer.registry import PANES
from server import state as app_state
from server.patterns.stream import router as stream_routes
from server.patterns.stream import tracking
from server.patterns.stream.export import csv_batches, neutralise, render_section, sqlite_rows
from server.patterns.stream.router import StreamState
from server.runner import ServerHandle
from server.settings import Settings
from tests.conftest import SNAPSHOT_SIZES, FrozenSnapshot, Size, eventually, set_blocking
from tests.layout import problems_of
from tests.pilots import (
    enter_in,
    escape_leaves_the_field,
    live_pane,
    open_frozen,
    quit_with_q,
    settle,
)

MiB = 1024 * 1024


def state_of(server: ServerHandle) -> StreamState:
    state: StreamState = app_state.state_of(server.app).need(StreamState)
    return state


async def make_file(client: httpx.AsyncClient, size: int) -> dict[str, Any]:
    response = await client.post("/stream/files", json={"size_bytes": size})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def stats(client: httpx.AsyncClient) -> dict[str, Any]:
    body: dict[str, Any] = (await client.get("/stream/stats")).json()
    return body


# -- downloads ------------------------------------------------------------------------------


async def test_download_sends_the_file_as_it_is_on_disk(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    info = await make_file(client, 3 * MiB + 17)
    assert info["size"] == 3 * MiB + 17
    on_disk = (server.settings.data_dir / "files" / info["name"]).read_bytes()
    response = await client.get(f"/stream/files/{info['name']}")
    assert response.status_code == 200
    assert response.headers["accept-ranges"] == "bytes"
    assert int(response.headers["content-length"]) == len(on_disk)
    assert hashlib.sha256(response.content).digest() == hashlib.sha256(on_disk).digest()
    listing = (await client.get("/stream/files")).json()
    assert [f["name"] for f in listing] == [info["name"]]
    assert (await stats(client))["downloads_completed"] >= 1


async def test_range_requests(server: ServerHandle, client: httpx.AsyncClient) -> None:
    info = await make_file(client, 1000)
    on_disk = (server.settings.data_dir / "files" / info["name"]).read_bytes()
    url = f"/stream/files/{info['name']}"
    part = await client.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.headers["content-range"] == "bytes 100-199/1000"
    assert part.content == on_disk[100:200]
    tail = await client.get(url, headers={"Range": "bytes=-10"})
    assert tail.status_code == 206
    assert tail.content == on_disk[-10:]
    beyond = await client.get(url, headers={"Range": "bytes=5000-6000"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == "bytes */1000"
    for malformed in ("pages=1-2", "bytes=abc", "bytes=9-3"):
        response = await client.get(url, headers={"Range": malformed})
        assert response.status_code in (400, 416), (malformed, response.status_code)


@pytest.mark.parametrize(
    "raw_path",
    [
        "/stream/files/..",
        "/stream/files/%2e%2e",
        "/stream/files/%2e%2e%2fjobs.sqlite3",
        "/stream/files/..%2fjobs.sqlite3",
        "/stream/files/..%5cjobs.sqlite3",
        "/stream/files/a%5c..%5c..%5cjobs.sqlite3",
        "/stream/files/x%00.bin",
        "/stream/files/%2fetc%2fpasswd",
        "/stream/files//etc/passwd",
        "/stream/files/.hidden",
        "/stream/files/does-not-exist.bin",
    ],
)
async def test_traversal_attempts_get_a_4xx(
    server: ServerHandle, client: httpx.AsyncClient, raw_path: str
) -> None:
    await make_file(client, 10)
    # Sent byte for byte: httpx would otherwise normalise the dots away.
    request = client.build_request("GET", "/")
    request.url = request.url.copy_with(raw_path=raw_path.encode())
    response = await client.send(request)
    # 422: the name breaks the rule the schema states; 400: it passed that but not the
    # server's own check; 404: a symlink that resolves outside the directory
    assert response.status_code in (400, 404, 422), (raw_path, response.status_code)
    assert response.json()["detail"]


async def test_a_symlink_pointing_outside_is_not_followed(
    server: ServerHandle, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("not for download")
    files = server.settings.data_dir / "files"
    (files / "escape.bin").symlink_to(secret)
    (files / "escape-dir").symlink_to(tmp_path, target_is_directory=True)
    response = await client.get("/stream/files/escape.bin")
    assert response.status_code == 404
    assert "not for download" not in response.text
    assert (await client.get("/stream/files/escape-dir")).status_code == 404
    # A symlink that stays inside is just another name for a file that is there.
    info = await make_file(client, 10)
    (files / "alias.bin").symlink_to(files / info["name"])
    assert (await client.get("/stream/files/alias.bin")).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"size_bytes": 0},
        {"size_bytes": -1},
        {"size_bytes": 10**15},
        {"size_bytes": "10"},
        {"size_bytes": 1.5},
        {},
        {"size_bytes": 10, "name": "../x"},
    ],
)
async def test_bad_sample_sizes_get_a_422(client: httpx.AsyncClient, body: Any) -> None:
    response = await client.post("/stream/files", json=body)
    assert response.status_code == 422, response.text


async def test_delete_removes_the_file_and_refuses_traversal(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    info = await make_file(client, 10)
    assert (await client.delete("/stream/files/..%2fjobs.sqlite3")).status_code in (400, 422)
    assert (server.settings.data_dir / "jobs.sqlite3").exists()
    assert (await client.delete(f"/stream/files/{info['name']}")).status_code == 204
    assert (await client.get(f"/stream/files/{info['name']}")).status_code == 404


# -- disconnect hygiene ---------------------------------------------------------------------


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_200_aborted_downloads_leave_nothing_open(server: ServerHandle) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        info = await make_file(client, 8 * MiB)
    state = state_of(server)
    await asyncio.sleep(0.1)
    base_fds = open_fds()
    rng = random.Random(7)
    limits = httpx.Limits(max_connections=250, max_keepalive_connections=0)

    async def download_and_leave(http: httpx.AsyncClient) -> None:
        cut_at = rng.randint(0, 6 * MiB)
        received = 0
        async with http.stream("GET", f"/stream/files/{info['name']}") as response:
            assert response.status_code == 200
            async for chunk in response.aiter_raw():
                received += len(chunk)
                if received >= cut_at:
                    break  # closes the connection mid-body

    async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=60) as http:
        await asyncio.gather(*(download_and_leave(http) for _ in range(200)))
    await eventually(lambda: state.downloads.active == 0, within=5)
    await eventually(lambda: open_fds() <= base_fds, within=5)
    assert state.downloads.aborted >= 190  # a very early cut may still see the whole body
    assert state.downloads.aborted + state.downloads.completed == 200


# -- the pitfall ----------------------------------------------------------------------------


async def test_pitfall_download_reads_the_whole_file_on_the_loop(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    info = await make_file(client, 32 * MiB)
    await client.put("/monitor/blocking", json={"enabled": True})
    response = await client.get(f"/stream/files/{info['name']}")
    assert response.status_code == 200
    assert len(response.content) == 32 * MiB
    assert "accept-ranges" not in response.headers
    ranged = await client.get(f"/stream/files/{info['name']}", headers={"Range": "bytes=0-9"})
    assert ranged.status_code == 200, "the pitfall ignores Range"


async def test_pitfall_refuses_files_too_big_to_read_whole(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stream_routes, "PITFALL_MAX_BYTES", 1000)
    info = await make_file(client, 2000)
    await client.put("/monitor/blocking", json={"enabled": True})
    response = await client.get(f"/stream/files/{info['name']}")
    assert response.status_code == 409
    assert "whole" in response.json()["detail"]


# -- uploads --------------------------------------------------------------------------------


def upload_dir(server: ServerHandle) -> Path:
    return server.settings.data_dir / "uploads"


async def test_upload_is_stored_under_a_generated_name(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    body = os.urandom(300_000)
    response = await client.post(
        "/stream/uploads", content=body, headers={"x-filename": "../../etc/passwd"}
    )
    assert response.status_code == 201, response.text
    stored = response.json()
    assert stored["size"] == len(body)
    assert stored["sha256"] == hashlib.sha256(body).hexdigest()
    assert (upload_dir(server) / stored["name"]).read_bytes() == body
    assert sorted(p.name for p in upload_dir(server).iterdir()) == [stored["name"]]
    listing = (await client.get("/stream/uploads")).json()
    assert stored["name"] in listing["uploads"]


async def over_cap_server(tmp_path: Path, ttl: float = 600.0) -> ServerHandle:
    settings = Settings(port=0, data_dir=tmp_path, upload_max_bytes=64 * 1024, upload_ttl_s=ttl)
    handle = ServerHandle(settings)
    await handle.start()
    return handle


async def test_an_upload_over_the_cap_gets_413_and_leaves_nothing(tmp_path: Path) -> None:
    handle = await over_cap_server(tmp_path)
    try:
        async with httpx.AsyncClient(base_url=handle.url) as client:
            declared = await client.post("/stream/uploads", content=os.urandom(100_000))
            assert declared.status_code == 413
            assert "capped" in declared.json()["detail"]

            async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: counted
                for _ in range(4):
                    yield os.urandom(30_000)

            streamed = await client.post("/stream/uploads", content=chunked())
            assert streamed.status_code == 413
            assert list((tmp_path / "uploads").iterdir()) == []
            ok = await client.post("/stream/uploads", content=os.urandom(60_000))
            assert ok.status_code == 201
    finally:
        await handle.stop()


async def test_uploads_are_deleted_after_their_ttl(tmp_path: Path) -> None:
    handle = await over_cap_server(tmp_path, ttl=0.5)
    try:
        async with httpx.AsyncClient(base_url=handle.url) as client:
            stored = (await client.put("/stream/uploads", content=b"x" * 100)).json()
            path = tmp_path / "uploads" / stored["name"]
            assert path.exists()
            await eventually(lambda: not path.exists(), within=5)
            listing = (await client.get("/stream/uploads")).json()
            assert listing["uploads"] == {}
            assert listing["deleted"] == 1
    finally:
        await handle.stop()


async def test_bad_content_length_gets_a_400(client: httpx.AsyncClient) -> None:
    request = client.build_request("POST", "/stream/uploads", content=b"abc")
    request.headers["content-length"] = "lots"
    try:
        response = await client.send(request)
    except httpx.HTTPError:
        return  # refused at the HTTP layer: fine, never a 500
    assert response.status_code == 400


# -- exports --------------------------------------------------------------------------------


async def test_csv_export_streams_the_job_history_in_batches(client: httpx.AsyncClient) -> None:
    for _ in range(5):
        await client.post("/tasks/queue", json={"kind": "sleep", "duration_s": 0})
    chunks: list[bytes] = []
    async with client.stream("GET", "/stream/export.csv", params={"batch": 2}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        async for chunk in response.aiter_bytes():
            chunks.append(chunk)
    rows = list(csv.reader(io.StringIO(b"".join(chunks).decode())))
    assert rows[0][:3] == ["id", "kind", "origin"]
    ids = [int(r[0]) for r in rows[1:]]
    assert ids == sorted(ids)
    assert len(ids) == 5


@pytest.mark.parametrize("batch", ["0", "-1", "100001", "x"])
async def test_bad_batch_sizes_get_a_422(client: httpx.AsyncClient, batch: str) -> None:
    response = await client.get("/stream/export.csv", params={"batch": batch})
    assert response.status_code == 422


async def test_formula_cells_are_neutralised(tmp_path: Path) -> None:
    db_path = tmp_path / "sample.sqlite3"
    with sqlite3.connect(db_path) as db:
        db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b)")
        values = ["=1+1", "+SUM(A1)", "-2+3", "@cmd", "\tx", "\rx", "plain", "a=b"]
        db.executemany("INSERT INTO t (a, b) VALUES (?, ?)", [(v, -5) for v in values])
    async with sqlite_rows(db_path, "t", ["id", "a", "b"]) as source:
        text = "".join([chunk async for chunk in csv_batches(source, 3)])
    rows = list(csv.reader(io.StringIO(text)))
    assert [r[1] for r in rows[1:]] == [
        "'=1+1", "'+SUM(A1)", "'-2+3", "'@cmd", "'\tx", "'\rx", "plain", "a=b"
    ]  # fmt: skip
    assert all(r[2] == "-5" for r in rows[1:]), "numbers stay numbers"
    assert neutralise(None) is None


async def test_the_row_source_refuses_injected_identifiers(tmp_path: Path) -> None:
    db_path = tmp_path / "x.sqlite3"
    sqlite3.connect(db_path).close()
    with pytest.raises(ValueError, match="identifier"):
        async with sqlite_rows(db_path, "t; DROP TABLE t", ["id"]):
            pass
    async with aiosqlite.connect(db_path):
        pass


async def test_report_streams_section_by_section(client: httpx.AsyncClient) -> None:
    arrivals: list[tuple[float, bytes]] = []
    loop = asyncio.get_running_loop()
    async with client.stream("GET", "/stream/report", params={"delay": 0.2}) as response:
        assert response.headers["content-type"].startswith("text/html")
        async for chunk in response.aiter_raw():
            arrivals.append((loop.time(), chunk))
    body = b"".join(c for _, c in arrivals).decode()
    assert body.startswith("<!doctype html>")
    assert body.rstrip().endswith("</html>")
    assert body.count("<section>") == 4
    assert len(arrivals) >= 4, "sections arrive as separate chunks"
    assert arrivals[-1][0] - arrivals[0][0] >= 0.6


def test_report_sections_escape_everything() -> None:
    html = render_section("<b>x</b>", ["<th>"], [("<script>alert(1)</script>",), (None,)])
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html


@pytest.mark.parametrize("delay", ["-1", "6", "nan", "inf"])
async def test_bad_report_delays_get_a_422(client: httpx.AsyncClient, delay: str) -> None:
    response = await client.get("/stream/report", params={"delay": delay})
    assert response.status_code == 422


async def test_stats_show_memory_and_descriptors(client: httpx.AsyncClient) -> None:
    figures = await stats(client)
    assert figures["rss_bytes"] > 10 * MiB
    assert figures["rss_peak_bytes"] >= figures["rss_bytes"]
    assert figures["open_fds"] > 3
    assert figures["last_download"] is None  # no download yet


async def download_peak(client: httpx.AsyncClient, name: str) -> dict[str, Any]:
    """Download ``name`` (keeping none of it): the server's books on that download."""
    async with client.stream("GET", f"/stream/files/{name}") as response:
        assert response.status_code == 200
        async for _ in response.aiter_raw():
            pass
    for _ in range(100):  # the server closes its books just after the last byte
        last: dict[str, Any] = (await stats(client))["last_download"]
        if last["finished"]:
            break
        await asyncio.sleep(0.02)
    assert last["name"] == name
    assert last["finished"] is True
    return last


async def test_each_download_reports_the_servers_peak_rss(client: httpx.AsyncClient) -> None:
    info = await make_file(client, 48 * MiB)
    right = await download_peak(client, info["name"])
    assert right["bytes_sent"] == 48 * MiB
    assert right["rss_peak_bytes"] >= right["rss_before_bytes"]
    assert right["peak_growth_bytes"] <= 16 * MiB  # 256 KiB reads: memory stays flat
    await set_blocking(client, True)
    pitfall = await download_peak(client, info["name"])
    await set_blocking(client, False)
    assert pitfall["peak_growth_bytes"] >= 0.8 * 48 * MiB  # the whole file, held


# -- the pane (Pilot) -----------------------------------------------------------------------


async def open_pane(app: ExplorerApp, pilot: Pilot[Any]) -> StreamPane:
    await eventually(lambda: app.context is not None and bool(app.query(StreamPane)), within=10)
    await pilot.press(str([p.SLUG for p in PANES].index("stream") + 1))
    return app.query_one(StreamPane)


async def test_pane_downloads_with_progress(tmp_path: Path) -> None:
    async with live_pane(tmp_path, (120, 40), open_pane) as (app, pilot, pane):
        app.query_one("#pane-stream #size", Input).value = "8"
        await pilot.click("#pane-stream #generate")
        await eventually(lambda: pane.file is not None, within=20)
        await pilot.click("#pane-stream #download")
        await eventually(
            lambda: pane.transfer is not None and pane.transfer.outcome == "complete", within=20
        )
        assert pane.transfer is not None
        assert pane.transfer.received == 8 * MiB
        await pilot.pause(0.4)
        bar = app.query_one("#pane-stream #progress", ProgressBar)
        assert bar.progress == bar.total == 8 * MiB
        line = str(app.query_one("#pane-stream #transfer", Static).render())
        assert "8.0 / 8.0 MiB" in line
        assert "RSS" in line


def pace_file_downloads(monkeypatch: pytest.MonkeyPatch, per_chunk: float) -> None:
    """Have every file download wait ``per_chunk`` seconds after each body chunk.

    Over loopback a GiB goes out in about a second, faster than a pressed button's message
    is handled on a busy loop; paced, the download is still running when Cancel lands, and
    the server still stops at its next chunk, which is what the test is about.
    """
    unpaced = tracking.Tracked.__call__

    async def paced(self: Any, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_then_wait(message: Message) -> None:
            await send(message)
            if message["type"] == "http.response.body" and message.get("more_body", False):
                await asyncio.sleep(per_chunk)

        await unpaced(self, scope, receive, send_then_wait)

    monkeypatch.setattr(tracking.TrackedFileResponse, "__call__", paced)


async def test_pane_cancel_stops_the_server_side(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pace_file_downloads(monkeypatch, per_chunk=0.02)  # 64 MiB in 256 KiB chunks: >= 5 s
    async with live_pane(tmp_path, (120, 40), open_pane) as (app, pilot, pane):
        server_state: StreamState = app_state.state_of(app.server.app).need(StreamState)
        app.query_one("#pane-stream #size", Input).value = "64"
        await pilot.click("#pane-stream #generate")
        await eventually(lambda: pane.file is not None, within=60)
        await pilot.click("#pane-stream #download")
        await eventually(
            lambda: pane.transfer is not None and pane.transfer.received > 0, within=10
        )
        app.query_one("#pane-stream #cancel", Button).press()  # no wait for a click's repaint
        await eventually(lambda: pane.transfer is not None and pane.transfer.finished is not None)
        assert pane.transfer is not None
        assert pane.transfer.outcome.startswith("cancelled")
        assert pane.transfer.received < 64 * MiB
        await eventually(lambda: server_state.downloads.active == 0, within=5)
        assert server_state.downloads.aborted == 1
        assert server_state.downloads.completed == 0


async def test_pane_exports_and_uploads(tmp_path: Path) -> None:
    async with live_pane(tmp_path, (120, 40), open_pane) as (app, pilot, _):
        log = app.query_one("#pane-stream #results", Log)
        await pilot.click("#pane-stream #report")
        await eventually(lambda: any("Report: 6 chunks" in line for line in log.lines), within=10)
        await pilot.click("#pane-stream #csv")
        await eventually(lambda: any("CSV export:" in line for line in log.lines), within=10)
        app.query_one("#pane-stream #size", Input).value = "2"
        await pilot.click("#pane-stream #upload")
        await eventually(lambda: any("uploaded as" in line for line in log.lines), within=10)
        assert len(list((tmp_path / "uploads").iterdir())) == 1


PANE_SIZES = [(100, 30), (140, 45), (200, 60)]
RESULTS = ("#progress", "#transfer", "#results")


def shown(app: ExplorerApp) -> str:
    return app.query_one(StreamPane).transfer_shown


def shown_peak_mib(app: ExplorerApp) -> float | None:
    """The peak RSS growth the pane displays, in MiB (None while it shows none)."""
    found = re.search(r"peak during the download ([+-][\d,.]+) MiB", shown(app))
    return None if found is None else float(found.group(1).replace(",", ""))


@pytest.mark.parametrize("size", PANE_SIZES)
async def test_pane_is_whole_before_and_after_a_run(tmp_path: Path, size: tuple[int, int]) -> None:
    async with live_pane(tmp_path, size, open_pane) as (app, pilot, pane):
        app.query_one("#pane-stream #size", Input).value = "4"
        await pilot.pause(0.1)
        assert problems_of(pane, RESULTS) == []
        await pilot.press("r")  # generates a 4 MiB file, then downloads it
        await eventually(lambda: "complete" in shown(app), within=20)
        await eventually(lambda: shown_peak_mib(app) is not None, within=5)
        await pilot.pause(0.1)
        assert problems_of(pane, RESULTS) == []
        assert app.query_one("#pane-stream #transfer", Static).size.height == 4


async def test_pane_keys_enter_escape_and_q(tmp_path: Path) -> None:
    async with live_pane(tmp_path, (100, 30), open_pane) as (app, pilot, pane):
        # the pane's run: a 2 MiB download
        await enter_in(pilot, app.query_one("#pane-stream #size", Input), "2")
        await eventually(
            lambda: pane.transfer is not None and pane.transfer.outcome == "complete", 20
        )
        assert pane.transfer is not None
        assert pane.transfer.total == 2 * MiB
        await escape_leaves_the_field(pilot)
        await quit_with_q(pilot)
    assert app.return_code == 0


async def test_pane_peak_rss_right_and_pitfall_on_defaults(tmp_path: Path) -> None:
    """r on defaults (64 MiB), then b and r: the peak growth the pane displays."""
    async with live_pane(tmp_path, (100, 30), open_pane) as (app, pilot, pane):
        assert app.query_one("#pane-stream #size", Input).value == "64"
        await pilot.press("r")
        await eventually(lambda: "complete" in shown(app), within=30)
        await eventually(lambda: shown_peak_mib(app) is not None, within=5)
        right = shown_peak_mib(app)
        assert right is not None
        assert right <= 16
        assert "× the 64 MiB file" in shown(app)

        await pilot.press("b")
        first = pane.file
        await pilot.press("r")  # the same file, read whole this time
        await eventually(
            lambda: pane.transfer is not None and pane.transfer.finished is not None, 30
        )
        await eventually(lambda: "complete" in shown(app), within=5)
        await eventually(lambda: (shown_peak_mib(app) or 0) >= 0.8 * 64, within=5)
        assert pane.file == first
        lesson = str(app.query_one("#pane-stream #lesson", Static).render())
        assert "peak" in lesson
        await pilot.press("b")
        for sample in (tmp_path / "files").iterdir():
            sample.unlink()


async def test_pane_refuses_a_bad_size(tmp_path: Path) -> None:
    async with live_pane(tmp_path, (120, 40), open_pane) as (app, pilot, pane):
        app.query_one("#pane-stream #size", Input).value = "0"
        await pilot.click("#pane-stream #generate")
        await pilot.pause(0.3)
        assert pane.file is None
        assert any("Invalid input" in (n.title or "") for n in app._notifications)


# -- snapshot (every live number frozen) ------------------------------------------------


FROZEN_STREAM_STATS = {
    "rss_bytes": 83 * MiB,
    "downloads_active": 0,
    "downloads_aborted": 0,
    "open_fds": 17,
    "uploads_stored": 0,
}


async def show_frozen(
    pilot: Pilot[Any], transfer: Transfer, last_download: dict[str, Any], lines: list[str]
) -> StreamPane:
    """The pane after ``transfer``, with the server's figures frozen."""
    app, pane = await open_frozen(pilot, StreamPane)
    pane.workers.cancel_group(pane, "stream-stats")
    download = pane.query_one("#download")
    await settle(pilot, lambda: app.focused is download, "#download focused")  # the app moves it in
    pane.transfer = transfer
    pane.server = FROZEN_STREAM_STATS | {"last_download": last_download}
    for line in lines:
        pane.post_message(StreamPane.Done(line))
    return pane


def frozen_books(name: str, before_mib: float, growth_mib: float, sent: int) -> dict[str, Any]:
    return {
        "name": name,
        "rss_before_bytes": int(before_mib * MiB),
        "rss_peak_bytes": int((before_mib + growth_mib) * MiB),
        "peak_growth_bytes": int(growth_mib * MiB),
        "bytes_sent": sent,
        "finished": True,
    }


async def draw_mid_download(pilot: Pilot[Any]) -> None:
    """A 1 GiB download cancelled at 400 MiB: the server stopped at its next chunk."""
    name = "sample-1GiB-5eed0000.bin"
    transfer = Transfer(
        name,
        1024**3,
        received=400 * MiB,
        started=10.0,
        finished=12.0,
        outcome="cancelled: the server stops at its next chunk",
    )
    lines = [
        f"generated {name} (1,073,741,824 bytes)",
        f"download {name} (FileResponse): cancelled: the server stops at its next chunk",
    ]
    pane = await show_frozen(pilot, transfer, frozen_books(name, 80, 3.2, 400 * MiB), lines)
    pane.server["downloads_aborted"] = 1
    await pilot.pause(0.4)


def test_stream_pane_mid_download(frozen_snapshot: FrozenSnapshot) -> None:
    assert frozen_snapshot((120, 40), draw_mid_download)


async def draw_after_a_blocking_run(pilot: Pilot[Any]) -> None:
    """r on defaults in blocking mode: 64 MiB read whole, the peak beside RSS now."""
    assert isinstance(pilot.app, ExplorerApp)
    name = "sample-64MiB-5eed0000.bin"
    transfer = Transfer(name, 64 * MiB, received=64 * MiB, started=10.0, finished=10.5)
    transfer.outcome = "complete"
    lines = [f"generated {name} (67,108,864 bytes)", f"download {name} (read whole): complete"]
    await show_frozen(pilot, transfer, frozen_books(name, 81.4, 64.6, 64 * MiB), lines)
    pilot.app.blocking_switch.set(True)
    await pilot.pause(0.4)
    pilot.app.clear_notifications()
    await pilot.pause(0.1)


@pytest.mark.parametrize("size", SNAPSHOT_SIZES)
def test_stream_pane_after_a_blocking_run(frozen_snapshot: FrozenSnapshot, size: Size) -> None:
    assert frozen_snapshot(size, draw_after_a_blocking_run)
