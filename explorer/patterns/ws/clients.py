"""The WebSocket pane's own clients, over real HTTP and WebSockets: what its Auth buttons
run, and the connections its Echo, JSON and Chat tabs hold.

Kept out of the pane module so the pane stays a view; the code view shows
:func:`token_attempt` as the client side of ``/ws/secure``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.typing import Subprotocol

from explorer.patterns.ws.bots import ws_url
from server.patterns.ws.tokens import SUBPROTOCOL, TokenSigner

OPEN_TIMEOUT_S = 5.0
#: what a connection attempt may fail with (said in the frame log, never raised)
SOCKET_ERRORS = (OSError, InvalidHandshake, InvalidURI, ConnectionClosed, TimeoutError)


async def token_attempt(http: httpx.AsyncClient, case: str, say: Callable[[str], None]) -> None:
    """Get a token the way ``case`` says (valid, missing, bad, expired), connect to
    ``/ws/secure`` offering it as the subprotocol ``bearer.<token>``, say what happens."""
    try:
        subprotocols = [Subprotocol(SUBPROTOCOL)]
        if case in ("valid", "bad", "expired"):
            endpoint = "/ws/token/expired" if case == "expired" else "/ws/token"
            body: dict[str, Any] = {"name": "pane"}
            if case != "expired":
                body["ttl_s"] = 30
            response = await http.post(endpoint, json=body)
            response.raise_for_status()
            token = response.json()["token"]
            if case == "bad":
                # Signed by another secret: right shape, wrong signature.
                token = TokenSigner().issue("pane", 30)[0]
            subprotocols.append(Subprotocol(f"bearer.{token}"))
        url = ws_url(str(http.base_url), "/ws/secure")
        say(f"auth ({case}): connecting with {len(subprotocols)} subprotocol(s)")
        async with connect(
            url, subprotocols=subprotocols, open_timeout=OPEN_TIMEOUT_S, close_timeout=1.0
        ) as conn:
            try:
                first = await asyncio.wait_for(conn.recv(), OPEN_TIMEOUT_S)
                say(f"auth ← {first!s}")
                await conn.send("hello from the pane")
                say(f"auth ← {await asyncio.wait_for(conn.recv(), OPEN_TIMEOUT_S)}")
            except ConnectionClosed:
                pass
        say(f"auth ({case}) × closed {conn.close_code} {conn.close_reason}".rstrip())
    except (httpx.HTTPError, ValueError, *SOCKET_ERRORS) as exc:
        say(f"auth ! {type(exc).__name__}: {exc}")


class HeldSockets:
    """The pane's long-lived connections (echo, JSON, chat): one per kind, opened on first
    use and kept until the server or the user closes it."""

    def __init__(self) -> None:
        self._open: dict[str, ClientConnection] = {}
        self._lock = asyncio.Lock()

    async def get(self, kind: str, url: str) -> tuple[ClientConnection, bool]:
        """The open connection for ``kind`` (connecting to ``url`` if there is none), and
        whether it is new (its reader is then the caller's to start)."""
        async with self._lock:
            conn = self._open.get(kind)
            if conn is not None and conn.close_code is None:
                return conn, False
            conn = await connect(url, open_timeout=OPEN_TIMEOUT_S, close_timeout=1.0)
            self._open[kind] = conn
            return conn, True

    def current(self, kind: str) -> ClientConnection | None:
        return self._open.get(kind)

    def forget(self, kind: str, conn: ClientConnection) -> None:
        if self._open.get(kind) is conn:
            del self._open[kind]


async def read_frames(kind: str, conn: ClientConnection, say: Callable[[str], None]) -> None:
    """Say every frame the server sends on ``conn``, then how it closed."""
    try:
        async for frame in conn:
            say(f"{kind} ← {str(frame)[:300]}")
    except ConnectionClosed:
        pass
    finally:
        with contextlib.suppress(Exception):
            await conn.close()
    say(f"{kind} × closed {conn.close_code} {conn.close_reason or ''}".rstrip())
