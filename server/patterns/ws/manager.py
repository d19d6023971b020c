"""The chat connection manager behind ``/ws/chat/{room}``: broadcast that no client can stall.

Done right (the default):

- every member has a bounded outbox (``asyncio.Queue``, capped in messages and in bytes)
  and one writer task that sends from it with ``asyncio.timeout(send_timeout_s)`` around
  each send;
- :meth:`ConnectionManager.broadcast` only puts into outboxes, over a snapshot of the
  members: it never awaits a client's socket, so one slow reader costs the room nothing;
- a full outbox or a send that times out drops that member (close code 1008, "policy
  violation", with the reason), and removal is idempotent, whoever gets there first (the
  writer, a broadcast, the handler's ``finally``);
- rooms, members per room and chat clients overall are capped.

The pitfall (blocking mode, read at every broadcast) is the async-patterns guide's
``for connection in active: await connection.send_text(message)``: the sender's handler
waits for each member's socket in turn, so a member that stops reading stops the room.

Memory bound: outboxes hold at most ``queue_max_bytes`` per member; one encoded message is
shared by every outbox it is in (the count is per member, the string is not copied), so
the real figure is lower than ``queued_bytes`` says.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from server.patterns.ws.limits import GOING_AWAY, TRY_AGAIN_LATER, Refused
from server.patterns.ws.limits import WsLimits as WsLimits
from server.patterns.ws.rooms import Counters, Drop, Member, Room

log = logging.getLogger("fastasync.ws")

#: presence notices (joins/leaves) are batched per room for this long: a room filling with
#: 1,000 bots would otherwise send a million notices
PRESENCE_EVERY_S = 0.1
#: names listed in one presence notice (the counts are always complete)
PRESENCE_NAMES = 20
#: drops remembered for /ws/stats
RECENT_DROPS = 20


class ConnectionManager:
    """Rooms of members; broadcast right (outboxes) or naive (the guide's loop)."""

    def __init__(self, limits: WsLimits, naive: Callable[[], bool] = lambda: False) -> None:
        self.limits = limits
        self._naive = naive
        self.rooms: dict[str, Room] = {}
        self.counters = Counters()
        self.recent_drops: deque[Drop] = deque(maxlen=RECENT_DROPS)
        self._ids = itertools.count(1)
        self._members = 0
        #: naive broadcasts in progress: loop time each started (for "waiting for 4.2 s")
        self._naive_started: dict[int, float] = {}
        self._closed = False

    # -- membership ----------------------------------------------------------------------

    def join(self, room_name: str, name: str, websocket: WebSocket) -> Member:
        """Add a member and start its writer, or raise :class:`Refused` at a limit."""
        limits = self.limits
        if self._closed:
            raise Refused(GOING_AWAY, "server shutting down")
        if self._members >= limits.max_chat_clients:
            raise Refused(TRY_AGAIN_LATER, f"too many chat clients ({limits.max_chat_clients})")
        room = self.rooms.get(room_name)
        if room is None:
            if len(self.rooms) >= limits.max_rooms:
                raise Refused(TRY_AGAIN_LATER, f"too many rooms ({limits.max_rooms})")
            room = self.rooms[room_name] = Room(room_name)
        if len(room.members) >= limits.max_room_members:
            raise Refused(
                TRY_AGAIN_LATER, f"room {room_name!r} is full ({limits.max_room_members})"
            )
        member = Member(
            id=next(self._ids),
            name=name,
            room=room_name,
            websocket=websocket,
            outbox=asyncio.Queue(maxsize=limits.queue_max_messages),
        )
        room.members[member.id] = member
        self._members += 1
        member.writer = asyncio.create_task(
            self._write_loop(member), name=f"ws-writer-{room_name}-{member.id}"
        )
        self._announce(room, joined=name)
        return member

    def drop(self, member: Member, reason: str) -> None:
        """Remove a member the server gave up on and end its handler's read loop."""
        if member.removed:
            return
        if self._closed:
            self._end(member, reason)
            return
        stuck = None
        if member.sending_since is not None:
            stuck = asyncio.get_running_loop().time() - member.sending_since
        self.counters.drops += 1
        self.counters.drop_reasons[reason.split(":")[0]] += 1
        self.recent_drops.append(Drop(member.name, member.room, reason, time.time(), stuck))
        log.warning("ws chat %s: dropped %s: %s", member.room, member.name, reason)
        self._end(member, reason)

    def _end(self, member: Member, reason: str) -> None:
        member.drop_reason = reason
        self._remove(member, f"dropped: {reason}")
        if member.read_scope is not None and not member.read_scope.expired():
            # Expire the handler's read deadline now: its pending receive() ends with
            # TimeoutError, and its finally does the rest.
            member.read_scope.reschedule(asyncio.get_running_loop().time())

    async def leave(self, member: Member) -> None:
        """The handler's ``finally``: remove (if nobody did), stop and await the writer."""
        self._remove(member, "left")
        writer = member.writer
        if writer is not None and not writer.done():
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        # Release what the outbox held: the member object may outlive this call.
        while not member.outbox.empty():
            member.outbox.get_nowait()
        member.queued_bytes = 0

    def _remove(self, member: Member, why: str) -> None:
        """Idempotent: the first caller removes, every later one is a no-op."""
        if member.removed:
            return
        member.removed = True
        self._members -= 1
        room = self.rooms.get(member.room)
        if room is None:
            return
        room.members.pop(member.id, None)
        if room.members:
            self._announce(room, left=member.name)
        else:
            if room.presence_timer is not None:
                room.presence_timer.cancel()
            del self.rooms[room.name]

    # -- broadcast -----------------------------------------------------------------------

    async def broadcast(self, room_name: str, payload: dict[str, Any]) -> None:
        """Send ``payload`` to every member of the room, right or naive per blocking mode."""
        room = self.rooms.get(room_name)
        if room is None:
            return
        room.seq += 1
        text = json.dumps({**payload, "seq": room.seq}, separators=(",", ":"))
        self.counters.broadcasts += 1
        if self._naive():
            await self.naive_broadcast(room, text)
        else:
            self.enqueue_all(room, text)

    def enqueue_all(self, room: Room, text: str) -> None:
        """Right: put into each outbox, over a snapshot. Never waits; a full outbox drops."""
        for member in list(room.members.values()):
            self._put(member, text)

    def tell(self, member: Member, payload: dict[str, Any]) -> None:
        """Send to one member through its outbox (a welcome, an error frame)."""
        if not member.removed:
            self._put(member, json.dumps(payload, separators=(",", ":")))

    def _put(self, member: Member, text: str) -> None:
        size = len(text)
        if member.queued_bytes + size > self.limits.queue_max_bytes or member.outbox.full():
            self.drop(
                member,
                f"outbox full: {member.outbox.qsize()} messages, {member.queued_bytes} bytes "
                "waiting (a slow reader)",
            )
            return
        member.outbox.put_nowait(text)
        member.queued_bytes += size
        self.counters.enqueued += 1

    async def naive_broadcast(self, room: Room, text: str) -> None:
        """The pitfall, as the guide writes it: await each member's socket in turn.

        Two changes from the guide, both so that what shows is the stall and nothing else:
        it loops over a copy (a join during the loop would otherwise raise), and a send
        to a member that has just gone is skipped instead of ending the sender's handler.
        """
        key = id(text)
        self._naive_started[key] = asyncio.get_running_loop().time()
        try:
            for connection in list(room.members.values()):
                try:
                    await connection.websocket.send_text(text)
                except (WebSocketDisconnect, RuntimeError, OSError):
                    continue
                self.counters.delivered += 1
        finally:
            started = self._naive_started.pop(key)
            waited = asyncio.get_running_loop().time() - started
            self.counters.naive_longest_s = max(self.counters.naive_longest_s, waited)

    async def _write_loop(self, member: Member) -> None:
        """One member's writer: drain the outbox, each send bounded by the send timeout."""
        loop = asyncio.get_running_loop()
        timeout = self.limits.send_timeout_s
        while True:
            text = await member.outbox.get()
            member.queued_bytes -= len(text)
            member.sending_since = loop.time()
            try:
                async with asyncio.timeout(timeout):
                    await member.websocket.send_text(text)
            except TimeoutError:
                self.drop(member, f"send timeout: one send waited over {timeout:g} s")
                return
            except (WebSocketDisconnect, RuntimeError, OSError):
                # The socket is gone; the handler's receive() sees the disconnect.
                return
            finally:
                member.sending_since = None
            member.sent += 1
            self.counters.delivered += 1

    # -- presence ------------------------------------------------------------------------

    def _announce(self, room: Room, joined: str | None = None, left: str | None = None) -> None:
        """Batch a join or leave into the room's next presence notice."""
        if joined is not None:
            room.joined.append(joined)
        if left is not None:
            room.left.append(left)
        if room.presence_timer is None:
            loop = asyncio.get_running_loop()
            room.presence_timer = loop.call_later(PRESENCE_EVERY_S, self._send_presence, room)

    def _send_presence(self, room: Room) -> None:
        room.presence_timer = None
        if self.rooms.get(room.name) is not room:
            return
        joined, left = room.joined, room.left
        room.joined, room.left = [], []
        notice = {
            "type": "presence",
            "room": room.name,
            "joined": joined[:PRESENCE_NAMES],
            "joined_count": len(joined),
            "left": left[:PRESENCE_NAMES],
            "left_count": len(left),
            "members": len(room.members),
        }
        room.seq += 1
        # Notices always go through the outboxes: a timer callback cannot await.
        self.enqueue_all(room, json.dumps({**notice, "seq": room.seq}, separators=(",", ":")))

    # -- reading -------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once shutdown has begun."""
        return self._closed

    @property
    def member_count(self) -> int:
        return self._members

    def writer_tasks(self) -> list[asyncio.Task[None]]:
        """Writers still running."""
        return [
            m.writer
            for room in self.rooms.values()
            for m in room.members.values()
            if m.writer is not None and not m.writer.done()
        ]

    def stats(self) -> dict[str, Any]:
        """Members, writers, outbox depths, drops and traffic, for /ws/stats."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        rooms = {}
        total_bytes = 0
        deepest = 0
        for room in self.rooms.values():
            members = list(room.members.values())
            queued = sum(m.queued_bytes for m in members)
            depth = max((m.outbox.qsize() for m in members), default=0)
            stuck = max(
                (now - m.sending_since for m in members if m.sending_since is not None),
                default=0.0,
            )
            total_bytes += queued
            deepest = max(deepest, depth)
            rooms[room.name] = {
                "members": len(members),
                "queued_bytes": queued,
                "max_queue_depth": depth,
                "longest_send_s": round(stuck, 3),
            }
        counters = self.counters
        waiting = max((now - t for t in self._naive_started.values()), default=0.0)
        return {
            "mode": "naive" if self._naive() else "right",
            "members": self._members,
            "writer_tasks": len(self.writer_tasks()),
            "rooms": rooms,
            "queued_bytes": total_bytes,
            "max_queue_depth": deepest,
            "messages_in": counters.messages_in,
            "broadcasts": counters.broadcasts,
            "enqueued": counters.enqueued,
            "delivered": counters.delivered,
            "drops": counters.drops,
            "drop_reasons": dict(counters.drop_reasons),
            "recent_drops": [
                {
                    "name": d.name,
                    "room": d.room,
                    "reason": d.reason,
                    "at": d.at,
                    "stuck_s": None if d.stuck_s is None else round(d.stuck_s, 3),
                }
                for d in self.recent_drops
            ],
            "naive_waiting_s": round(waiting, 3),
            "naive_longest_s": round(counters.naive_longest_s, 3),
            "limits": {
                "send_timeout_s": self.limits.send_timeout_s,
                "queue_max_messages": self.limits.queue_max_messages,
                "queue_max_bytes": self.limits.queue_max_bytes,
                "max_queued_bytes": self.limits.max_queued_bytes,
                "max_message_chars": self.limits.max_message_chars,
                "max_rooms": self.limits.max_rooms,
                "max_room_members": self.limits.max_room_members,
                "max_chat_clients": self.limits.max_chat_clients,
            },
        }

    async def close(self) -> None:
        """Shutdown: refuse new members, end every handler's read loop, await the writers."""
        self._closed = True
        members = [m for room in self.rooms.values() for m in room.members.values()]
        for member in members:
            self.drop(member, "server shutting down")
        for member in members:
            await self.leave(member)
