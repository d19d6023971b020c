"""The WebSocket pattern's HTTP bodies: asking for a token, and the token."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from server.patterns.ws.tokens import SUBPROTOCOL

#: who may ask for a token, or chat: 1 to 32 letters, digits, '_', '.', '-'
NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,32}$"


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
