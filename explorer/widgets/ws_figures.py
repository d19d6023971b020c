"""The bots' live figures: a fixed-size block redrawn at most a few times a second."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widgets import Static


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
    drops: int = 0
    closed_by_server: int = 0
    stalled: bool = False
    mode: str = "right"
    queued_kib: float = 0.0
    naive_waiting_s: float = 0.0
    last_drop: str = ""


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f} ms"


class BotFigures(Static):
    """Connected, msg/s in and out, delivery p50/p99, drops, and what the server says."""

    DEFAULT_CSS = """
    BotFigures { height: 6; padding: 0 1; border: round $primary 40%; }
    """

    def show(self, view: BotFiguresView) -> None:
        """Redraw without a relayout (the size never changes)."""
        self.update(self.render_view(view), layout=False)

    @staticmethod
    def render_view(view: BotFiguresView) -> Text:
        text = Text()
        text.append("connected ", style="dim")
        text.append(f"{view.connected:>4}/{view.target:<4}", style="bold")
        if view.connecting:
            text.append(" connecting…", style="yellow")
        text.append("   stalled client ", style="dim")
        text.append("on" if view.stalled else "off", style="bold red" if view.stalled else "")
        text.append("   broadcast ", style="dim")
        text.append(view.mode, style="bold red" if view.mode == "naive" else "green")
        text.append("\nmsg/s in ", style="dim")
        text.append(f"{view.msgs_in_per_s:>8,.0f}", style="bold")
        text.append("   out ", style="dim")
        text.append(f"{view.msgs_out_per_s:>10,.0f}", style="bold")
        text.append("   delivery p50 ", style="dim")
        text.append(f"{_ms(view.p50_ms):>11}", style="bold")
        text.append("  p99 ", style="dim")
        text.append(f"{_ms(view.p99_ms):>11}", style="bold")
        text.append("\ndrops ", style="dim")
        text.append(f"{view.drops}", style="bold red" if view.drops else "bold")
        text.append("   closed by server ", style="dim")
        text.append(f"{view.closed_by_server}")
        text.append("   queued ", style="dim")
        text.append(f"{view.queued_kib:,.0f} KiB")
        if view.naive_waiting_s >= 0.5:
            text.append("   a broadcast has waited ", style="bold red")
            text.append(f"{view.naive_waiting_s:.1f} s", style="bold red")
        text.append("\nlast drop ", style="dim")
        text.append(view.last_drop or "-", style="red" if view.last_drop else "dim")
        return text
