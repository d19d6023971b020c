"""One stall in full: the culprit's source, its stack (own frames; ``l`` for the rest),
and the requests that waited for it."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.reactive import reactive
from textual.widgets import Static

from explorer.code_source import SourceBlock
from explorer.widgets.code_view import RenderedCode
from explorer.yourapp.probe_records import SourceLines, culprit_of
from fastasync_probe.monitor import Stall

#: victims listed by name; the rest are counted
MAX_VICTIMS = 30


def block_of(source: SourceLines, title: str) -> SourceBlock:
    """The probe's source lines as the code view's block, the culprit line highlighted."""
    text = "".join(line if line.endswith("\n") else line + "\n" for line in source.lines)
    # the probe's own short path (``shop/orders.py``), not the absolute one: the code
    # view names a block by it, and the file is in the app's process, not read here
    return SourceBlock(title, source.path, source.first_line, text, frozenset({source.line}))


def stack_text(stall: Stall, library: bool) -> Text:
    """The stack, innermost first: own frames always, library frames when ``library``."""
    text = Text()
    culprit = culprit_of(stall)
    hidden = 0
    for frame in stall.frames:
        if not frame.own and not library:
            hidden += 1
            continue
        mark = "❱ " if frame is culprit else "  "
        style = "bold" if frame is culprit else ("" if frame.own else "dim")
        text.append(f"{mark}{frame}\n", style=style)
    if not stall.frames:
        text.append(f"  {stall.location or 'not sampled: it ended too soon'}\n")
    if hidden:
        text.append(f"  … {hidden} library frame(s): l shows them\n", style="dim italic")
    elif library and any(not frame.own for frame in stall.frames):
        text.append("  (l hides the library frames)\n", style="dim italic")
    return text


def victims_text(stall: Stall) -> Text:
    """``r12  GET /fast  240.1 ms`` per request that waited, longest wait first."""
    if not stall.victims:
        return Text("no other request was waiting", style="dim")
    text = Text()
    ordered = sorted(stall.victims, key=lambda v: v.waited_ms, reverse=True)
    for victim in ordered[:MAX_VICTIMS]:
        route = victim.route if len(victim.route) <= 22 else victim.route[:21] + "…"
        text.append(f"{victim.request_id:<6} ", style="dim")
        text.append(f"{route:<22} ")
        text.append(f"{victim.waited_ms:>7.1f} ms\n", style="yellow")
    if len(ordered) > MAX_VICTIMS:
        text.append(f"… and {len(ordered) - MAX_VICTIMS} more\n", style="dim")
    return text


#: the route the view itself asks the app for (its route list)
OPENAPI_ROUTE = "GET /openapi.json"


@dataclass(frozen=True, slots=True)
class OwnRequest:
    """A request the view itself made to the app: its route and when (wall clock)."""

    route: str
    began: float
    ended: float

    def made(self, stall: Stall) -> bool:
        """Whether ``stall`` happened in this request (same route, within its time)."""
        return stall.route == self.route and self.began - 0.05 <= stall.started_at <= self.ended


def summary_text(stall: Stall, own: OwnRequest | None = None) -> Text:
    text = Text.assemble(
        (f"stall #{stall.seq}", "bold"), f"  {stall.duration_ms:.1f} ms {stall.kind}"
    )
    text.append(f"\nin {stall.route or 'no request'}")
    if own is not None and own.made(stall):
        text.append(
            "\nthe explorer's own request (its route list): your app builds the schema "
            "on the first call, so its first user pays this too",
            style="italic",
        )
    text.append(f"\ncpu {stall.cpu_ms:.1f} ms  gc {stall.gc_ms:.1f} ms", style="dim")
    if stall.request_id:
        text.append(f"  request {stall.request_id}", style="dim")
    return text


class StallDetail(Horizontal):
    """The culprit's code on the left; the stack and the victims on the right."""

    DEFAULT_CSS = """
    StallDetail { height: 1fr; }
    StallDetail > RenderedCode { width: 1fr; }
    StallDetail > VerticalScroll {
        width: 46;
        border: round $primary 50%;
        border-title-color: $text;
    }
    StallDetail > VerticalScroll:focus-within { border: round $accent; }
    StallDetail Static { width: 1fr; }
    /* a frame per line, cut at the edge: a wrapped path reads as two frames */
    StallDetail #stall-stack, StallDetail #stall-victims {
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    StallDetail #stall-stack-title, StallDetail #stall-victims-title { color: $text-muted; }
    StallDetail #stall-victims-title { margin-top: 1; }
    """

    #: the stall shown (None: nothing picked yet)
    stall: reactive[Stall | None] = reactive(None, always_update=True)
    #: library frames listed under the own ones
    library: reactive[bool] = reactive(False)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        #: the view's own request to the app (for its route list), once made
        self.explorer_asked: OwnRequest | None = None
        self.code = RenderedCode(id="stall-code")
        self._summary = Static("Pick a stall above (Enter): its code, stack and victims.")
        self._stack = Static(id="stall-stack")
        self._victims = Static(id="stall-victims")
        self._side = VerticalScroll(
            self._summary,
            Static("\nstack, innermost first", id="stall-stack-title"),
            self._stack,
            Static("victims (request, route, waited)", id="stall-victims-title"),
            self._victims,
            id="stall-side",
        )

    def compose(self) -> ComposeResult:
        yield self.code
        yield self._side

    def on_mount(self) -> None:
        self.code.border_title = "culprit"
        self._side.border_title = "stack and victims"

    def watch_stall(self, stall: Stall | None) -> None:
        self._draw()

    def watch_library(self) -> None:
        self._draw()

    def _draw(self) -> None:
        stall = self.stall
        if stall is None:
            return
        self._summary.update(summary_text(stall, self.explorer_asked))
        self._stack.update(stack_text(stall, self.library))
        self._victims.update(victims_text(stall))

    def show_source(self, stall: Stall, source: SourceLines) -> None:
        """The culprit's lines, once the probe sent them (for the stall still shown)."""
        if self.stall is stall:
            culprit = culprit_of(stall)
            title = culprit.function if culprit else f"stall #{stall.seq}"
            self.code.show(block_of(source, title))

    def show_no_source(self, stall: Stall, why: str) -> None:
        """No lines to show (not sampled, or the probe would not send them): say why."""
        if self.stall is stall:
            self.code.show(SourceBlock("culprit", "-", 1, f"# {why}\n"))
