"""Driving the explorer in Pilot tests: the app, opening a pane, leaving a field, quitting.

Every pane's tests open their pane the same way, live (a real server behind it) or frozen
(for a snapshot: the pane drawn, its live figures about to be replaced by fixed ones). The
steps live here once; each test file keeps only what is particular to its pane.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Input

from explorer.app import ExplorerApp
from explorer.pane import PatternPane
from explorer.widgets.top_bar import TopBar
from server.settings import Settings
from tests.conftest import eventually
from tests.frozen import FrozenMonitor, key_of
from tests.layout import problems_of

PaneT = TypeVar("PaneT", bound=PatternPane)
ResultT = TypeVar("ResultT")

#: what the top bar shows in a snapshot, whatever port the test's server got
FROZEN_URL = "http://127.0.0.1:8000"


async def settle(
    pilot: Pilot[Any], condition: Callable[[], bool], what: str, within: float = 30.0
) -> None:
    """Pause until ``condition()`` holds; fail, saying ``what`` was awaited and where the
    focus is, after ``within`` seconds. Never an unbounded wait: a condition that never
    comes is one failed test, not a run that hangs until CI's limit."""
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            app = pilot.app
            raise AssertionError(
                f"{what}: not within {within} s (focused: {app.focused!r}, "
                f"slug: {getattr(app, 'current_slug', None)!r})"
            )
        await pilot.pause(0.02)


def live_app(data_dir: Path) -> ExplorerApp:
    """The explorer with its real monitor, on a free port, with its own data directory."""
    return ExplorerApp(Settings(port=0, data_dir=data_dir))


def frozen_app(data_dir: Path | None = None, monitor: FrozenMonitor | None = None) -> ExplorerApp:
    """The explorer for a snapshot: a monitor that stands still (``monitor``, or a new one)."""
    settings = Settings(port=0) if data_dir is None else Settings(port=0, data_dir=data_dir)
    return ExplorerApp(settings, monitor_source=monitor or FrozenMonitor())


@asynccontextmanager
async def running(
    size: tuple[int, int], ready: Callable[[ExplorerApp, Pilot[Any]], Awaitable[None]]
) -> AsyncIterator[tuple[ExplorerApp, Pilot[Any]]]:
    """The explorer (its real monitor, the default data directory) running at ``size``,
    once ``ready`` has waited for what the test needs: the app and its pilot."""
    app = ExplorerApp(Settings(port=0))
    async with app.run_test(size=size) as pilot:
        await ready(app, pilot)
        yield app, pilot


async def open_live(
    app: ExplorerApp, pilot: Pilot[Any], pane: type[PaneT], within: float = 5.0
) -> PaneT:
    """Once the server answers and ``pane`` is mounted, open it with its menu key."""
    await eventually(lambda: app.context is not None and bool(app.query(pane)), within=within)
    await pilot.press(key_of(pane))
    return app.query_one(pane)


@asynccontextmanager
async def live_pane(
    data_dir: Path,
    size: tuple[int, int],
    open_pane: Callable[[ExplorerApp, Pilot[Any]], Awaitable[PaneT]],
) -> AsyncIterator[tuple[ExplorerApp, Pilot[Any], PaneT]]:
    """The explorer running at ``size``, its pane opened by ``open_pane`` (a test file's own,
    which waits for whatever that pane needs first): the app, its pilot and the pane."""
    app = live_app(data_dir)
    async with app.run_test(size=size) as pilot:
        yield app, pilot, await open_pane(app, pilot)


async def open_frozen(pilot: Pilot[Any], pane: type[PaneT]) -> tuple[ExplorerApp, PaneT]:
    """For a snapshot: ``pane`` opened as soon as it is mounted, the top bar's URL fixed."""
    app = pilot.app
    assert isinstance(app, ExplorerApp)
    await settle(pilot, lambda: bool(app.query(pane)), f"{pane.__name__} mounted")
    await pilot.press(key_of(pane))
    app.query_one(TopBar).url = FROZEN_URL
    return app, app.query_one(pane)


async def still_picture(pilot: Pilot[Any]) -> None:
    """The last steps before a snapshot: no toasts (they come and go), no focus (no
    blinking cursor in the picture), then a moment to draw."""
    await pilot.pause(0.1)
    pilot.app.clear_notifications()
    pilot.app.set_focus(None)
    await pilot.pause(0.2)


async def escape_leaves_the_field(pilot: Pilot[Any], field: Widget | None = None) -> None:
    """Escape (in ``field``, focused first, if given) takes the focus out of every Input."""
    if field is not None:
        field.focus()
        await pilot.pause()
    await pilot.press("escape")
    assert not isinstance(pilot.app.focused, Input)


async def quit_with_q(pilot: Pilot[Any], within: float = 10.0) -> None:
    """Press q and wait until the app has its return code (the caller checks which)."""
    await pilot.press("q")
    await eventually(lambda: pilot.app.return_code is not None, within=within)


async def press_for(
    pilot: Pilot[Any], key: str, result: Callable[[], ResultT | None], within: float
) -> ResultT:
    """Press ``key`` and wait until ``result()`` gives something (the caller has cleared
    it first), then a moment to draw it: what it gave."""
    await pilot.press(key)
    await eventually(lambda: result() is not None, within=within)
    await pilot.pause()
    given = result()
    assert given is not None
    return given


async def whole_before_and_after_a_run(
    pilot: Pilot[Any],
    pane: PatternPane,
    results: tuple[str, ...],
    done: Callable[[], bool],
    within: float,
) -> None:
    """Nothing of ``pane`` cut or hidden (see :func:`tests.layout.problems_of`, its
    ``results`` shown) before r, nor once its run is ``done`` (waited for ``within`` s)."""
    await pilot.pause(0.1)
    assert problems_of(pane, results) == []
    await pilot.press("r")
    await eventually(done, within=within)
    await pilot.pause(0.1)
    assert problems_of(pane, results) == []


async def enter_in(pilot: Pilot[Any], field: Input, value: str | None = None) -> None:
    """Focus ``field`` (its value set to ``value`` first, when given) and press Enter."""
    if value is not None:
        field.value = value
    field.focus()
    await pilot.pause()
    await pilot.press("enter")


async def enter_and_click(pilot: Pilot[Any], field: str, value: str, button: str) -> None:
    """Type ``value`` into the Input ``field`` (a selector) and click ``button``."""
    pilot.app.query_one(field, Input).value = value
    await pilot.click(button)


async def tab_order(pilot: Pilot[Any], first: Widget, stops: int) -> list[Widget]:
    """The ``stops`` widgets that hold the focus in turn, Tab after Tab, from ``first``
    (focused here); each time something has it."""
    first.focus()
    await pilot.pause()
    visited = []
    for _ in range(stops):
        focused = pilot.app.focused
        assert focused is not None
        visited.append(focused)
        await pilot.press("tab")
    return visited


def told_invalid_input(app: ExplorerApp) -> bool:
    """Whether the app has notified "Invalid input" (a pane's refusal of a field)."""
    return any("Invalid input" in (n.title or "") for n in app._notifications)
