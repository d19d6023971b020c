"""The code view: source blocks read from the running modules, highlighted off the loop.

The view is built once and never recomposed: a recompose replaced its panels while focus
could still be on one of them, and keys sent to a removed widget reach no binding at all
(the UI looked frozen). Showing other code only hands new blocks to the same panels.
"""

from __future__ import annotations

import asyncio
from functools import lru_cache

from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.syntax import Syntax
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.geometry import Size
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Static, Tab, Tabs

from explorer.code_source import SourceBlock

#: at most this many blocks side by side (a pane shows its handler, its client, a helper)
MAX_BLOCKS = 3
#: a panel narrower than this shows one block at a time, with a switch above it
SIDE_BY_SIDE_MIN_WIDTH = 92
_THEME = "monokai"


@lru_cache(maxsize=64)
def render_block(block: SourceBlock, width: int) -> tuple[Strip, ...]:
    """The block as terminal lines ``width`` cells wide: highlighted, long lines wrapped.

    Pure and thread-safe (a console of its own): the code view calls it in a thread, so
    lexing (Pygments) and wrapping never run on the shared loop. Cached per width.
    """
    width = max(20, width)
    console = Console(
        width=width, color_system="truecolor", force_terminal=True, legacy_windows=False
    )
    syntax = Syntax(
        block.text.rstrip("\n"),
        "python",
        line_numbers=True,
        start_line=block.start,
        highlight_lines=set(block.highlight),
        theme=_THEME,
        word_wrap=True,
        indent_guides=False,
    )
    lines = console.render_lines(syntax, console.options.update_width(width), pad=True)
    return tuple(Strip(Segment.simplify(line), width) for line in lines)


class RenderedCode(ScrollView, can_focus=True):
    """One block, drawn from lines rendered in a thread; scrolls with the keys and wheel."""

    DEFAULT_CSS = """
    RenderedCode {
        width: 1fr;
        height: 1fr;
        border: round $primary 50%;
        border-title-color: $text;
        border-subtitle-color: $text-muted;
        background: $surface;
    }
    RenderedCode:focus { border: round $accent; }
    """

    BINDINGS = [  # noqa: RUF012 (Textual's own widgets declare them this way)
        ("up", "scroll_up", "Up"),
        ("down", "scroll_down", "Down"),
        ("pageup", "page_up", "Page up"),
        ("pagedown", "page_down", "Page down"),
        ("home", "scroll_home", "Top"),
        ("end", "scroll_end", "Bottom"),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.block: SourceBlock | None = None
        self._strips: tuple[Strip, ...] = ()
        self._rendered_for: tuple[SourceBlock, int] | None = None
        self._pending: asyncio.Task[None] | None = None

    def show(self, block: SourceBlock) -> None:
        """Display ``block`` (rendered in a thread; the old lines stay until it is ready)."""
        self.block = block
        self.border_title = block.title
        caption = f"{block.path}:{block.start}-{block.end}"
        if block.highlight:
            caption += f"  ❱ line {', '.join(map(str, sorted(block.highlight)))}"
        self.border_subtitle = caption
        self.scroll_to(0, 0, animate=False)
        self._render_for_width()

    def on_resize(self) -> None:
        self._render_for_width()

    def _render_for_width(self) -> None:
        block, width = self.block, self.scrollable_content_region.width
        if block is None or width <= 0 or self._rendered_for == (block, width):
            return
        if self._pending is not None:
            self._pending.cancel()
        # a strong reference until it is done (and cancelled on unmount)
        self._pending = asyncio.create_task(
            self._render_lines(block, width), name="code-view-render"
        )

    async def _render_lines(self, block: SourceBlock, width: int) -> None:
        strips = await asyncio.to_thread(render_block, block, width)
        if self.block != block:
            return  # another block was asked for meanwhile
        self._strips = strips
        self._rendered_for = (block, width)
        self.virtual_size = Size(width, len(strips))
        self._scroll_to_highlight(block)
        self.refresh()

    def _scroll_to_highlight(self, block: SourceBlock) -> None:
        """Bring the highlighted line into view (a third of the way down)."""
        if not block.highlight:
            return
        for index, strip in enumerate(self._strips):
            # Rich marks a highlighted line with ❱ in the gutter
            if "❱" in strip.text[:12]:
                self.scroll_to(0, max(0, index - self.size.height // 3), animate=False)
                return

    def render_line(self, y: int) -> Strip:
        index = y + self.scroll_offset.y
        width = self.scrollable_content_region.width
        if 0 <= index < len(self._strips):
            return self._strips[index].crop_extend(0, width, Style())
        return Strip.blank(width, self.rich_style)

    def on_unmount(self) -> None:
        if self._pending is not None:
            self._pending.cancel()


class CodeView(Vertical):
    """Shows whichever blocks it is given; the pane decides which code ran.

    Side by side when each block gets at least :data:`SIDE_BY_SIDE_MIN_WIDTH` columns,
    otherwise one block at a time with a tab switch (←/→, or a click) above it.
    """

    DEFAULT_CSS = """
    CodeView { height: 1fr; }
    CodeView > Tabs { height: 2; }
    CodeView > #code-empty { color: $text-muted; padding: 1 2; }
    CodeView > Horizontal { height: 1fr; }
    """

    blocks: reactive[tuple[SourceBlock, ...]] = reactive(tuple)
    active: reactive[int] = reactive(0)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._panels = [RenderedCode(id=f"code-{index}") for index in range(MAX_BLOCKS)]
        # fixed tabs too, relabelled and hidden: re-adding tabs with the same ids while
        # the old ones are still being removed would clash
        self._tabs = Tabs(
            *(Tab(f"block {index + 1}", id=f"code-tab-{index}") for index in range(MAX_BLOCKS)),
            id="code-tabs",
        )
        self._side_by_side = False

    def compose(self) -> ComposeResult:
        yield self._tabs
        yield Static("Run something first: the code that ran shows here.", id="code-empty")
        with Horizontal():
            yield from self._panels

    def on_mount(self) -> None:
        self._arrange()

    def watch_blocks(self, blocks: tuple[SourceBlock, ...]) -> None:
        shown = blocks[:MAX_BLOCKS]
        for panel, block in zip(self._panels, shown, strict=False):
            panel.show(block)
        for index in range(MAX_BLOCKS):
            tab_id = f"code-tab-{index}"
            if index < len(shown):
                tab = self._tabs.show(tab_id)
                tab.label = shown[index].title
            else:
                self._tabs.hide(tab_id)
        self._tabs.active = "code-tab-0"
        self.active = 0
        self._arrange()

    def on_resize(self) -> None:
        self._arrange()

    def _arrange(self) -> None:
        count = min(len(self.blocks), MAX_BLOCKS)
        width = self.size.width
        self._side_by_side = count <= 1 or width // max(1, count) >= SIDE_BY_SIDE_MIN_WIDTH
        self.query_one("#code-empty").display = count == 0
        self._tabs.display = not self._side_by_side
        for index, panel in enumerate(self._panels):
            panel.display = index < count and (self._side_by_side or index == self.active)

    def watch_active(self) -> None:
        self._arrange()

    @on(Tabs.TabActivated, "#code-tabs")
    def _tab_chosen(self, event: Tabs.TabActivated) -> None:
        event.stop()
        tab_id = event.tab.id or ""
        if tab_id.startswith("code-tab-"):
            self.active = int(tab_id.removeprefix("code-tab-"))

    def focus_first(self) -> None:
        """Focus the switch when there is one, else the first panel (always mounted)."""
        if self._tabs.display:
            self._tabs.focus()
        else:
            self._panels[0].focus()

    def panels(self) -> list[RenderedCode]:
        """The panels that hold the current blocks, in order (shown or behind a tab)."""
        return self._panels[: min(len(self.blocks), MAX_BLOCKS)]
