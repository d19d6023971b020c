"""The view's tabs: Routes (list, load form, figures), Stalls (table and detail), Tasks."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from explorer.yourapp.routes import RouteInfo
from explorer.yourapp.widgets.figures_table import RouteFiguresTable
from explorer.yourapp.widgets.load_form import LoadForm
from explorer.yourapp.widgets.stall_detail import StallDetail
from explorer.yourapp.widgets.stall_table import StallTable

#: what the list says when the app has no OpenAPI document
NO_OPENAPI = "no /openapi.json: type a method and path in the form"


class RoutesView(Vertical):
    """The app's routes on the left, the load form beside them, the figures below."""

    DEFAULT_CSS = """
    RoutesView > Horizontal { height: 9; }
    RoutesView #routes { width: 34; height: 1fr; border: round $primary 40%; text-wrap: nowrap;
                         text-overflow: ellipsis; }
    RoutesView #routes:focus { border: round $accent; }
    RoutesView LoadForm { width: 1fr; }
    RoutesView RouteFiguresTable { height: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.route_list = OptionList(
            Option("reading the app's routes…", disabled=True), id="routes"
        )
        self.form = LoadForm(id="load-form")
        self.figures = RouteFiguresTable(id="figures")
        self.routes: list[RouteInfo] = []

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield self.route_list
            yield self.form
        yield self.figures

    def on_mount(self) -> None:
        self.route_list.border_title = "routes"
        self.figures.border_title = "figures"

    def show_routes(self, routes: list[RouteInfo]) -> None:
        """List ``routes`` (the OpenAPI's order); the form is filled with the first one."""
        self.routes = routes
        self.route_list.clear_options()
        if not routes:
            self.route_list.add_option(Option(NO_OPENAPI, disabled=True))
            return
        self.route_list.add_options(
            Option(route.label, id=str(i)) for i, route in enumerate(routes)
        )
        self.route_list.border_title = f"routes ({len(routes)})"
        self.route_list.highlighted = 0
        self.form.fill(routes[0])

    @on(OptionList.OptionHighlighted, "#routes")
    @on(OptionList.OptionSelected, "#routes")
    def _picked(self, event: OptionList.OptionHighlighted | OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id is None:
            return
        self.form.fill(self.routes[int(event.option.id)])
        if isinstance(event, OptionList.OptionSelected):
            # Enter on a route: on to the form, to adjust it or run it (Enter again)
            self.form.path.focus()


class StallsView(Vertical):
    """The stalls table above the picked stall's detail; ``l`` toggles library frames."""

    DEFAULT_CSS = """
    StallsView StallTable { height: 8; }
    StallsView StallDetail { height: 1fr; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("l", "toggle_library", "Library frames"),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.table = StallTable(id="stall-table")
        self.detail = StallDetail(id="stall-detail")

    def compose(self) -> ComposeResult:
        yield self.table
        yield self.detail

    def action_toggle_library(self) -> None:
        self.detail.library = not self.detail.library
