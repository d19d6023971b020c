"""Side-by-side source blocks, read from the running modules, with highlighted lines."""

from __future__ import annotations

from rich.syntax import Syntax
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.reactive import reactive
from textual.widgets import Static

from ..code_source import SourceBlock


class SourcePanel(VerticalScroll):
    """One block: its title, path and the code with real line numbers."""

    DEFAULT_CSS = """
    SourcePanel { width: 1fr; border: round $primary 50%; padding: 0 1; overflow-x: auto; }
    SourcePanel > Static { width: auto; }
    SourcePanel > .caption { color: $text-muted; }
    """

    def __init__(self, block: SourceBlock) -> None:
        super().__init__()
        self.block = block
        self.border_title = block.title

    def compose(self) -> ComposeResult:
        block = self.block
        caption = f"{block.path}:{block.start}-{block.end}"
        if block.highlight:
            caption += f"  (line {', '.join(map(str, sorted(block.highlight)))} highlighted)"
        yield Static(Text(caption), classes="caption")
        yield Static(
            Syntax(
                block.text.rstrip("\n"),
                "python",
                line_numbers=True,
                start_line=block.start,
                highlight_lines=set(block.highlight),
                theme="monokai",
                word_wrap=False,
                indent_guides=False,
            )
        )


class CodeView(Horizontal):
    """Shows whichever blocks it is given; the pane decides which code ran."""

    DEFAULT_CSS = """
    CodeView { height: 1fr; }
    """

    blocks: reactive[tuple[SourceBlock, ...]] = reactive(tuple, recompose=True)

    def compose(self) -> ComposeResult:
        if not self.blocks:
            yield Static("Run something first: the code that ran shows here.")
        for block in self.blocks:
            yield SourcePanel(block)
