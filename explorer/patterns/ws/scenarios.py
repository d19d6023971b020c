"""The WebSocket pattern's scenario: a chat room of bots, and one member that never reads.

The bots are real ``websockets`` connections (:class:`~explorer.patterns.ws.bots.BotSwarm`, the
WebSocket pane's own bots); the member that never reads is
:class:`~explorer.patterns.ws.bots.StalledClient`: a real handshake, then a 4 KiB receive buffer
nobody empties. One bot sends a burst of 4 KiB messages; every bot counts what reaches it.

Right, the outboxes and the send timeout drop the member that never reads and the room
goes on. As the pitfall (the guide's ``for connection in active: await
connection.send_text(...)``), once that member's socket is full every broadcast waits on
it and the whole room stops. The scenario treats both forms alike: whenever no delivery
has been seen for ``STUCK_S``, it unplugs the member that never reads (the only thing
that moves a naive room on), and it reports where the room stood and how long it waited.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from explorer.patterns.ws.bots import BotSwarm, StalledClient, ws_url
from explorer.tools.report.scenario import (
    Outcome,
    Scenario,
    ScenarioError,
    ScenarioRun,
    fetch_json,
    poll_until,
)

BOTS = 5
#: enough to fill any default Linux socket buffer (tcp_wmem max is 4 MiB) and the right
#: form's 2 MiB outbox: 1,500 messages of 4 KiB are about 6 MiB for the member that never reads
MESSAGES = 1500
MESSAGE_SIZE = 4096
#: the sender stays at most this many messages ahead of the slowest bot
WINDOW = 64
#: no delivery for this long and the room is stuck: unplug the member that never reads
STUCK_S = 3.0
#: connecting and delivering, whatever happens (closing takes a few seconds at most)
DEADLINE_S = 20.0
#: how long the server may take to see members join or leave
SETTLE_S = 5.0
POLL_S = 0.01
STALLED_NAME = "never-reads"


@dataclass(slots=True)
class Delivery:
    """How a burst went, as the bots saw it."""

    longest_pause_s: float = 0.0
    #: deliveries when the room was found stuck (None: it never was)
    stuck_at: int | None = None
    #: the oldest message some bot still waited for, at its worst (what the pane shows)
    oldest_undelivered_s: float = 0.0


async def ws_stats(run: ScenarioRun) -> dict[str, Any]:
    """``GET /ws/stats``."""
    return await fetch_json(run, "/ws/stats")


async def room_members(run: ScenarioRun, room: str, members: int) -> None:
    """Wait until the server counts ``members`` in ``room`` (0: the room is gone)."""

    def members_in(stats: dict[str, Any]) -> int:
        count: int = stats["rooms"].get(room, {}).get("members", 0)
        return count

    await poll_until(
        lambda: ws_stats(run),
        lambda stats: members_in(stats) == members,
        within_s=SETTLE_S,
        every_s=0.02,
        late=lambda stats: (
            f"room {room!r} has {members_in(stats)} members after "
            f"{SETTLE_S:g} s, expected {members}"
        ),
    )


async def deliver(swarm: BotSwarm, stalled: StalledClient) -> Delivery:
    """Send the burst and watch the deliveries until every bot has it all.

    When deliveries stop for ``STUCK_S`` the member that never reads is unplugged.
    """
    delivery = Delivery()
    sender = asyncio.create_task(
        swarm.send_burst(MESSAGES, MESSAGE_SIZE, window=WINDOW), name="report-ws-sender"
    )
    last_total, last_change = -1, time.perf_counter()
    try:
        while not (sender.done() and all(b.received >= MESSAGES for b in swarm.live_bots())):
            if sender.done() and (error := sender.exception()) is not None:
                raise ScenarioError(f"the sending bot failed: {error!r}") from error
            now = time.perf_counter()
            total = swarm.figures.received
            if total != last_total:
                last_total, last_change = total, now
            paused = now - last_change
            delivery.longest_pause_s = max(delivery.longest_pause_s, paused)
            delivery.oldest_undelivered_s = max(
                delivery.oldest_undelivered_s, swarm.oldest_undelivered_s()
            )
            if paused >= STUCK_S and delivery.stuck_at is None:
                delivery.stuck_at = total
                stalled.close()  # pull its plug: no close frame, the server sees a reset
            await asyncio.sleep(POLL_S)
    finally:
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
    return delivery


def drop_of(stats: dict[str, Any], room: str, drops_before: int) -> str | None:
    """Why the server dropped the member that never reads, if it did in this form."""
    if stats["drops"] <= drops_before:
        return None
    for drop in reversed(stats["recent_drops"]):
        if drop["room"] == room and drop["name"] == STALLED_NAME:
            return str(drop["reason"]).split(":")[0]
    return None


async def ws_stalled_reader(run: ScenarioRun) -> Outcome:
    """5 bots and one member that never reads; one bot broadcasts 1,500 messages of 4 KiB."""
    room = f"report-{'pitfall' if run.pitfall else 'right'}"
    drops_before = int((await ws_stats(run))["drops"])
    swarm = BotSwarm(run.base_url, room)
    stalled = StalledClient(ws_url(run.base_url, f"/ws/chat/{room}?name={STALLED_NAME}"))
    expected = BOTS * MESSAGES
    swarm.figures.keep_every_latency()
    try:
        async with asyncio.timeout(DEADLINE_S) as deadline:
            if (opened := await swarm.connect(BOTS)) != BOTS:
                raise ScenarioError(f"only {opened} of {BOTS} bots could connect")
            await stalled.connect()
            await room_members(run, room, BOTS + 1)
            delivery = await deliver(swarm, stalled)
        stats = await ws_stats(run)
    except TimeoutError:
        if not deadline.expired():
            raise
        raise ScenarioError(
            f"not done after {DEADLINE_S:g} s: {swarm.figures.received:,}/{expected:,} "
            "messages delivered"
        ) from None
    finally:
        stalled.close()
        await swarm.close()
        await room_members(run, room, 0)  # every handler on the server has ended
    delivered = swarm.figures.received
    dropped = drop_of(stats, room, drops_before)
    if delivery.stuck_at is None:
        note = f"{delivered:,}/{expected:,} delivered; "
        note += (
            f"{STALLED_NAME} dropped by the server ({dropped})"
            if dropped
            else f"{STALLED_NAME} never dropped"
        )
        pause = delivery.longest_pause_s
        note += (
            f", longest pause in deliveries {pause:.2f} s"
            if pause >= 2 * POLL_S
            else f", no pause in deliveries over {2 * POLL_S * 1000:.0f} ms"
        )
    else:
        note = (
            f"room stuck at {delivery.stuck_at:,}/{expected:,} for "
            f"{delivery.longest_pause_s:.1f} s until {STALLED_NAME} was unplugged; "
            f"then {delivered:,}/{expected:,}"
        )
    note += f"; oldest undelivered message waited up to {delivery.oldest_undelivered_s:.2f} s"
    if swarm.figures.closed_by_server:
        note += f"; {swarm.figures.closed_by_server} bot(s) closed by the server"
    p50, p99 = swarm.latency_ms()
    extra = {
        "bots": BOTS,
        "messages": MESSAGES,
        "message_bytes": MESSAGE_SIZE,
        "expected": expected,
        "delivered": delivered,
        "stuck_at": delivery.stuck_at,
        "longest_pause_s": round(delivery.longest_pause_s, 3),
        "oldest_undelivered_s": round(delivery.oldest_undelivered_s, 3),
        "stalled_dropped": dropped,
        "bots_closed_by_server": swarm.figures.closed_by_server,
        "out_of_order": swarm.figures.out_of_order,
        "delivery_p50_ms": None if p50 is None else round(p50, 2),
        "delivery_p99_ms": None if p99 is None else round(p99, 2),
    }
    # a delivery is the unit of work here: "req/s" reads as deliveries per second
    return Outcome(delivered, note, extra)


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "slow-reader",
        "outboxes + send timeout",
        "await each socket in turn",
        ws_stalled_reader,
    ),
)
