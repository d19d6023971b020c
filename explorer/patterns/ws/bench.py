"""``python -m explorer.patterns.ws.bench``: the WebSocket broadcast, measured.

Two parts, in one run, each against its baseline:

1. The lesson. 100 bots + 1 stalled client (handshake, then it never reads; 4 KiB receive
   buffer) in one room; one bot sends 2,000 messages of 4 KiB, at most ``--window``
   messages ahead of the slowest healthy bot. Right (outboxes + writer tasks + send
   timeout) against naive (blocking mode: the guide's ``for connection in active: await
   connection.send_text(...)``). Naive never finishes while the stalled client is
   connected; once the room has been stuck ``--naive-hold`` seconds the benchmark
   disconnects the stalled client, and reports how long the room was stuck.
2. Fan-out. ``--clients`` bots in one room, one sends ``--messages`` messages; the explorer's
   ``/ws/chat`` against a bare ``websockets.asyncio.server`` whose handler relays each
   message with the library's own ``broadcast()``, same wire protocol, same clients.

Servers run in child processes (``fastasync-explorer serve``, and this module with
``--serve bare``); the clients run here, in one process and one loop. Both servers are
measured through the same client, so the ratio is fair; the absolute figures are bounded
by that one client process too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from explorer.patterns.ws.bots import BotSwarm, StalledClient, ws_url
from explorer.tools.bench_kit import (
    accepts_connections,
    base_url,
    bench_parser,
    child_process,
    fmt,
    format_table,
    free_port,
    header_line,
    say,
    serve_process,
    write_json,
)

# -- the servers (child processes) ----------------------------------------------------------


async def serve_bare(port: int) -> None:
    """A bare websockets server: the same chat protocol, fanned out with ``broadcast()``."""
    from websockets.asyncio.server import ServerConnection, broadcast, serve

    members: set[ServerConnection] = set()
    seq = 0

    async def handler(conn: ServerConnection) -> None:
        nonlocal seq
        request = conn.request
        name = request.path.partition("name=")[2] if request is not None else "?"
        members.add(conn)
        try:
            async for raw in conn:
                data = json.loads(raw)
                seq += 1
                payload = {"type": "message", "from": name, "text": data.get("text"), "seq": seq}
                if "sent_at" in data:
                    payload["sent_at"] = data["sent_at"]
                broadcast(members, json.dumps(payload, separators=(",", ":")))
        finally:
            members.discard(conn)

    async with serve(handler, "127.0.0.1", port, max_size=1024 * 1024) as server:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, server.close)
        with contextlib.suppress(asyncio.CancelledError):
            await server.serve_forever()


@contextlib.contextmanager
def child_server(kind: str) -> Iterator[str]:
    """The explorer's app (``app``) or the bare server (``bare``) in a child process; yield
    its base URL; always stop it."""
    port = free_port()
    if kind == "app":
        with serve_process(port, scratch=True):
            yield base_url(port)
        return
    command = [sys.executable, "-m", "explorer.patterns.ws.bench", "--serve", kind]
    with child_process(
        [*command, "--port", str(port)], port, f"the {kind} server", ready=accepts_connections
    ):
        yield base_url(port)


# -- measurements -------------------------------------------------------------------------------


@dataclass
class Run:
    """One burst, measured at the clients."""

    label: str
    clients: int
    messages: int
    wall_s: float
    delivered: int
    p50_ms: float | None
    p99_ms: float | None
    out_of_order: int
    note: str = ""

    @property
    def deliveries_per_s(self) -> float:
        return self.delivered / self.wall_s if self.wall_s > 0 else 0.0


async def burst(
    swarm: BotSwarm, messages: int, size: int, window: int, on_stuck: Any = None
) -> tuple[float, float, float]:
    """Send and wait for every delivery; the wall time, the longest no-progress stretch and
    the oldest undelivered message's age at its worst (the pane's figure)."""
    swarm.figures.keep_every_latency()
    swarm.figures.latencies_ms.clear()
    started = time.perf_counter()
    sender = asyncio.create_task(swarm.send_burst(messages, size, window=window))
    last_total, last_change, longest_stuck, oldest = -1, time.perf_counter(), 0.0, 0.0
    try:
        while not (sender.done() and all(b.received >= messages for b in swarm.live_bots())):
            if sender.done() and sender.exception() is not None:
                raise RuntimeError("sender failed") from sender.exception()
            total = swarm.figures.received
            now = time.perf_counter()
            if total != last_total:
                last_total, last_change = total, now
            longest_stuck = max(longest_stuck, now - last_change)
            oldest = max(oldest, swarm.oldest_undelivered_s())
            if on_stuck is not None and on_stuck(now - last_change):
                on_stuck = None
            await asyncio.sleep(0.01)
    finally:
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
    return time.perf_counter() - started, longest_stuck, oldest


async def lesson(base_url: str, args: argparse.Namespace) -> list[tuple[Run, dict[str, Any]]]:
    """100 + 1 stalled, right then naive, against the explorer's app."""
    results = []
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        for naive in (False, True):
            await http.put("/monitor/blocking", json={"enabled": naive})
            room = "naive" if naive else "right"
            swarm = BotSwarm(base_url, room)
            stalled = StalledClient(ws_url(base_url, f"/ws/chat/{room}?name=stalled"))
            stuck_for: list[float] = []

            def release(
                stuck_s: float, stalled: StalledClient = stalled, stuck_for: list[float] = stuck_for
            ) -> bool:
                if stuck_s < args.naive_hold:
                    return False
                stuck_for.append(stuck_s)
                stalled.close()  # pull the plug: the naive room can only move on now
                return True

            drops_before = int((await http.get("/ws/stats")).json()["drops"])
            try:
                await swarm.connect(args.lesson_clients)
                await stalled.connect()
                wall, longest, oldest = await burst(
                    swarm, args.lesson_messages, 4096, args.window, release if naive else None
                )
                stats = (await http.get("/ws/stats")).json()
                new_drops = stats["drops"] - drops_before
                stats["recent_drops"] = stats["recent_drops"][-new_drops:] if new_drops else []
            finally:
                stalled.close()
                await swarm.close()
            p50, p99 = swarm.latency_ms()
            note = (
                f"room stuck {stuck_for[0]:.1f} s until the stalled client was disconnected"
                if stuck_for
                else f"longest pause in deliveries {longest:.2f} s"
            )
            note += f"; oldest undelivered message waited up to {oldest:.2f} s"
            run = Run(
                "naive (blocking mode)" if naive else "right (outboxes)",
                args.lesson_clients,
                args.lesson_messages,
                wall,
                swarm.figures.received,
                p50,
                p99,
                swarm.figures.out_of_order,
                note,
            )
            results.append((run, stats))
        await http.put("/monitor/blocking", json={"enabled": False})
    return results


async def fan_out(base_url: str, label: str, args: argparse.Namespace) -> Run:
    swarm = BotSwarm(base_url, "fanout")
    try:
        opened = await swarm.connect(args.clients)
        await asyncio.sleep(0.5)  # let the presence notices settle
        wall, _, _ = await burst(swarm, args.messages, args.size, args.window)
    finally:
        await swarm.close()
    p50, p99 = swarm.latency_ms()
    return Run(
        label,
        opened,
        args.messages,
        wall,
        swarm.figures.received,
        p50,
        p99,
        swarm.figures.out_of_order,
    )


# -- report -------------------------------------------------------------------------------------


def run_row(run: Run) -> list[str]:
    return [
        run.label,
        str(run.clients),
        str(run.messages),
        fmt(run.wall_s, ".2f"),
        fmt(run.deliveries_per_s, ",.0f"),
        fmt(run.p50_ms, ",.1f"),
        fmt(run.p99_ms, ",.1f"),
        str(run.out_of_order),
    ]


HEADERS = ["server", "clients", "msgs", "wall s", "deliveries/s", "p50 ms", "p99 ms", "ooo"]


async def run_all(args: argparse.Namespace) -> int:
    say(header_line("bench ws") + "\n")
    with child_server("app") as base_url:
        lessons = await lesson(base_url, args)
    say(
        f"1. {args.lesson_clients} bots + 1 stalled client, {args.lesson_messages} x 4 KiB "
        f"broadcast, window {args.window}"
    )
    say(format_table(HEADERS, [run_row(run) for run, _ in lessons]))
    for run, stats in lessons:
        drops = stats.get("recent_drops") or []
        dropped = (
            f"dropped '{drops[0]['name']}' after {drops[0]['stuck_s']} s: {drops[0]['reason']}"
            if drops
            else "nobody dropped"
        )
        say(
            f"  {run.label}: {run.note}; {dropped}; longest naive broadcast "
            f"{stats.get('naive_longest_s', 0):.1f} s"
        )
    right, naive = lessons[0][0], lessons[1][0]
    say(f"  wall ratio naive/right: {naive.wall_s / right.wall_s:.2f}\n")

    runs: list[Run] = []
    for round_no in range(1, args.rounds + 1):
        # Alternated, so drift on a shared machine hits both servers alike.
        for kind, label in (("app", "explorer /ws/chat"), ("bare", "websockets broadcast()")):
            with child_server(kind) as base_url:
                runs.append(await fan_out(base_url, f"{label} #{round_no}", args))
    say(
        f"2. Fan-out: {args.clients} clients, {args.messages} messages of {args.size} chars, "
        f"window {args.window}, {args.rounds} round(s)"
    )
    say(format_table(HEADERS, [run_row(run) for run in runs]))
    ours, bare = runs[0::2], runs[1::2]
    ratios = sorted(
        o.deliveries_per_s / b.deliveries_per_s for o, b in zip(ours, bare, strict=True)
    )
    p99_ratios = sorted(
        (o.p99_ms or 0) / b.p99_ms for o, b in zip(ours, bare, strict=True) if b.p99_ms
    )
    ratio = statistics.median(ratios)
    p99_ratio = statistics.median(p99_ratios) if p99_ratios else 0.0
    say(
        f"  ratio explorer/bare, median of rounds: deliveries/s {ratio:.2f} "
        f"(rounds: {', '.join(f'{r:.2f}' for r in ratios)}), p99 {p99_ratio:.2f}"
    )
    figures = {
        "lesson": [vars(run) | {"stats": stats} for run, stats in lessons],
        "fan_out": [vars(run) for run in runs],
        "ratio_deliveries": ratio,
        "ratio_p99": p99_ratio,
    }
    if args.json and not write_json(args.json, figures, "bench ws"):
        return 2
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = bench_parser(
        "ws",
        "WebSocket broadcast: a stalled client right vs naive, and fan-out vs "
        "the websockets library's broadcast(), in one run.",
        json_option=True,
    )
    parser.add_argument("--clients", type=int, default=1000, help="fan-out clients")
    parser.add_argument("--messages", type=int, default=200, help="fan-out messages")
    parser.add_argument("--size", type=int, default=256, help="fan-out message size")
    parser.add_argument("--rounds", type=int, default=3, help="fan-out rounds per server")
    parser.add_argument("--lesson-clients", type=int, default=100)
    parser.add_argument("--lesson-messages", type=int, default=2000)
    parser.add_argument(
        "--window", type=int, default=64, help="sender's lead over the slowest healthy bot"
    )
    parser.add_argument(
        "--naive-hold",
        type=float,
        default=5.0,
        help="seconds the naive room may stay stuck before the stalled client is disconnected",
    )
    parser.add_argument("--serve", choices=("bare",), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark (or, with ``--serve bare``, be its bare server)."""
    args = build_parser().parse_args(argv)
    if args.serve == "bare":
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve_bare(args.port))
        return 0
    return asyncio.run(run_all(args))


if __name__ == "__main__":
    raise SystemExit(main())
