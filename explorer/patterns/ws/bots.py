"""Chat bots and a stalled client: real ``websockets`` connections over loopback.

Used by the WebSocket pane (in the TUI's own loop: that is the point), by its tests and by
``explorer.patterns.ws.bench``. Widgets never do I/O; this module does, and only this module.

- :class:`BotSwarm`: N bot connections to one room, one reader task per bot (held in a
  set) and at most one sender task; live figures kept as counters, read by whoever draws
  them at its own pace. :meth:`BotSwarm.close` closes every connection and awaits every
  task, whatever state they are in.
- :class:`StalledClient`: completes the WebSocket handshake (built by the websockets
  library's sans-I/O client) on a raw socket with a small receive buffer, then never reads
  again: the most deterministic slow consumer there is.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import socket
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Response
from websockets.uri import parse_uri

from explorer.patterns.ws.delivery import Undelivered
from fastasync_probe.monitor.records import percentile

#: connections opened at once while a swarm connects (each is a real handshake)
CONNECT_BATCH = 50
CONNECT_TIMEOUT_S = 10.0
#: a bot's close handshake may take this long before its socket is dropped
CLOSE_TIMEOUT_S = 1.0
#: latency samples kept (the figures are over the most recent ones)
LATENCY_SAMPLES = 20_000
#: the sender's tick: a rate is met by sending what is due each tick
SEND_TICK_S = 0.01


def ws_url(http_url: str, path: str) -> str:
    """``http://host:port`` + ``/ws/...`` as a ``ws://`` URL."""
    parts = urlsplit(http_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return f"{scheme}://{parts.netloc}{path}"


@dataclass
class Bot:
    """One bot: its connection and what it has received."""

    name: str
    conn: ClientConnection
    received: int = 0
    last_seq: int = 0
    closed_code: int | None = None
    closed_reason: str = ""


@dataclass
class SwarmFigures:
    """Counters the pane turns into rates; updated per message, read at <= 4 Hz."""

    target: int = 0
    connected: int = 0
    connect_failed: int = 0
    sent: int = 0
    received: int = 0
    #: messages received with a lower room sequence number than one seen before
    out_of_order: int = 0
    closed_by_server: int = 0
    close_reasons: Counter[str] = field(default_factory=Counter)
    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_SAMPLES))

    def keep_every_latency(self) -> None:
        """Keep all samples, not the most recent ones (a benchmark wants the whole run)."""
        self.latencies_ms = deque(self.latencies_ms)


class BotSwarm:
    """N bots in one room, chatting at a total rate; close() leaves nothing behind."""

    def __init__(self, base_url: str, room: str, *, prefix: str = "bot") -> None:
        self.url = ws_url(base_url, f"/ws/chat/{room}")
        self.room = room
        self.prefix = prefix
        self.bots: list[Bot] = []
        self.figures = SwarmFigures()
        #: which messages each bot still waits for (the oldest undelivered message's age)
        self.undelivered = Undelivered()
        #: every task this swarm starts, until it ends (the loop holds tasks only weakly)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sender: asyncio.Task[None] | None = None
        self._closing = False

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- connecting ----------------------------------------------------------------------

    async def connect(self, count: int, progress: Callable[[int], None] | None = None) -> int:
        """Open ``count`` more bots, ``CONNECT_BATCH`` handshakes at a time; how many opened."""
        self.figures.target += count
        start = len(self.bots)
        opened = 0
        for first in range(start, start + count, CONNECT_BATCH):
            if self._closing:
                break
            last = min(first + CONNECT_BATCH, start + count)
            results = await asyncio.gather(
                *(self._open(f"{self.prefix}-{i}") for i in range(first, last)),
                return_exceptions=True,
            )
            for result in results:
                if isinstance(result, BaseException):
                    if isinstance(result, asyncio.CancelledError):
                        raise result
                    self.figures.connect_failed += 1
                else:
                    opened += 1
            if progress is not None:
                progress(self.figures.connected)
        return opened

    async def _open(self, name: str) -> Bot:
        conn = await connect(
            f"{self.url}?name={name}",
            open_timeout=CONNECT_TIMEOUT_S,
            close_timeout=CLOSE_TIMEOUT_S,
            ping_interval=None,
            max_size=1024 * 1024,
        )
        if self._closing:
            await conn.close()
            raise ConnectionError("swarm closing")
        bot = Bot(name, conn)
        self.bots.append(bot)
        self.undelivered.join(name)
        self.figures.connected += 1
        self._spawn(self._read(bot), f"ws-bot-reader-{name}")
        return bot

    async def _read(self, bot: Bot) -> None:
        figures = self.figures
        try:
            async for raw in bot.conn:
                now = time.perf_counter()
                message = json.loads(raw)
                if message.get("type") != "message":
                    continue
                seq = message.get("seq", 0)
                if seq <= bot.last_seq:
                    figures.out_of_order += 1
                bot.last_seq = seq
                bot.received += 1
                figures.received += 1
                sent_at = message.get("sent_at")
                if isinstance(sent_at, float):
                    figures.latencies_ms.append((now - sent_at) * 1000)
                    self.undelivered.received(bot.name, sent_at)
        except ConnectionClosed:
            pass
        finally:
            figures.connected -= 1
            self.undelivered.leave(bot.name)
            rcvd = bot.conn.protocol.close_rcvd
            if rcvd is not None and not self._closing:
                bot.closed_code, bot.closed_reason = rcvd.code, rcvd.reason
                figures.closed_by_server += 1
                figures.close_reasons[f"{rcvd.code} {rcvd.reason}"[:80]] += 1

    # -- chatting ------------------------------------------------------------------------

    def live_bots(self) -> list[Bot]:
        return [b for b in self.bots if b.closed_code is None and b.conn.close_code is None]

    async def send_one(self, bot: Bot, index: int, size: int) -> None:
        """One chat message of about ``size`` characters, stamped for latency."""
        head = f"{index:08d} "
        text = head + "x" * max(0, size - len(head))
        # Stamped before the send: from here on every bot waits for it.
        sent_at, stamp_index = self.undelivered.stamp()
        payload = {"type": "message", "text": text, "sent_at": sent_at}
        try:
            await bot.conn.send(json.dumps(payload))
        except BaseException:
            self.undelivered.failed(stamp_index)
            raise
        self.figures.sent += 1

    def start_chatting(self, rate: float, size: int) -> None:
        """Send ``rate`` messages per second in total, round-robin over the bots."""
        self.stop_chatting()
        if rate > 0:
            self._sender = self._spawn(self._chat(rate, size), "ws-bot-sender")

    def stop_chatting(self) -> None:
        if self._sender is not None:
            self._sender.cancel()
            self._sender = None

    async def _chat(self, rate: float, size: int) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        sent = 0
        turn = 0
        while True:
            due = int((loop.time() - started) * rate) - sent
            bots = self.live_bots()
            for _ in range(min(due, 1000)):
                if not bots:
                    break
                bot = bots[turn % len(bots)]
                turn += 1
                with contextlib.suppress(ConnectionClosed):
                    # In blocking mode this await is where the room's stall reaches the
                    # bots: the server stops reading the sender while it waits on a socket.
                    await self.send_one(bot, sent, size)
                sent += 1
            await asyncio.sleep(SEND_TICK_S)

    async def send_burst(
        self, count: int, size: int, *, window: int, sender: Bot | None = None
    ) -> None:
        """``count`` messages from one bot, never more than ``window`` ahead of the
        slowest bot still connected (in-process readers are slow; the server's outboxes
        are bounded and a reader that falls that far behind is dropped as it should be)."""
        bot = sender or self.bots[0]
        base = min((b.received for b in self.live_bots()), default=0)
        for index in range(count):
            while True:
                live = self.live_bots()
                slowest = min((b.received for b in live), default=base + index)
                if base + index - slowest < window:
                    break
                await asyncio.sleep(0.002)
            await self.send_one(bot, index, size)

    # -- figures -------------------------------------------------------------------------

    def latency_ms(self, last: int | None = None) -> tuple[float | None, float | None]:
        """p50 and p99 of the recent delivery latencies (of the messages that arrived);
        ``last``: of the most recent ``last`` samples only (a display's cheaper window)."""
        kept = self.figures.latencies_ms
        recent = (
            list(kept)
            if last is None
            else list(itertools.islice(kept, max(0, len(kept) - last), None))
        )
        if not recent:
            return None, None
        samples = sorted(recent)
        return percentile(samples, 50), percentile(samples, 99)

    def oldest_undelivered_s(self) -> float:
        """Age of the oldest message some connected bot still waits for (0.0: none)."""
        return self.undelivered.oldest_age_s(b.name for b in self.live_bots())

    # -- closing -------------------------------------------------------------------------

    async def close(self) -> None:
        """Close every bot (close handshake, bounded), then cancel and await every task."""
        self._closing = True
        self.stop_chatting()
        bots, self.bots = self.bots, []
        if bots:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CLOSE_TIMEOUT_S * 2):
                    await asyncio.gather(*(b.conn.close() for b in bots), return_exceptions=True)
            for bot in bots:
                if bot.conn.transport is not None and not bot.conn.transport.is_closing():
                    bot.conn.transport.abort()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._closing = False


class StalledClient:
    """Joins with a real handshake, then never reads a byte (its receive buffer is tiny)."""

    def __init__(self, url: str, rcvbuf: int = 4096) -> None:
        self.url = url
        self.rcvbuf = rcvbuf
        self.sock: socket.socket | None = None

    async def connect(self) -> None:
        """Handshake (the websockets sans-I/O client builds and checks it); stop reading."""
        loop = asyncio.get_running_loop()
        uri = parse_uri(self.url)
        protocol = ClientProtocol(uri)
        protocol.send_request(protocol.connect())
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            # Before connect, so the advertised window is small from the first segment.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
            sock.setblocking(False)
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                await loop.sock_connect(sock, (uri.host, uri.port))
                for data in protocol.data_to_send():
                    if data:
                        await loop.sock_sendall(sock, data)
                while not any(isinstance(e, Response) for e in protocol.events_received()):
                    chunk = await loop.sock_recv(sock, 1024)
                    if not chunk:
                        raise ConnectionError("closed during the handshake")
                    protocol.receive_data(chunk)
            if protocol.handshake_exc is not None:
                raise ConnectionError(f"handshake refused: {protocol.handshake_exc}")
        except BaseException:
            sock.close()
            raise
        self.sock = sock

    @property
    def connected(self) -> bool:
        return self.sock is not None

    def close(self) -> None:
        """Pull the plug: no close frame (the server sees an abrupt disconnect)."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None
