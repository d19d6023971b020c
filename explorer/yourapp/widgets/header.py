"""The view's two title lines: which app, how the probe measures, and whether it answers."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from explorer.yourapp.probe_records import ProbeInfo


class AppHeader(Widget):
    """``Your app  shop  http://127.0.0.1:8765   probe selector, exact · loop uvloop.Loop``
    and below it the probe's state: answering (requests in flight) or not, in one line."""

    DEFAULT_CSS = """
    AppHeader { dock: top; height: 2; background: $panel; }
    """

    label: reactive[str] = reactive("")
    url: reactive[str] = reactive("")
    info: reactive[ProbeInfo | None] = reactive(None)
    #: the one line that says the probe does not answer; empty while it does
    problem: reactive[str] = reactive("")
    in_flight: reactive[int] = reactive(0)

    def render(self) -> Text:
        text = Text.assemble((" Your app ", "bold reverse"), " ", (self.label, "bold"), "  ")
        text.append(self.url, style="underline")
        info = self.info
        if info is not None:
            text.append("   probe ", style="dim")
            text.append(info.measuring)
            text.append(" · loop ", style="dim")
            text.append(info.loop_name)
        # each line cut at the edge, never wrapped: the header is two lines, always
        text.truncate(max(1, self.size.width), overflow="ellipsis")
        status = Text(" ")
        if self.problem:
            status.append(f"⚠ {self.problem}", style="bold red")
        elif info is None:
            status.append("waiting for the probe…", style="dim")
        else:
            status.append("probe answering", style="green")
            status.append(f" · pid {info.pid}", style="dim")
            status.append(f" · stalls over {info.stall_threshold_ms:g} ms caught", style="dim")
            # fixed width: the line never changes length as the figure does
            status.append(f" · requests in flight {self.in_flight:>4}", style="dim")
        status.truncate(max(1, self.size.width), overflow="ellipsis")
        return Text("\n").join([text, status])
