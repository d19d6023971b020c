"""What every socket of the WebSocket pattern does alike: admit, read, answer, close.

Every socket checks the Origin header (absent is fine: not a browser) and bounds what it
reads: binary on a text socket closes with 1003, a message over the app's limit with 1009.
Bad input is answered and logged in one line, never with a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from server.patterns.ws.deps import WsState
from server.patterns.ws.limits import (
    CLOSE_WAIT_S,
    MESSAGE_TOO_BIG,
    POLICY_VIOLATION,
    TRY_AGAIN_LATER,
    UNSUPPORTED_DATA,
    WsLimits,
)
from server.patterns.ws.tokens import SUBPROTOCOL

log = logging.getLogger("fastasync.ws")

#: a close reason may be at most 123 bytes (RFC 6455 5.5: 125 minus the code)
MAX_REASON_BYTES = 123


class BadFrame(Exception):
    """A frame this socket will not take: close with ``code`` and ``reason``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def peer(websocket: WebSocket) -> str:
    client = websocket.client
    return f"{client.host}:{client.port}" if client else "?"


def short_reason(reason: str) -> str:
    """``reason`` cut to fit a close frame."""
    data = reason.encode()
    if len(data) <= MAX_REASON_BYTES:
        return reason
    return data[: MAX_REASON_BYTES - 3].decode(errors="ignore") + "..."


def origin_problem(websocket: WebSocket, limits: WsLimits) -> str | None:
    """Why this connection's Origin is refused, or None (absent Origin: not a browser)."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return None
    server = websocket.scope.get("server")
    port = server[1] if server else None
    own = {f"http://127.0.0.1:{port}", f"http://localhost:{port}", f"http://[::1]:{port}"}
    if origin in own or origin in limits.extra_origins:
        return None
    return f"origin not allowed: {origin[:60]}"


def chosen_subprotocol(websocket: WebSocket) -> str | None:
    """Accept ``fastasync.v1`` when offered (a browser fails a handshake that picks none)."""
    offered: list[str] = websocket.scope.get("subprotocols", [])
    return SUBPROTOCOL if SUBPROTOCOL in offered else None


async def refuse(websocket: WebSocket, code: int, reason: str) -> None:
    """Accept, then close with a reason the client can read; log one line."""
    log.warning("ws %s from %s refused (%d): %s", websocket.url.path, peer(websocket), code, reason)
    with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
        await websocket.accept(subprotocol=chosen_subprotocol(websocket))
        await close_quietly(websocket, code, reason)


async def close_quietly(websocket: WebSocket, code: int, reason: str) -> None:
    """Close with a reason, but never wait long: a stalled socket cannot take the frame."""
    with contextlib.suppress(TimeoutError, WebSocketDisconnect, RuntimeError, OSError):
        async with asyncio.timeout(CLOSE_WAIT_S):
            await websocket.close(code, short_reason(reason))


async def read_text(websocket: WebSocket, limits: WsLimits) -> str | None:
    """The next text message, None once the client has gone; :class:`BadFrame` otherwise."""
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        return None
    text: str | None = message.get("text")
    if text is None:
        raise BadFrame(UNSUPPORTED_DATA, "binary frames are not accepted here: send text")
    if len(text) > limits.max_message_chars:
        raise BadFrame(
            MESSAGE_TOO_BIG,
            f"message too big: {len(text)} characters, the limit is {limits.max_message_chars}",
        )
    return text


def parse_object(text: str, types: tuple[str, ...]) -> tuple[dict[str, Any] | None, str | None]:
    """A JSON object with a known ``type``, or the error to answer with."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        return None, f"malformed JSON: {exc}"
    if not isinstance(data, dict):
        return None, f"expected a JSON object, got {type(data).__name__}"
    kind = data.get("type")
    if kind not in types:
        return None, f"unknown type {str(kind)[:40]!r}; expected one of: {', '.join(types)}"
    return data, None


def bad_input(websocket: WebSocket, error: str) -> dict[str, Any]:
    """Log one line and build the error frame."""
    log.info("ws %s from %s: %s", websocket.url.path, peer(websocket), error[:200])
    return {"type": "error", "error": error}


@asynccontextmanager
async def other_socket(websocket: WebSocket, state: WsState, kind: str) -> AsyncIterator[bool]:
    """Count an echo/JSON/secure socket against its limit; yields False when refused."""
    if origin := origin_problem(websocket, state.limits):
        await refuse(websocket, POLICY_VIOLATION, origin)
        yield False
        return
    if sum(state.sockets.values()) >= state.limits.max_other_sockets:
        await refuse(websocket, TRY_AGAIN_LATER, "too many open sockets; try again later")
        yield False
        return
    state.sockets[kind] += 1
    try:
        yield True
    finally:
        state.sockets[kind] -= 1


async def serve_frames(websocket: WebSocket, state: WsState, answer: Any) -> None:
    """Read text frames until the client goes; send what ``answer(text)`` returns.

    Bad frames close the socket with their code and reason; a client that vanishes at any
    moment (even without a close frame) just ends the loop.
    """
    try:
        while (text := await read_text(websocket, state.limits)) is not None:
            reply = answer(text)
            if isinstance(reply, str):
                await websocket.send_text(reply)
            else:
                await websocket.send_json(reply)
    except BadFrame as exc:
        log.warning("ws %s from %s: %s", websocket.url.path, peer(websocket), exc.reason)
        await close_quietly(websocket, exc.code, exc.reason)
    except (WebSocketDisconnect, OSError):
        pass  # gone mid-send: nothing to answer


async def answer_frames(
    websocket: WebSocket, state: WsState, kind: str, answer: Callable[[str], Any]
) -> None:
    """An echo or JSON socket's whole life: admitted, accepted, each frame answered."""
    async with other_socket(websocket, state, kind) as admitted:
        if not admitted:
            return
        with contextlib.suppress(WebSocketDisconnect, OSError):
            await websocket.accept(subprotocol=chosen_subprotocol(websocket))
            await serve_frames(websocket, state, answer)
