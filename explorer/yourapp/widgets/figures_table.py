"""The load run's figures, one row per route: requests, errors, p50, p99 and requests/s."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from textual.widgets import DataTable

#: (column key, title, width): fixed, so a figure that grows never moves the table
COLUMNS = (
    ("route", "route", 34),
    ("requests", "requests", 9),
    ("errors", "errors", 7),
    ("p50", "p50", 10),
    ("p99", "p99", 10),
    ("rps", "req/s", 8),
)
#: at most this many routes are listed (a run drives a handful)
MAX_ROWS = 50


class Figures(Protocol):
    """What the load driver measures for one route (``load_driver.RouteFigures``)."""

    @property
    def route(self) -> str: ...
    @property
    def requests(self) -> int: ...
    @property
    def errors(self) -> int: ...
    @property
    def p50_ms(self) -> float: ...
    @property
    def p99_ms(self) -> float: ...
    @property
    def rps(self) -> float: ...


def _ms(value: float) -> str:
    return f"{value:,.1f} ms" if value < 1000 else f"{value / 1000:,.2f} s"


def cells_of(figures: Figures) -> tuple[str, ...]:
    route = figures.route if len(figures.route) <= 34 else figures.route[:33] + "…"
    return (
        route,
        f"{figures.requests:>8,}",
        f"{figures.errors:>6,}",
        f"{_ms(figures.p50_ms):>9}",
        f"{_ms(figures.p99_ms):>9}",
        f"{figures.rps:>7,.1f}",
    )


class RouteFiguresTable(DataTable[str]):
    """Rows updated in place while a run goes (4 times a second), never rebuilt."""

    DEFAULT_CSS = """
    RouteFiguresTable { width: 1fr; height: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, id=id)

    def on_mount(self) -> None:
        for key, title, width in COLUMNS:
            self.add_column(title, width=width, key=key)

    def show(self, figures: Mapping[str, Figures]) -> None:
        """The routes' figures now; a route not seen before gets a row (the oldest goes
        beyond :data:`MAX_ROWS`)."""
        for key, route_figures in figures.items():
            cells = cells_of(route_figures)
            if key in self.rows:
                for (column, _, _), value in zip(COLUMNS, cells, strict=True):
                    if self.get_cell(key, column) != value:
                        self.update_cell(key, column, value)
            else:
                self.add_row(*cells, key=key)
        while self.row_count > MAX_ROWS:
            self.remove_row(next(iter(self.rows)))

    def figures_of(self, key: str) -> tuple[str, ...]:
        """The cells shown for ``key`` (stripped), for tests and the log."""
        return tuple(str(cell).strip() for cell in self.get_row(key))
