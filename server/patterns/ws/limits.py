"""The WebSocket patterns' bounds, and the RFC 6455 close codes that say one was hit."""

from __future__ import annotations

from dataclasses import dataclass

#: RFC 6455 close codes this server uses (each close also carries a reason)
POLICY_VIOLATION = 1008  # bad token, bad Origin, bad room name, slow consumer dropped
UNSUPPORTED_DATA = 1003  # binary frame on a text socket
MESSAGE_TOO_BIG = 1009  # over the app's own limit (uvicorn's ws_max_size closes earlier)
TRY_AGAIN_LATER = 1013  # a room, client or room-count limit was reached
GOING_AWAY = 1001  # server shutting down
#: how long a close may spend telling the client why (a stalled socket never takes it)
CLOSE_WAIT_S = 0.5


@dataclass(frozen=True)
class WsLimits:
    """Bounds of the WebSocket patterns. Tests and the benchmark may pass their own."""

    #: a send to one client longer than this drops the client
    send_timeout_s: float = 2.0
    #: per-member outbox: messages and bytes (whichever fills first drops the member)
    queue_max_messages: int = 512
    queue_max_bytes: int = 2 * 1024 * 1024
    #: app-level limit on one incoming text message (uvicorn's ws_max_size is 16 MiB)
    max_message_chars: int = 64 * 1024
    max_rooms: int = 64
    max_room_members: int = 1100
    max_chat_clients: int = 2200
    #: echo, JSON and secure sockets together
    max_other_sockets: int = 256
    #: Origins allowed besides the server's own (http://127.0.0.1:<port>, localhost)
    extra_origins: frozenset[str] = frozenset()

    @property
    def max_queued_bytes(self) -> int:
        """The most every outbox together can hold: the manager's memory bound."""
        return self.queue_max_bytes * self.max_chat_clients


class Refused(Exception):
    """A join was refused; ``code`` and ``reason`` go into the close frame."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
