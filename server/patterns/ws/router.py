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

Every socket checks the Origin header and bounds what it reads
(:mod:`server.patterns.ws.sockets`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.websockets import WebSocket, WebSocketDisconnect

from server.patterns.ws.deps import WsState as WsState
from server.patterns.ws.deps import WsStateDep
from server.patterns.ws.limits import GOING_AWAY, POLICY_VIOLATION, Refused, WsLimits
from server.patterns.ws.manager import ConnectionManager
from server.patterns.ws.models import (
    NAME_PATTERN,
    ExpiredTokenIn,
    TokenIn,
    TokenOut,
    token_out,
)
from server.patterns.ws.rooms import Member
from server.patterns.ws.sockets import (
    BadFrame,
    answer_frames,
    bad_input,
    chosen_subprotocol,
    close_quietly,
    origin_problem,
    other_socket,
    read_text,
    refuse,
)
from server.patterns.ws.sockets import parse_object as parse_object
from server.patterns.ws.sockets import serve_frames as serve_frames
from server.patterns.ws.tokens import (
    RedactionInstalled,
    TokenError,
    TokenSigner,
    token_from_subprotocols,
)
from server.state import state_of

log = logging.getLogger("fastasync.ws")

ROOM_PATTERN = r"^[a-z0-9_-]{1,32}$"
_NAME = re.compile(NAME_PATTERN)
_ROOM = re.compile(ROOM_PATTERN)
JSON_TYPES = ("ping", "message")
CHAT_TYPES = ("message",)
#: how long ``POST /ws/token/expired`` tokens have been expired (for the demo)
EXPIRED_AGO_S = 5.0


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
    redaction = RedactionInstalled()
    try:
        async with state.opened(WsState, WsState(limits, manager, TokenSigner()), manager.close):
            yield
    finally:
        redaction.remove()


router = APIRouter(prefix="/ws", tags=["ws"], lifespan=ws_lifespan)


# -- echo and JSON ----------------------------------------------------------------------------


@router.websocket("/echo")
async def echo(websocket: WebSocket, state: WsStateDep) -> None:
    """Every text message comes straight back."""
    await answer_frames(websocket, state, "echo", lambda text: text)


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
    await answer_frames(websocket, state, "json", lambda text: json_answer(websocket, text))


# -- tokens and the secure socket -------------------------------------------------------------


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
