"""The WebSocket pane's Bots tab without the widgets: the swarm, the stalled client, the
server's figures, and the view the figures block draws from them.

The pane runs :meth:`BotRoom.run` and :meth:`BotRoom.add_stalled` as its workers (so they
end with it) and calls :meth:`BotRoom.view` at the figures' pace; nothing here is done per
message.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx

from explorer.patterns.ws.bots import BotSwarm, StalledClient, ws_url
from explorer.patterns.ws.figures import BotFiguresView, RateMeter

BOTS_ROOM = "bots"
STALLED_NAME = "stalled"
#: how often the server's figures (``GET /ws/stats``) are read while the bots run
STATS_EVERY_S = 0.5
#: delivered p50/p99 are over this many recent deliveries (sorting 20,000 at 4 Hz would
#: cost the loop about 5 ms a time)
LATENCY_WINDOW = 5000


class BotRoom:
    """The bots' room as the pane sees it: what runs in it and the figures it shows."""

    def __init__(self, http: httpx.AsyncClient, say: Callable[[str], None]) -> None:
        self.http = http
        self.say = say
        self.swarm: BotSwarm | None = None
        self.stalled: StalledClient | None = None
        self.connecting = False
        #: the last ``GET /ws/stats``
        self.server_stats: dict[str, Any] = {}
        #: when the stalled client joined (wall clock, like the server's drop times)
        self._stalled_since = 0.0
        self._drop_told = False
        self._closed_told = 0
        self._rates = RateMeter()

    async def run(self, n: int, rate: int, size: int) -> None:
        """Connect ``n`` bots, chat at ``rate``, read the server's figures, until cancelled."""
        swarm = BotSwarm(str(self.http.base_url), BOTS_ROOM)
        self.swarm = swarm
        self._closed_told = 0
        self.connecting = True
        try:
            self.say(f"bots: connecting {n} to /ws/chat/{BOTS_ROOM}")
            opened = await swarm.connect(n)
            self.connecting = False
            self.say(f"bots: {opened} connected, chatting at {rate} msg/s of {size} chars")
            swarm.start_chatting(rate, size)
            while True:
                await self._fetch_stats()
                await asyncio.sleep(STATS_EVERY_S)
        finally:
            self.connecting = False
            # Cancelled (Stop, a new Start, the pane or the app closing): close every bot
            # and await every task before the worker ends.
            await swarm.close()
            if self.swarm is swarm:
                self.swarm = None
            self.say("bots: all closed")

    async def _fetch_stats(self) -> None:
        try:
            response = await self.http.get("/ws/stats")
            self.server_stats = response.json()
        except (httpx.HTTPError, ValueError):
            pass  # the figures keep their last server values

    async def add_stalled(self) -> None:
        """Join the bots' room with a client that never reads."""
        path = f"/ws/chat/{BOTS_ROOM}?name={STALLED_NAME}"
        client = StalledClient(ws_url(str(self.http.base_url), path))
        try:
            await client.connect()
        except (OSError, TimeoutError) as exc:
            self.say(f"stalled client ! {type(exc).__name__}: {exc}")
            return
        self.remove_stalled(quietly=True)
        self.stalled = client
        self._stalled_since = time.time()
        self._drop_told = False
        self.say("stalled client: joined, and will never read")

    def remove_stalled(self, *, quietly: bool = False) -> None:
        """Pull the stalled client's plug (no close frame: the server sees a reset)."""
        if self.stalled is not None:
            self.stalled.close()
            self.stalled = None
            if not quietly:
                self.say("stalled client: socket closed (no close frame)")

    def _stalled_dropped(self, drops: list[dict[str, Any]]) -> bool:
        """The server dropped our stalled client (the right form): it is no longer in the
        room, though its socket is still open here. Said once in the frame log."""
        if self.stalled is None:
            return False
        mine = [d for d in drops if d["name"] == STALLED_NAME and d["at"] >= self._stalled_since]
        if mine and not self._drop_told:
            self._drop_told = True
            why = str(mine[-1]["reason"]).split(":")[0]
            self.say(f"stalled client: dropped by the server ({why})")
        return bool(mine)

    def _tell_closes(self, swarm: BotSwarm) -> None:
        """Bots the server closed since the last call, with the commonest reason (a stuck
        naive room loses its members to uvicorn's keepalive: 1011 after 20 s + 20 s)."""
        closed = swarm.figures.closed_by_server
        if closed > self._closed_told:
            reason = swarm.figures.close_reasons.most_common(1)[0][0]
            self.say(f"bots: {closed - self._closed_told} closed by the server ({reason})")
            self._closed_told = closed

    def view(self, naive: bool, before: BotFiguresView) -> BotFiguresView:
        """The figures now: rates since the last call, delivered latencies, the oldest
        undelivered message (growing if older than in ``before``), the server's figures."""
        swarm, stats = self.swarm, self.server_stats
        mode = "naive" if naive else "right"
        drops = stats.get("recent_drops") or []
        dropped = self._stalled_dropped(drops)
        stalled = self.stalled is not None and not dropped
        stalled_for = time.time() - self._stalled_since if stalled else 0.0
        if swarm is None:
            self._rates.reset()
            return BotFiguresView(
                mode=mode, stalled=stalled, stalled_dropped=dropped, stalled_for_s=stalled_for
            )
        self._tell_closes(swarm)
        figures = swarm.figures
        in_rate, out_rate = self._rates.rates(time.perf_counter(), figures.sent, figures.received)
        p50, p99 = swarm.latency_ms(last=LATENCY_WINDOW)
        oldest = swarm.oldest_undelivered_s() if figures.connected else None
        earlier = before.oldest_undelivered_s
        return BotFiguresView(
            target=figures.target,
            connected=figures.connected,
            connecting=self.connecting,
            msgs_in_per_s=in_rate,
            msgs_out_per_s=out_rate,
            p50_ms=p50,
            p99_ms=p99,
            oldest_undelivered_s=oldest,
            undelivered_growing=oldest is not None and earlier is not None and oldest > earlier,
            drops=int(stats.get("drops", 0)),
            closed_by_server=figures.closed_by_server,
            stalled=stalled,
            stalled_dropped=dropped,
            stalled_for_s=stalled_for,
            mode=mode,
            queued_kib=stats.get("queued_bytes", 0) / 1024,
            naive_waiting_s=float(stats.get("naive_waiting_s", 0.0)),
            last_drop=f"{drops[-1]['name']}: {drops[-1]['reason']}" if drops else "",
        )
