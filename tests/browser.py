"""Headless Chromium with the network cut off, and proof that nothing tried to leave.

Every request but loopback goes through a proxy that this module runs itself: a socket
that counts the connections made to it and answers none. A page that needs anything from
the network (a CDN's script, a web font, an image) shows up in that count.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

#: Chromium's own background traffic (updates, sync, safe browsing) off: the trap counts
#: only what the page asks for
QUIET_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
)


#: what Chromium itself asks for even with those flags (its update check, its network
#: clock, its account sign-in): the browser's, not the page's, so not counted against it
BROWSER_OWN_HOSTS = ("update.googleapis.com", "clients2.google.com", "accounts.google.com")


def _host_of(request_line: bytes) -> str:
    """The host a proxy request line asks for (``CONNECT h:443`` or ``GET http://h/...``)."""
    parts = request_line.decode(errors="replace").split()
    target = parts[1] if len(parts) > 1 else ""
    target = target.split("://", 1)[-1]
    return target.split("/", 1)[0].rsplit(":", 1)[0]


#: how long one Chromium run may take on a slow, loaded machine
BROWSER_BUDGET_S = 90


@dataclass
class Trap:
    """A proxy that refuses everything, and remembers what asked."""

    asked: list[bytes] = field(default_factory=list)

    async def _refuse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            first = await asyncio.wait_for(reader.readline(), timeout=5)
        except (TimeoutError, ConnectionError):
            first = b"(nothing)"
        if _host_of(first) not in BROWSER_OWN_HOSTS:
            self.asked.append(first.strip())
        writer.close()


@asynccontextmanager
async def trap_proxy() -> AsyncIterator[tuple[str, Trap]]:
    """A :class:`Trap` listening on loopback: its proxy URL (for ``--proxy-server``) and
    itself, to read once the browser is done."""
    trap = Trap()
    server = await asyncio.start_server(trap._refuse, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", trap
    finally:
        server.close()
        await server.wait_closed()


async def run_offline(
    browser: str, url: str, profile: Path, *flags: str
) -> tuple[str, list[bytes]]:
    """Chromium on ``url`` with ``flags``: what it printed, and the request lines that
    reached the trap (empty: nothing left the page)."""
    async with trap_proxy() as (proxy, trap):
        process = await asyncio.create_subprocess_exec(
            browser,
            *QUIET_FLAGS,
            f"--user-data-dir={profile}",
            f"--proxy-server={proxy}",
            *flags,
            url,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            async with asyncio.timeout(BROWSER_BUDGET_S):
                out, _ = await process.communicate()
        finally:
            if process.returncode is None:  # timed out: no browser left behind
                process.kill()
                await process.wait()
    return out.decode(), trap.asked
