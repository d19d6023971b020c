"""The bots' live figures: a fixed-size block redrawn at most a few times a second.

Delivered p50/p99 count only the messages that arrived; a room that has stopped delivers
nothing and its percentiles stand still. So the block puts beside them the age of the
oldest message still on its way (``undelivered``), which grows while a room is stuck.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widgets import Static

#: an undelivered message older than this is shown as trouble (red)
LATE_S = 1.0


@dataclass(frozen=True)
class BotFiguresView:
    """What the block shows; the pane computes it from counters, never per message."""

    target: int = 0
    connected: int = 0
    connecting: bool = False
    msgs_in_per_s: float = 0.0
    msgs_out_per_s: float = 0.0
    p50_ms: float | None = None
    p99_ms: float | None = None
    #: age of the oldest message a connected bot still waits for (None: no bots)
    oldest_undelivered_s: float | None = None
    #: it is older than at the last refresh (and late): the room is not delivering
    undelivered_growing: bool = False
    drops: int = 0
    closed_by_server: int = 0
    stalled: bool = False
    #: the server dropped it (the right form): its socket is still open, it is not a member
    stalled_dropped: bool = False
    #: how long the stalled client has been in the room
    stalled_for_s: float = 0.0
    mode: str = "right"
    queued_kib: float = 0.0
    naive_waiting_s: float = 0.0
    last_drop: str = ""


@dataclass
class RateMeter:
    """Messages per second in and out, from the swarm's counters between two refreshes."""

    last_at: float = 0.0
    last_sent: int = 0
    last_received: int = 0

    def rates(self, now: float, sent: int, received: int) -> tuple[float, float]:
        """Sent and received per second since the previous call (0, 0 the first time)."""
        elapsed = now - self.last_at if self.last_at else 0.0
        rates = (
            ((sent - self.last_sent) / elapsed, (received - self.last_received) / elapsed)
            if elapsed > 0
            else (0.0, 0.0)
        )
        self.last_at, self.last_sent, self.last_received = now, sent, received
        return rates

    def reset(self) -> None:
        self.last_at, self.last_sent, self.last_received = 0.0, 0, 0


def duration(ms: float | None) -> str:
    """``7.5 ms``, ``2.21 s``, ``16.0 s``; ``-`` for nothing measured."""
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{ms:.1f} ms"
    if ms < 10_000:
        return f"{ms / 1000:.2f} s"
    return f"{ms / 1000:,.1f} s" if ms < 1_000_000 else f"{ms / 1000:,.0f} s"


class BotFigures(Static):
    """Connected, msg/s in and out, delivered p50/p99 and the oldest undelivered, drops."""

    DEFAULT_CSS = """
    BotFigures { height: 5; padding: 0 1; border-left: outer $primary 40%; }
    """

    def show(self, view: BotFiguresView) -> None:
        """Redraw without a relayout (the size never changes)."""
        self.update(self.render_view(view), layout=False)

    @staticmethod
    def render_view(view: BotFiguresView) -> Text:
        """Five lines of at most 69 cells (the block's width at 100×30 is 70); a longer drop
        reason ends in an ellipsis instead of wrapping."""
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append("connected ", style="dim")
        text.append(f"{view.connected:>4}/{view.target:<4}", style="bold")
        text.append("…  " if view.connecting else "   ", style="bold yellow")
        text.append("stalled client ", style="dim")
        if view.stalled:
            # (capped: the block has a fixed width)
            text.append(f"on {min(view.stalled_for_s, 999):>3.0f} s", style="bold red")
        elif view.stalled_dropped:
            text.append("dropped ", style="bold green")
        else:
            text.append("off     ")
        text.append("   broadcast ", style="dim")
        text.append(view.mode, style="bold red" if view.mode == "naive" else "green")

        text.append("\nmsg/s in ", style="dim")
        text.append(f"{view.msgs_in_per_s:>6,.0f}", style="bold")
        text.append("   out ", style="dim")
        text.append(f"{view.msgs_out_per_s:>8,.0f}", style="bold")
        text.append("   drops ", style="dim")
        text.append(f"{view.drops:<4}", style="bold red" if view.drops else "bold")
        text.append("  closed by server ", style="dim")
        text.append(f"{view.closed_by_server}")

        text.append("\ndelivered    ", style="dim")
        text.append("p50 ", style="dim")
        text.append(f"{duration(view.p50_ms):>9}", style="bold")
        text.append("   p99 ", style="dim")
        text.append(f"{duration(view.p99_ms):>9}", style="bold")
        text.append("   queued ", style="dim")
        text.append(f"{view.queued_kib:>6,.0f} KiB")

        age = view.oldest_undelivered_s
        late = age is not None and age >= LATE_S
        text.append("\nundelivered  ", style="dim")
        text.append("oldest ", style="dim")
        text.append(
            f"{duration(None if age is None else age * 1000):>9}",
            style="bold red" if late else "bold green",
        )
        growing = late and view.undelivered_growing
        text.append(" and growing" if growing else "            ", style="red")
        if view.naive_waiting_s >= 0.5:
            text.append("  a broadcast waits ", style="red")
            text.append(duration(view.naive_waiting_s * 1000), style="bold red")

        text.append("\nlast drop ", style="dim")
        text.append(view.last_drop or "-", style="red" if view.last_drop else "dim")
        return text
