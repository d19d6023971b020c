"""The chat manager's records: its members, its rooms, the members it dropped, its counts."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field

from starlette.websockets import WebSocket


@dataclass(eq=False)
class Member:
    """One chat connection: its socket, its outbox and its writer."""

    id: int
    name: str
    room: str
    websocket: WebSocket
    outbox: asyncio.Queue[str]
    queued_bytes: int = 0
    writer: asyncio.Task[None] | None = None
    #: the handler's read deadline: a drop moves it to now, which ends the read loop
    read_scope: asyncio.Timeout | None = None
    #: set once, by whoever removes the member first
    drop_reason: str | None = None
    removed: bool = False
    #: loop time the current send started (None when not sending)
    sending_since: float | None = None
    sent: int = 0


@dataclass(frozen=True)
class Drop:
    """A member the server dropped, and why."""

    name: str
    room: str
    reason: str
    at: float
    #: how long its last send had been waiting when it was dropped
    stuck_s: float | None


@dataclass(eq=False)
class Room:
    """A room's members (in join order) and its pending presence notice."""

    name: str
    members: dict[int, Member] = field(default_factory=dict)
    joined: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)
    presence_timer: asyncio.TimerHandle | None = None
    seq: int = 0


@dataclass
class Counters:
    """Monotonic figures for /ws/stats and the pane."""

    messages_in: int = 0
    broadcasts: int = 0
    enqueued: int = 0
    delivered: int = 0
    drops: int = 0
    drop_reasons: Counter[str] = field(default_factory=Counter)
    #: naive mode: the broadcast that has waited longest so far (seconds)
    naive_longest_s: float = 0.0
