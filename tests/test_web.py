"""``fastasync-explorer web``: the explorer in headless Chromium (Debian's, driven by
Playwright), one explorer process per tab, none left once the tabs close, nothing fetched
from the network."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, WebSocket, async_playwright

from explorer.tools.web import explorer_command, free_port
from tests.browser import QUIET_FLAGS, trap_proxy
from tests.conftest import eventually

ANSI = re.compile(rb"\x1b\[[0-9;?<>=]*[ -/]*[@-~]")
#: what the explorer's first screen shows: the menu's title and its last entry
MENU_TEXT = ("patterns", "Durable queue")
#: the Concurrency pane's own text, on screen only once the key 2 has opened it
CONCURRENCY_TEXT = "tasks on a time axis"


def explorer_pids(parent: int) -> set[int]:
    """The explorer processes ``parent`` (the web server) has started, from ``/proc``."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == parent and b"fastasync_explorer" in (entry / "cmdline").read_bytes():
                found.add(int(entry.name))
    return found


@dataclass
class Tab:
    """A browser tab on the page, and what its terminal was sent."""

    page: Page
    received: list[bytes] = field(default_factory=list)
    #: every URL the page asked for (its documents, scripts, fonts, its WebSocket)
    requested: list[str] = field(default_factory=list)

    def watch(self, socket: WebSocket) -> None:
        socket.on("framereceived", self._on_frame)

    def _on_frame(self, payload: str | bytes) -> None:
        self.received.append(payload if isinstance(payload, bytes) else payload.encode())

    def screen_text(self, since: int = 0) -> str:
        """The text of the frames received (from frame ``since``), escape codes removed."""
        return ANSI.sub(b"", b"".join(self.received[since:])).decode(errors="ignore")


@contextlib.contextmanager
def web_server(port: int) -> Iterator[subprocess.Popen[bytes]]:
    """``fastasync-explorer web`` on ``port``, stopped with SIGINT (as Ctrl+C) at the end."""
    command = [sys.executable, "-m", "fastasync_explorer", "web", "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextlib.asynccontextmanager
async def browser_offline(chromium: str) -> AsyncIterator[Browser]:
    """Playwright's Chromium (the machine's own binary) with the network cut off (what
    is not loopback goes to a proxy that answers nothing)."""
    async with trap_proxy() as (proxy, _), async_playwright() as playwright:
        # the proxy as Chromium's own flag: Playwright's proxy option would send loopback
        # through it too, and the page is on loopback
        flags = [flag for flag in QUIET_FLAGS if flag != "--headless"]
        browser = await playwright.chromium.launch(
            executable_path=chromium, args=[*flags, f"--proxy-server={proxy}"]
        )
        try:
            yield browser
        finally:
            await browser.close()


async def open_tab(browser: Browser, url: str) -> Tab:
    page = await browser.new_page(viewport={"width": 1400, "height": 900})
    tab = Tab(page)
    page.on("websocket", tab.watch)
    page.on("request", lambda request: tab.requested.append(request.url))
    await page.goto(url)
    return tab


def test_the_command_is_the_explorer_on_a_free_loopback_port() -> None:
    from explorer.cli import build_parser

    args = build_parser().parse_args(["web", "--port", "9000", "--blocking"])
    command = explorer_command(args)
    assert command.startswith("exec ")  # the shell becomes the explorer: its pid is known
    assert "-m fastasync_explorer --host 127.0.0.1 --port 0" in command
    assert "--blocking" in command
    assert "9000" not in command  # the page's port, not the explorers'


def test_a_port_in_use_is_one_sentence() -> None:
    with contextlib.closing(__import__("socket").socket()) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "fastasync_explorer", "web", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"fastasync-explorer: port {port} on 127.0.0.1 is in use: pick another with --port"
    )


def test_bound_elsewhere_it_warns_and_ctrl_c_stops_it() -> None:
    port = free_port("0.0.0.0")
    command = [sys.executable, "-m", "fastasync_explorer", "web", "--host", "0.0.0.0"]
    process = subprocess.Popen(
        [*command, "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        assert process.stderr is not None
        warning = process.stderr.readline().decode()
        assert warning.startswith("fastasync-explorer: warning: the page listens on 0.0.0.0")
        assert "reachable from other machines" in warning
        assert "--public-url" in warning
        deadline = time.monotonic() + 30
        while not _answers(f"http://127.0.0.1:{port}/"):
            assert time.monotonic() < deadline, "the page never answered"
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=30)
        if process.stderr is not None:
            process.stderr.close()
    assert code == 0


async def test_three_tabs_three_explorers_and_none_left(tmp_path: Path, chromium: str) -> None:
    port = free_port("127.0.0.1")
    url = f"http://127.0.0.1:{port}/"
    with web_server(port) as web:
        await eventually(lambda: _answers(url), within=30)
        async with browser_offline(chromium) as browser:
            tabs: list[Tab] = []
            pids: list[int] = []
            for _ in range(3):
                tab = await open_tab(browser, url)
                # the tab's own explorer: the one process that was not there before
                await eventually(lambda: len(explorer_pids(web.pid)) == len(pids) + 1, 60)
                (new,) = explorer_pids(web.pid) - set(pids)
                tabs.append(tab)
                pids.append(new)
                await eventually(lambda: shows_menu(tabs[-1]), within=60)
            assert len(set(pids)) == 3

            # a key pressed in the page reaches that tab's explorer: 2 opens Concurrency
            first = tabs[0]
            before = len(first.received)
            assert CONCURRENCY_TEXT not in first.screen_text()
            await first.page.locator("textarea").first.focus()
            await first.page.keyboard.press("2")
            await eventually(lambda: CONCURRENCY_TEXT in first.screen_text(before), within=30)
            await first.page.wait_for_timeout(500)
            shot = tmp_path / "web.png"
            await first.page.screenshot(path=str(shot))
            assert shot.stat().st_size > 20_000
            keep = os.environ.get("FASTASYNC_SCREENSHOTS")
            if keep:
                shutil.copy(shot, Path(keep) / "web.png")

            # closing a tab ends its explorer, and only that one
            await first.page.close()
            await eventually(lambda: pids[0] not in explorer_pids(web.pid), 30)
            assert explorer_pids(web.pid) == set(pids[1:])
            for tab in tabs[1:]:
                await tab.page.close()
            await eventually(lambda: not explorer_pids(web.pid), 30)
            # the page, its font included, came from the web server alone (and Chromium,
            # whose own background requests reach the trap, got nothing from outside)
            everything = [u for tab in tabs for u in tab.requested]
            assert any(u.endswith(".ttf") for u in everything)  # the local font
            assert [u for u in everything if not u.startswith(url)] == []
        web.send_signal(signal.SIGINT)
        assert await asyncio.to_thread(web.wait, 30) == 0
    assert not [pid for pid in pids if Path(f"/proc/{pid}").exists()]  # noqa: ASYNC240


def shows_menu(tab: Tab) -> bool:
    """Whether the tab's terminal was sent the explorer's menu."""
    text = tab.screen_text()
    return all(part in text for part in MENU_TEXT)


def _answers(url: str) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(url, timeout=2).status_code == 200
    return False


@pytest.fixture(autouse=True)
def _no_stray_explorers() -> Iterator[None]:
    yield
    # belt and braces for a failed test: nothing of this test's outlives it
    subprocess.run(["pkill", "-f", "fastasync_explorer --host 127.0.0.1 --port 0"], check=False)
