"""The few pieces of raw ASGI the probe needs: types, a JSON answer, query parameters.

The probe runs inside any ASGI app (FastAPI, Starlette, Quart, a bare callable), so it
brings no framework of its own.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BadQuery(ValueError):
    """A query parameter that cannot be used: answered 422 with this sentence."""


async def send_json(send: Send, status: int, body: Any) -> None:
    """One complete JSON response."""
    payload = json.dumps(body, allow_nan=False, separators=(",", ":")).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def query_of(scope: Scope) -> dict[str, str]:
    """The query string's parameters (the last value of each)."""
    raw = scope.get("query_string", b"").decode("latin-1")
    return {key: values[-1] for key, values in parse_qs(raw, keep_blank_values=True).items()}


def number(query: dict[str, str], name: str, default: float, low: float, high: float) -> float:
    """``query[name]`` as a number within [low, high], else :class:`BadQuery`."""
    text = query.get(name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        raise BadQuery(f"{name} must be a number, not {text!r}") from None
    if not low <= value <= high:
        raise BadQuery(f"{name} must be between {low:g} and {high:g}, not {value:g}")
    return value


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of a request header (``name`` in lower case)."""
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None
