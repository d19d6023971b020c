"""The database pane's status lines: which backend is live, and the ORM's pool.

Each is one line that never wraps (the form below it must not move): a long location is
shortened from the left, where the directories are, keeping the file or database name;
the whole of it is in the tooltip.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widget import Widget


def _shortened(location: str, room: int) -> str:
    """``location`` in ``room`` cells, the directories elided first:
    ``sqlite:///…/explorer.sqlite3``, then ``…plorer.sqlite3``."""
    if len(location) <= room:
        return location
    _, sep, name = location.rpartition("/")
    scheme = ""
    if "://" in location:
        end = location.index("://") + 3
        # sqlite:////abs/path keeps the slash of its absolute path: sqlite:///…/file
        scheme = location[:end] + ("/" if location[end:].startswith("/") else "")
    short = f"{scheme}…/{name}"
    if sep and len(short) <= room:
        return short
    if sep and len(name) + 2 <= room:
        return f"…/{name}"
    return "…" + location[-max(1, room - 1) :]


def backend_line(status: dict[str, Any] | None, width: int = 200) -> Text:
    """Which backend is live, or why none is; the first thing the pane says."""
    text = Text(no_wrap=True, overflow="ellipsis")
    if status is None:
        return text.append("asking the server which database is live…", style="dim")
    state = status["state"]
    if state in ("connecting", "seeding") and status.get("backend") is None:
        wanted = status.get("requested") or "the SQLite file"
        progress = f" {status['seed_progress']:.0%}" if state == "seeding" else ""
        return text.append(f"{state}{progress}: {wanted}…", style="bold yellow")
    if state == "unavailable":
        text.append("no database: ", style="bold red")
        text.append(str(status.get("error")), style="red")
        return text.append(" (the other panes keep working)", style="dim")
    backend = status["backend"]
    name = "PostgreSQL" if backend == "postgresql" else "SQLite"
    text.append(f"● {name}", style="bold green")
    text.append(f" via {status['driver']}", style="bold")
    orm = Text(f" · ORM {status['orm']}", style="dim")
    tail = Text()
    if state == "seeding":
        tail.append(f" · seeding {status['seed_progress']:.0%}", style="bold yellow")
    location = str(status["location"])
    room = width - text.cell_len - orm.cell_len - tail.cell_len - 3
    name = location.rpartition("/")[2]
    if room < len(name) + 2:  # the ORM's dialect gives way before the database's name
        orm = Text()
        room = width - text.cell_len - tail.cell_len - 3
    text.append_text(orm)
    text.append(" · ", style="dim")
    text.append(_shortened(location, max(8, room)))
    text.append_text(tail)
    if status.get("fallback_reason"):
        # what happened first: the line is cut at the pane's edge (the tooltip has it all)
        text.append("\n⚠ fell back to SQLite: ", style="bold yellow")
        text.append(f"{status['requested']} not usable: ", style="yellow")
        text.append(str(status["fallback_reason"]), style="bold yellow")
    return text


class BackendLine(Widget):
    """The backend line, drawn for the width it has (two lines after a fallback)."""

    DEFAULT_CSS = """
    BackendLine { height: auto; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.status: dict[str, Any] | None = None

    def show(self, status: dict[str, Any] | None) -> None:
        """Draw ``status`` (a ``GET /db/status`` body); relayout only if the height changes."""
        lines = self._lines(self.status)
        self.status = status
        self.tooltip = self.tooltip_of(status)
        self.refresh(layout=self._lines(status) != lines)

    @staticmethod
    def _lines(status: dict[str, Any] | None) -> int:
        return 2 if status and status.get("fallback_reason") else 1

    @staticmethod
    def tooltip_of(status: dict[str, Any] | None) -> str | None:
        if not status or not status.get("location"):
            return None
        tip = str(status["location"])
        if status.get("fallback_reason"):
            tip += f"\n{status['requested']} not usable: {status['fallback_reason']}"
        return tip

    def render(self) -> Text:
        return backend_line(self.status, self.content_size.width or 200)

    def get_content_height(self, container: Any, viewport: Any, width: int) -> int:
        return self._lines(self.status)


def orm_line(status: dict[str, Any] | None) -> Text:
    """``ORM pool 0/5 out · commits 3 · rollbacks 1 · pool-per-request opened 0``."""
    text = Text(no_wrap=True, overflow="ellipsis")
    if status is None or not status.get("orm_pool"):
        return text
    orm = status["orm_pool"]
    text.append(f"{'ORM pool':<9}", style="bold")
    text.append(f"{orm['checked_out']}/{orm['size']} out")
    text.append(f" · commits {orm['commits']} · rollbacks {orm['rollbacks']}")
    opened = int(status["per_request_opened"])
    text.append(f" · pool-per-request opened {opened}", style="bold red" if opened else "dim")
    return text
