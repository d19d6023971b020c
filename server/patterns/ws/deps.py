"""What the WebSocket routes share: the state the router's lifespan opens."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends

from server.deps import provided
from server.patterns.ws.limits import WsLimits
from server.patterns.ws.manager import ConnectionManager
from server.patterns.ws.tokens import TokenSigner


@dataclass
class WsState:
    """Everything the WebSocket routes share, opened by the router's lifespan."""

    limits: WsLimits
    manager: ConnectionManager
    signer: TokenSigner
    sockets: Counter[str] = field(default_factory=Counter)


WsStateDep = Annotated[WsState, Depends(provided(WsState))]
