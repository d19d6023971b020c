"""WebSockets: echo, a JSON protocol, a token-authenticated socket, and broadcast chat rooms.

- ``/ws/echo``: every text message comes back as it was.
- ``/ws/json``: ``{"type": "ping"}`` gets a pong, ``{"type": "message", "text": ...}`` an
  ack; anything else an error frame, and the socket stays open.
- ``/ws/secure``: a token from ``POST /ws/token``, offered as the subprotocol
  ``bearer.<token>`` (see :mod:`server.patterns.ws.tokens` for why not the query string). Missing,
  bad or expired: accepted, then closed with 1008 and the reason, so the client can read
  it (a close before accept is an HTTP 403 without one). The socket is closed with 1008
  when the token expires.
- ``/ws/chat/{room}?name=``: rooms through :class:`~server.patterns.ws.manager.ConnectionManager`;
  blocking mode switches its broadcast to the guide's naive loop.
- ``GET /ws/stats``: members, writer tasks, outbox depths, drops, traffic.

Every socket checks the Origin header (absent is fine: not a browser) and bounds what it
reads: binary on a text socket closes with 1003, a message over the app's limit with 1009.
Bad input is answered and logged in one line, never with a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI
from pydantic import BaseModel, ConfigDict, Field
from starlette.websockets import WebSocket, WebSocketDisconnect

from server.deps import provided
from server.patterns.ws.manager import (
    GOING_AWAY,
    MESSAGE_TOO_BIG,
    POLICY_VIOLATION,
    TRY_AGAIN_LATER,
    UNSUPPORTED_DATA,
    ConnectionManager,
    Member,
    Refused,
    WsLimits,
)
from server.patterns.ws.tokens import (
    SUBPROTOCOL,
    RedactionInstalled,
    TokenError,
    TokenSigner,
    token_from_subprotocols,
)
from server.state import state_of

log = logging.getLogger("fastasync.ws")

NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,32}$"
ROOM_PATTERN = r"^[a-z0-9_-]{1,32}$"
_NAME = re.compile(NAME_PATTERN)
_ROOM = re.compile(ROOM_PATTERN)
#: a close reason may be at most 123 bytes (RFC 6455 5.5: 125 minus the code)
MAX_REASON_BYTES = 123
JSON_TYPES = ("ping", "message")
CHAT_TYPES = ("message",)
#: how long ``POST /ws/token/expired`` tokens have been expired (for the demo)
EXPIRED_AGO_S = 5.0


@dataclass
class WsState:
    """Everything the WebSocket routes share, opened by the router's lifespan."""

    limits: WsLimits
    manager: ConnectionManager
    signer: TokenSigner
    sockets: Counter[str] = field(default_factory=Counter)


@asynccontextmanager
async def ws_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """A per-server token secret, the chat manager, and the log redaction, for the app's life.

    ``state_of(app).provide(WsLimits, ...)`` before startup sets the limits (tests, the
    benchmark).
    """
    state = state_of(app)
    limits = state.find(WsLimits) or WsLimits()
    switch = state.blocking
    manager = ConnectionManager(limits, naive=lambda: switch.enabled)
    state.provide(WsState, WsState(limits, manager, TokenSigner()))
    redaction = RedactionInstalled()
    try:
        yield
    finally:
        await manager.close()
        redaction.remove()


router = APIRouter(prefix="/ws", tags=["ws"], lifespan=ws_lifespan)


WsStateDep = Annotated[WsState, Depends(provided(WsState))]


# -- shared socket plumbing -------------------------------------------------------------------


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
        async with asyncio.timeout(0.5):
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


# -- echo and JSON ----------------------------------------------------------------------------


@router.websocket("/echo")
async def echo(websocket: WebSocket, state: WsStateDep) -> None:
    """Every text message comes straight back."""
    async with other_socket(websocket, state, "echo") as admitted:
        if not admitted:
            return
        with contextlib.suppress(WebSocketDisconnect, OSError):
            await websocket.accept(subprotocol=chosen_subprotocol(websocket))
            await serve_frames(websocket, state, lambda text: text)


def json_answer(websocket: WebSocket, text: str) -> dict[str, Any]:
    """The JSON protocol: ping -> pong, message -> ack, anything else -> an error frame."""
    data, error = parse_object(text, JSON_TYPES)
    if data is None:
        return bad_input(websocket, error or "bad message")
    if data["type"] == "ping":
        return {"type": "pong", "id": data.get("id"), "server_time": time.time()}
    body = data.get("text")
    if not isinstance(body, str):
        return bad_input(websocket, "a message needs a string field 'text'")
    return {"type": "ack", "text": body, "length": len(body), "server_time": time.time()}


@router.websocket("/json")
async def json_socket(websocket: WebSocket, state: WsStateDep) -> None:
    """A typed JSON protocol; bad messages get an error frame and the socket stays open."""
    async with other_socket(websocket, state, "json") as admitted:
        if not admitted:
            return
        with contextlib.suppress(WebSocketDisconnect, OSError):
            await websocket.accept(subprotocol=chosen_subprotocol(websocket))
            await serve_frames(websocket, state, lambda text: json_answer(websocket, text))


# -- tokens and the secure socket -------------------------------------------------------------


class TokenIn(BaseModel):
    """``POST /ws/token`` body."""

    model_config = ConfigDict(extra="forbid", strict=True)
    name: str = Field(pattern=NAME_PATTERN, description="Who the token is for.")
    ttl_s: float = Field(
        default=60.0, ge=1.0, le=3600.0, allow_inf_nan=False, description="1 s to 1 h."
    )


class ExpiredTokenIn(BaseModel):
    """``POST /ws/token/expired`` body."""

    model_config = ConfigDict(extra="forbid", strict=True)
    name: str = Field(pattern=NAME_PATTERN)


class TokenOut(BaseModel):
    token: str
    expires_at: float = Field(description="Unix time.")
    subprotocols: list[str] = Field(description="What to offer when connecting to /ws/secure.")


def token_out(token: str, expires_at: float) -> TokenOut:
    return TokenOut(
        token=token, expires_at=expires_at, subprotocols=[SUBPROTOCOL, f"bearer.{token}"]
    )


@router.post("/token")
async def issue_token(body: TokenIn, state: WsStateDep) -> TokenOut:
    """A short-lived token for ``/ws/secure``, HMAC-signed with this server's secret."""
    return token_out(*state.signer.issue(body.name, body.ttl_s))


@router.post("/token/expired")
async def issue_expired_token(body: ExpiredTokenIn, state: WsStateDep) -> TokenOut:
    """A correctly signed token that expired 5 s ago, to see the refusal without waiting."""
    return token_out(*state.signer.issue(body.name, -EXPIRED_AGO_S))


@router.websocket("/secure")
async def secure(websocket: WebSocket, state: WsStateDep) -> None:
    """Token-authenticated echo: refused with 1008 and the reason, closed at expiry."""
    async with other_socket(websocket, state, "secure") as admitted:
        if not admitted:
            return
        offered: list[str] = websocket.scope.get("subprotocols", [])
        try:
            claims = state.signer.verify(token_from_subprotocols(offered))
        except TokenError as exc:
            await refuse(websocket, POLICY_VIOLATION, str(exc))
            return
        loop = asyncio.get_running_loop()
        expires_in = claims.expires_at - time.time()
        with contextlib.suppress(WebSocketDisconnect, OSError):
            await websocket.accept(subprotocol=chosen_subprotocol(websocket))
            await websocket.send_json(
                {"type": "welcome", "name": claims.name, "expires_in_s": round(expires_in, 1)}
            )
            try:
                async with asyncio.timeout_at(loop.time() + expires_in):
                    await serve_frames(
                        websocket,
                        state,
                        lambda text: {"type": "echo", "from": claims.name, "text": text},
                    )
            except TimeoutError:
                log.info("ws /ws/secure: token of %s expired; closing", claims.name)
                await close_quietly(websocket, POLICY_VIOLATION, "token expired")


# -- chat -------------------------------------------------------------------------------------


@router.websocket("/chat")
@router.websocket("/chat/")
async def chat_without_room(websocket: WebSocket) -> None:
    """No room in the path: say so (rather than the router's reasonless 403)."""
    await refuse(websocket, POLICY_VIOLATION, "room missing: connect to /ws/chat/{room}")


@router.websocket("/chat/{room}")
async def chat(websocket: WebSocket, room: str, state: WsStateDep) -> None:
    """Join ``room`` as ``?name=``; every message goes to every member (you included).

    The read loop runs here; the member's writer task sends. A drop (outbox full, send
    timeout) expires ``member.read_scope``, which ends the loop; ``finally`` removes the
    member and cancels and awaits its writer, whichever way the connection ended.
    """
    manager, limits = state.manager, state.limits
    name = websocket.query_params.get("name") or f"guest-{id(websocket) % 10_000}"
    if problem := origin_problem(websocket, limits):
        await refuse(websocket, POLICY_VIOLATION, problem)
        return
    if not _ROOM.match(room):
        await refuse(websocket, POLICY_VIOLATION, f"bad room name: must match {ROOM_PATTERN}")
        return
    if not _NAME.match(name):
        await refuse(websocket, POLICY_VIOLATION, f"bad name: must match {NAME_PATTERN}")
        return
    try:
        await websocket.accept(subprotocol=chosen_subprotocol(websocket))
        member = manager.join(room, name, websocket)
    except Refused as exc:
        log.warning("ws chat %s: %s refused: %s", room, name, exc.reason)
        await close_quietly(websocket, exc.code, exc.reason)
        return
    except (WebSocketDisconnect, OSError):
        return  # gone during the handshake
    try:
        await chat_read_loop(websocket, member, manager, limits)
    finally:
        await manager.leave(member)


async def chat_read_loop(
    websocket: WebSocket, member: Member, manager: ConnectionManager, limits: WsLimits
) -> None:
    """Read the member's messages and broadcast them, until it leaves or is dropped."""
    room = manager.rooms[member.room]
    manager.tell(
        member,
        {"type": "welcome", "room": member.room, "name": member.name, "members": len(room.members)},
    )
    try:
        async with asyncio.timeout(None) as member.read_scope:
            while (text := await read_text(websocket, limits)) is not None:
                manager.counters.messages_in += 1
                data, error = parse_object(text, CHAT_TYPES)
                body = None if data is None else data.get("text")
                sent_at = None if data is None else data.get("sent_at")
                if data is not None and not isinstance(body, str):
                    error = "a message needs a string field 'text'"
                elif sent_at is not None and not isinstance(sent_at, int | float):
                    error = "'sent_at' must be a number"
                if error is not None:
                    manager.tell(member, bad_input(websocket, error))
                    continue
                payload = {"type": "message", "from": member.name, "text": body}
                if sent_at is not None:
                    payload["sent_at"] = sent_at
                await manager.broadcast(member.room, payload)
    except TimeoutError:
        # Dropped by the manager (it expired the read scope): tell the client why, briefly.
        code = GOING_AWAY if manager.closed else POLICY_VIOLATION
        await close_quietly(websocket, code, member.drop_reason or "dropped")
    except BadFrame as exc:
        log.warning("ws chat %s from %s: %s", member.room, member.name, exc.reason)
        await close_quietly(websocket, exc.code, exc.reason)
    except (WebSocketDisconnect, OSError):
        pass  # vanished, with or without a close frame


@router.get("/stats")
async def stats(state: WsStateDep) -> dict[str, Any]:
    """Chat members, writer tasks, outbox depths, drops and traffic; open sockets by kind."""
    figures = state.manager.stats()
    figures["sockets"] = {kind: n for kind, n in state.sockets.items() if n}
    return figures
