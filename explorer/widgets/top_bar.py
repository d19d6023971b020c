"""The title line: where the server listens and whether blocking mode is on."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget


class TopBar(Widget):
    """``fastasync-explorer  http://127.0.0.1:8000  docs /docs   BLOCKING MODE OFF (b)``."""

    DEFAULT_CSS = """
    TopBar { dock: top; height: 1; background: $panel; }
    TopBar.-blocking { background: $error 60%; }
    """

    url: reactive[str] = reactive("")
    blocking: reactive[bool] = reactive(False)
    warning: reactive[str] = reactive("")

    def watch_blocking(self, blocking: bool) -> None:
        self.set_class(blocking, "-blocking")

    def render(self) -> Text:
        text = Text.assemble((" fastasync-explorer ", "bold"), "  ")
        if self.url:
            text.append("serving ", style="dim")
            text.append(self.url, style="underline")
            text.append("  docs ", style="dim")
            text.append("/docs")
        if self.warning:
            text.append(f"  {self.warning}", style="bold yellow")
        state = Text(
            " BLOCKING MODE ON (b) " if self.blocking else " blocking mode off (b) ",
            style="bold reverse" if self.blocking else "dim",
        )
        pad = max(1, self.size.width - text.cell_len - state.cell_len)
        text.append(" " * pad)
        text.append_text(state)
        return text
