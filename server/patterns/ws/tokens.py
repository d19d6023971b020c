"""Short-lived signed tokens for ``/ws/secure``, and a log filter that keeps them out of logs.

A token is ``wst1.<payload>.<signature>``: the payload is base64url JSON
``{"sub": name, "exp": unix seconds}`` and the signature is HMAC-SHA256 over
``wst1.<payload>`` with a per-server random secret (made at startup, never stored, so a
restart invalidates every token). Checking compares signatures in constant time
(``hmac.compare_digest``) before reading the payload.

Browsers cannot set ``Authorization`` on a WebSocket, and a query string lands in
uvicorn's access log and in its "WebSocket /path?query [accepted]" line. So the client
offers the token as a subprotocol, ``bearer.<token>``, next to ``fastasync.v1`` (the one
the server accepts), the way Kubernetes does. Request headers reach a log only at DEBUG,
when the websockets protocol under uvicorn dumps them; :class:`TokenRedactor` rewrites any
token-shaped text in a record before a handler sees it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

PREFIX = "wst1"
#: the subprotocol a client offers with its token, and the one the server accepts
SUBPROTOCOL = "fastasync.v1"
BEARER = "bearer."
#: longest token the server will look at (a name of 32 characters makes about 120)
MAX_TOKEN_CHARS = 512
#: anything shaped like a token, wherever it appears in a log message
TOKEN_PATTERN = re.compile(rf"{PREFIX}\.[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]*)?")
REDACTED = f"{PREFIX}.<redacted>"
#: loggers that may see request lines or headers: uvicorn's (the websockets protocol under
#: uvicorn logs through "uvicorn.error") and the websockets library's own. A logger's
#: filters see only records logged on it, not its children's: each is named.
WATCHED_LOGGERS = (
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "websockets",
    "websockets.client",
    "websockets.server",
)


class TokenError(Exception):
    """Why a token was refused, in words safe to send to the client and to log."""


@dataclass(frozen=True)
class Claims:
    """What a valid token says."""

    name: str
    expires_at: float


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    """Issues and checks tokens with one secret. ``clock`` is wall time (tests move it)."""

    def __init__(self, secret: bytes | None = None, clock: Callable[[], float] = time.time):
        self._secret = secret if secret is not None else secrets.token_bytes(32)
        self._clock = clock

    def _sign(self, signed_part: str) -> str:
        digest = hmac.new(self._secret, signed_part.encode("ascii"), hashlib.sha256).digest()
        return _b64(digest)

    def issue(self, name: str, ttl_s: float) -> tuple[str, float]:
        """A token for ``name`` valid ``ttl_s`` seconds from now (negative: already expired)."""
        expires_at = round(self._clock() + ttl_s, 3)
        payload = _b64(json.dumps({"sub": name, "exp": expires_at}, separators=(",", ":")).encode())
        signed_part = f"{PREFIX}.{payload}"
        return f"{signed_part}.{self._sign(signed_part)}", expires_at

    def verify(self, token: str | None) -> Claims:
        """The token's claims, or :class:`TokenError` saying what is wrong with it."""
        if not token:
            raise TokenError("token missing: offer the subprotocol 'bearer.<token>'")
        if len(token) > MAX_TOKEN_CHARS:
            raise TokenError("token malformed: too long")
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != PREFIX:
            raise TokenError("token malformed: expected wst1.<payload>.<signature>")
        signed_part = f"{parts[0]}.{parts[1]}"
        # Constant time: how much of a forged signature matches must not show in timing.
        if not hmac.compare_digest(self._sign(signed_part), parts[2]):
            raise TokenError("token refused: bad signature")
        try:
            claims = json.loads(_unb64(parts[1]))
            name, expires_at = claims["sub"], float(claims["exp"])
        except (ValueError, KeyError, TypeError, binascii.Error):
            # Only reachable with the server's own secret: a bug, not an attack.
            raise TokenError("token malformed: unreadable payload") from None
        if not isinstance(name, str):
            raise TokenError("token malformed: unreadable payload")
        now = self._clock()
        if now >= expires_at:
            raise TokenError(f"token expired {now - expires_at:.1f} s ago")
        return Claims(name=name, expires_at=expires_at)


def token_from_subprotocols(offered: list[str]) -> str | None:
    """The token a client offered as ``bearer.<token>``, if any."""
    for protocol in offered:
        if protocol.startswith(BEARER):
            return protocol[len(BEARER) :]
    return None


def redact(text: str) -> str:
    """``text`` with every token-shaped substring replaced."""
    return TOKEN_PATTERN.sub(REDACTED, text)


class TokenRedactor(logging.Filter):
    """Rewrites a record whose message contains a token; lets every record through."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken record is the logging module's to report, not ours
            return True
        if PREFIX in message:
            record.msg, record.args = redact(message), None
        return True


class RedactionInstalled:
    """Installs one :class:`TokenRedactor` on the watched loggers; ``remove`` undoes it."""

    def __init__(self) -> None:
        self.filter = TokenRedactor()
        self.loggers = [logging.getLogger(name) for name in WATCHED_LOGGERS]
        for logger in self.loggers:
            logger.addFilter(self.filter)

    def remove(self) -> None:
        for logger in self.loggers:
            logger.removeFilter(self.filter)
