"""Guide fixes over real HTTP: the guide's Debouncer (every superseded caller fails with
CancelledError) next to the corrected one, and the guide's upload handler escaping its
upload directory inside a sandbox next to a server-generated name; then the tab in the
correctness pane."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Select, TabbedContent

from explorer.app import ExplorerApp
from explorer.patterns.correctness.guide_tab import GuideFixesTab
from explorer.patterns.correctness.pane import CorrectnessPane
from server.patterns.correctness.guide_debounce import DebounceLab
from server.patterns.correctness.guide_upload import MAX_BODY, UploadSandbox
from server.runner import ServerHandle
from server.settings import Settings
from server.state import state_of
from tests.conftest import eventually
from tests.http_checks import clear_422_detail
from tests.layout import problems_of
from tests.pilots import live_pane, open_live

Reply = dict[str, Any]
TRIGGER = "/correctness/debounce/trigger"


async def burst(
    client: httpx.AsyncClient, form: str, key: str, n: int = 5, delay_s: float = 0.3
) -> list[tuple[int, float, Reply, float]]:
    """``n`` concurrent triggers 20 ms apart: each one's status, wall wait (s), body, and
    when its answer came (``perf_counter()``)."""

    async def one(i: int) -> tuple[int, float, Reply, float]:
        await asyncio.sleep(i * 0.02)
        began = time.perf_counter()
        response = await client.post(TRIGGER, params={"form": form, "key": key, "delay_s": delay_s})
        ended = time.perf_counter()
        return response.status_code, ended - began, response.json(), ended

    return list(await asyncio.gather(*(one(i) for i in range(n))))


async def counts(client: httpx.AsyncClient, key: str) -> Reply:
    body: Reply = (await client.get("/correctness/debounce", params={"key": key})).json()
    return body


def lab_of(server: ServerHandle) -> DebounceLab:
    lab: DebounceLab = state_of(server.app).need(DebounceLab)
    return lab


def sandbox_of(server: ServerHandle) -> UploadSandbox:
    sandbox: UploadSandbox = state_of(server.app).need(UploadSandbox)
    return sandbox


def files_under(folder: Path) -> set[str]:
    # a reset removes the sandbox and makes it again: while it is gone, it holds no file
    if not folder.is_dir():
        return set()
    try:
        return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    except FileNotFoundError:
        return set()


def own_files(folder: Path) -> set[str]:
    """The files under ``folder`` but SQLite's own (-wal, -shm, -journal), which come and go
    as the other patterns' databases work."""
    return {name for name in files_under(folder) if not name.endswith(("-wal", "-shm", "-journal"))}


def outside_marks() -> tuple[int | None, bool]:
    """What a write outside the sandbox would change: /etc/passwd's mtime, /tmp/outside.txt."""
    passwd = Path("/etc/passwd")
    return passwd.stat().st_mtime_ns if passwd.exists() else None, Path("/tmp/outside.txt").exists()


# -- the debouncer -----------------------------------------------------------------------


async def test_the_guides_debouncer_fails_every_superseded_caller_with_cancelled_error(
    client: httpx.AsyncClient, server: ServerHandle
) -> None:
    answers = await burst(client, "guide", "g1", n=5, delay_s=0.3)
    statuses = [status for status, *_ in answers]
    assert sorted(statuses) == [200] + [409] * 4, answers
    superseded = [a for a in answers if a[0] == 409]
    assert all("CancelledError" in body["detail"] for _, _, body, _ in superseded)
    ran = next(a for a in answers if a[0] == 200)
    # the one caller that was not superseded waited the whole delay for the run
    assert ran[2]["outcome"] == "ran"
    assert ran[2]["waited_ms"] >= 0.3 * 1000 * 0.95
    assert ran[1] >= 0.28
    # each superseded caller was answered when the next trigger cancelled its task, not
    # after the run: before the caller that ran (answer times, not waits: a stall of the
    # machine delays every answer alike, and made an early caller's wait the longer)
    assert all(ended < ran[3] for *_, ended in superseded), answers
    assert (await counts(client, "g1"))["runs"] == 1
    assert (await counts(client, "g1"))["triggers"] == 5
    assert all(task.done() for task in lab_of(server).guide.tasks.values())


async def test_the_corrected_debouncer_answers_at_once_and_runs_once(
    client: httpx.AsyncClient, server: ServerHandle
) -> None:
    answers = await burst(client, "fixed", "f1", n=5, delay_s=0.5)
    assert [status for status, *_ in answers] == [202] * 5, answers
    assert [body["outcome"] for _, _, body, _ in answers] == ["scheduled"] + ["coalesced"] * 4
    # none waited for the run (loose: the delay is 0.5 s)
    assert all(wait < 0.4 for _, wait, _, _ in answers), answers
    assert (await counts(client, "f1"))["runs"] == 0  # not yet: the key is not quiet
    await eventually(lambda: "f1" not in lab_of(server).fixed.timers, within=5)
    final = await counts(client, "f1")
    assert (final["runs"], final["triggers"], final["pending"]) == (1, 5, False)


async def test_blocking_mode_picks_the_guides_form(
    client: httpx.AsyncClient, blocking: None
) -> None:
    response = await client.post(TRIGGER, params={"key": "b1", "delay_s": 0.01})
    assert response.status_code == 200, response.text
    assert response.json()["form"] == "guide"


async def test_without_blocking_mode_the_corrected_form_is_taken(client: httpx.AsyncClient) -> None:
    response = await client.post(TRIGGER, params={"key": "b2", "delay_s": 0.01})
    assert response.status_code == 202, response.text
    assert response.json()["form"] == "fixed"


@pytest.mark.parametrize(
    "params",
    [
        {"delay_s": "0"},
        {"delay_s": "6"},
        {"delay_s": "soon"},
        {"key": ""},
        {"key": "a b"},
        {"key": "k" * 33},
        {"form": "other"},
    ],
)
async def test_bad_trigger_input_gets_a_clear_422(
    client: httpx.AsyncClient, params: dict[str, str]
) -> None:
    clear_422_detail(await client.post(TRIGGER, params=params))


async def test_reset_and_shutdown_cancel_pending_runs_and_leave_no_task(tmp_path: Path) -> None:
    handle = ServerHandle(Settings(port=0, data_dir=tmp_path / "data"))
    await handle.start()
    try:
        async with httpx.AsyncClient(base_url=handle.url, timeout=30) as http:
            for key in ("r1", "r2"):
                response = await http.post(
                    TRIGGER, params={"form": "fixed", "key": key, "delay_s": 5}
                )
                assert response.status_code == 202
            assert (await counts(http, "r1"))["pending"]
            reset = await http.post("/correctness/debounce/reset", params={"key": "r1"})
            assert reset.json()["pending"] is False
            assert not (await counts(http, "r1"))["pending"]
            assert (await counts(http, "r2"))["pending"]
    finally:
        await handle.stop()
    await asyncio.sleep(0)
    left = [t for t in asyncio.all_tasks() if t.get_name().startswith("correctness-debounce")]
    assert left == []
    assert lab_of(handle).fixed.timers == {}


# -- the upload handler ------------------------------------------------------------------


async def upload(
    client: httpx.AsyncClient, form: str, filename: str, content: bytes = b"hello\n"
) -> httpx.Response:
    return await client.post(
        "/correctness/upload", params={"form": form}, files={"file": (filename, content)}
    )


async def test_the_guides_upload_escapes_the_upload_directory_but_stays_in_the_sandbox(
    client: httpx.AsyncClient, server: ServerHandle
) -> None:
    sandbox = sandbox_of(server)
    response = await upload(client, "guide", "../escaped.txt")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["escaped"] is True
    assert body["stored_as"] == "escaped.txt"
    assert "ESCAPED the upload directory" in body["verdict"]
    assert (sandbox.root / "escaped.txt").read_bytes() == b"hello\n"
    assert files_under(sandbox.uploads) == set()


@pytest.mark.parametrize(
    "filename", ["../../outside.txt", "../../../../../../tmp/outside.txt", "/etc/passwd", ".."]
)
async def test_the_guides_upload_refuses_what_would_land_outside_the_sandbox(
    client: httpx.AsyncClient, server: ServerHandle, filename: str
) -> None:
    sandbox = sandbox_of(server)
    data_dir = sandbox.root.parent
    before = own_files(data_dir)
    outside = outside_marks()
    response = await upload(client, "guide", filename)
    assert response.status_code == 400, response.text
    assert "refused" in response.json()["detail"]
    assert "nothing written" in response.json()["detail"]
    assert own_files(data_dir) == before
    assert files_under(sandbox.root) == set()
    assert outside_marks() == outside


async def test_the_filename_arrives_as_the_client_set_it(
    client: httpx.AsyncClient, server: ServerHandle
) -> None:
    """Starlette passes it through: "/" stays, a backslash and %2f are plain characters on
    POSIX (no escape); only a Windows drive path is cut to its last part by the parser."""
    sandbox = sandbox_of(server)
    for sent, stored in [
        ("..\\back.txt", "uploads/..\\back.txt"),
        ("..%2fpct.txt", "uploads/..%2fpct.txt"),
        ("C:\\dir\\win.txt", "uploads/win.txt"),
    ]:
        response = await upload(client, "guide", sent)
        assert response.status_code == 200, response.text
        assert response.json()["stored_as"] == stored
        assert response.json()["escaped"] is False
    assert not (sandbox.root / "back.txt").exists()


async def test_the_corrected_upload_keeps_a_generated_name(
    client: httpx.AsyncClient, server: ServerHandle
) -> None:
    sandbox = sandbox_of(server)
    response = await upload(client, "fixed", "../escaped.txt")
    assert response.status_code == 200, response.text
    body = response.json()
    assert re.fullmatch(r"uploads/[0-9a-f]{16}\.bin", body["stored_as"]), body
    assert body["escaped"] is False
    assert body["filename"] == "../escaped.txt"
    assert files_under(sandbox.root) == {body["stored_as"]}
    assert sandbox.names == {body["stored_as"].removeprefix("uploads/"): "../escaped.txt"}


async def test_over_the_cap_is_413_and_nothing_is_written(
    client: httpx.AsyncClient, server: ServerHandle
) -> None:
    sandbox = sandbox_of(server)
    big = b"x" * (MAX_BODY + 1)
    response = await upload(client, "guide", "big.bin", big)
    assert response.status_code == 413, response.text

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
        boundary = b"--b0undary"
        yield (
            boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="c.bin"\r\n\r\n'
        )
        for _ in range(20):
            yield b"y" * 65536
        yield b"\r\n" + boundary + b"--\r\n"

    response = await client.post(
        "/correctness/upload",
        params={"form": "fixed"},
        content=chunks(),
        headers={"content-type": "multipart/form-data; boundary=b0undary"},
    )
    assert response.status_code == 413, response.text
    assert files_under(sandbox.root) == set()


async def test_bad_upload_input_is_a_clear_4xx(client: httpx.AsyncClient) -> None:
    missing = await client.post("/correctness/upload", params={"form": "fixed"})
    assert "file part" in clear_422_detail(missing)[0]["msg"]
    clear_422_detail(await upload(client, "other", "x.txt"))
    extra = await client.post(
        "/correctness/upload",
        params={"form": "fixed"},
        data={"note": "x"},
        files={"file": ("x.txt", b"x")},
    )
    assert extra.status_code == 400, extra.text
    assert "fields" in extra.json()["detail"]


async def test_blocking_mode_picks_the_guides_upload(
    client: httpx.AsyncClient, blocking: None
) -> None:
    response = await client.post("/correctness/upload", files={"file": ("../escaped.txt", b"x")})
    assert response.status_code == 200, response.text
    assert (response.json()["form"], response.json()["escaped"]) == ("guide", True)


async def test_reset_and_shutdown_empty_the_sandbox(tmp_path: Path) -> None:
    handle = ServerHandle(Settings(port=0, data_dir=tmp_path / "data"))
    await handle.start()
    sandbox = sandbox_of(handle)
    try:
        async with httpx.AsyncClient(base_url=handle.url, timeout=30) as http:
            await upload(http, "guide", "../escaped.txt")
            await upload(http, "fixed", "a.txt")
            assert len(files_under(sandbox.root)) == 2
            assert (await http.post("/correctness/upload/reset")).json() == {"removed": 2}
            assert files_under(sandbox.root) == set()
            await upload(http, "fixed", "b.txt")
    finally:
        await handle.stop()
    assert files_under(sandbox.root) == set()
    assert sandbox.uploads.is_dir()


# -- the tab, in the correctness pane (Pilot) --------------------------------------------

RESULTS = ("#guide-verdict", "#guide-log")


async def open_tab(app: ExplorerApp, pilot: Pilot[Any]) -> CorrectnessPane:
    pane = await open_live(app, pilot, CorrectnessPane)
    await pilot.pause()
    assert pane.display
    pane.query_one(TabbedContent).active = "tab-guide"  # the last tab
    await pilot.pause()
    return pane


def verdict_of(tab: GuideFixesTab) -> str:
    return str(tab.figures["verdict"])


@pytest.mark.parametrize("size", [(100, 30), (140, 45)])
async def test_tab_shows_the_debounce_lesson_in_both_forms(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    async with live_pane(tmp_path, size, open_tab) as (app, pilot, pane):
        tab = pane.query_one(GuideFixesTab)
        assert problems_of(pane, results=RESULTS) == []
        await pilot.press("r")  # by mode: corrected
        await eventually(lambda: tab.burst is not None and not tab.running, within=20)
        assert tab.burst is not None
        assert tab.burst.form == "fixed"
        assert (tab.burst.runs, len(tab.burst.callers), tab.burst.failed) == (1, 5, [])
        assert "5 callers answered in" in verdict_of(tab)
        assert "1 run" in verdict_of(tab)
        assert "Corrected" in str(tab.query_one("#guide-lesson").render())

        await pilot.press("b")
        await pilot.pause()
        assert "Blocking mode: The guide's Debouncer" in str(
            tab.query_one("#guide-lesson").render()
        )
        tab.burst = None
        await pilot.press("r")
        await eventually(lambda: tab.burst is not None and not tab.running, within=20)
        assert tab.burst is not None
        assert tab.burst.form == "guide"
        assert len(tab.burst.failed) == 4
        assert tab.burst.runs == 1
        assert "5 callers, 4 failed with CancelledError" in verdict_of(tab)
        assert "runs: 1" in verdict_of(tab)
        assert "superseded: CancelledError" in str(tab.figures["log"])
        assert problems_of(pane, results=RESULTS) == []
        app.blocking_switch.set(False)


@pytest.mark.parametrize("size", [(100, 30), (140, 45)])
async def test_tab_shows_the_upload_escape_and_the_generated_name(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    async with live_pane(tmp_path, size, open_tab) as (app, pilot, pane):
        tab = pane.query_one(GuideFixesTab)
        tab.query_one("#guide-demo", Select).value = "upload"
        await pilot.pause()
        assert tab.query_one("#guide-filename", Input).value == "../escaped.txt"
        assert problems_of(pane, results=RESULTS) == []
        await pilot.press("r")  # by mode: corrected
        await eventually(lambda: tab.stored is not None and not tab.running, within=20)
        assert "server-generated name" in verdict_of(tab)

        await pilot.press("b")
        await pilot.pause()
        tab.stored = None
        await pilot.press("r")
        await eventually(lambda: tab.stored is not None and not tab.running, within=20)
        assert "ESCAPED the upload directory" in verdict_of(tab)
        assert "Blocking mode" in str(tab.query_one("#guide-lesson").render())
        assert problems_of(pane, results=RESULTS) == []
        await pilot.click("#guide-reset")
        sandbox = tmp_path / "correctness-sandbox"
        await eventually(lambda: files_under(sandbox) == set(), within=5)
        app.blocking_switch.set(False)


async def test_tab_refuses_a_bad_field(tmp_path: Path) -> None:
    async with live_pane(tmp_path, (100, 30), open_tab) as (app, pilot, pane):
        tab = pane.query_one(GuideFixesTab)
        tab.query_one("#guide-delay", Input).value = "9"
        await pilot.press("r")
        await pilot.pause()
        assert not tab.running
        assert tab.burst is None
        assert any("Invalid input" in (n.title or "") for n in app._notifications)


async def test_the_tab_shows_the_code_of_the_form_that_runs(tmp_path: Path) -> None:
    async with live_pane(tmp_path, (100, 30), open_tab) as (app, pilot, pane):
        tab = pane.query_one(GuideFixesTab)
        fixed = "".join(block.text for block in pane.code_blocks())
        assert "class FixedDebouncer" in fixed
        assert "async def fire_burst" in fixed
        app.blocking_switch.set(True)
        guide = "".join(block.text for block in pane.code_blocks())
        assert "await self.tasks[key]" in guide
        tab.query_one("#guide-demo", Select).value = "upload"
        await pilot.pause()
        assert 'f"{self.uploads}/{filename}"' in "".join(b.text for b in pane.code_blocks())
        app.blocking_switch.set(False)
        assert "token_hex(8)" in "".join(b.text for b in pane.code_blocks())
