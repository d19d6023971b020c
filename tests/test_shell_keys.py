"""Keys always answer: the code view from every entry point, Escape, q from any widget."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import OptionList, RadioButton

from explorer.app import ExplorerApp
from explorer.registry import PANES, key_of
from explorer.widgets.code_view import CodeView
from explorer.widgets.stall_inspector import StallInspector
from fastasync_probe.monitor import Stall
from tests.conftest import eventually
from tests.pilots import quit_with_q, running


async def started(app: ExplorerApp, pilot: Pilot[Any]) -> None:
    """Wait until the server answers and the gauges are up."""
    await eventually(lambda: app.context is not None and app._gauges is not None, within=20)
    await pilot.pause(0.2)


async def focus_on(widget: Widget) -> None:
    """Give ``widget`` the focus, and wait until it has it."""
    widget.focus()
    await eventually(lambda: widget.has_focus)


def focus_is_live(app: ExplorerApp) -> None:
    """Focus is on a widget still in the app: keys reach a binding."""
    focused = app.screen.focused
    assert focused is None or focused.is_attached, focused


async def showing(app: ExplorerApp, slug: str) -> None:
    """Wait until the pane ``slug`` is the current one."""
    await eventually(lambda: app.current_slug == slug)


def fake_stall(seq: int) -> Stall:
    """A stall in a real handler line, as the watchdog reports one."""
    from server.patterns.basics import router as basics

    return Stall(
        seq,
        time.time(),
        120.0,
        "blocking",
        "server/patterns/basics/router.py:95 in blocking_sleep",
        "GET /basics/blocking",
        filename=basics.__file__,
        lineno=95,
    )


@pytest.mark.parametrize(
    ("size", "visited"), [((100, 30), tuple(range(len(PANES)))), ((140, 45), (0, 3, 6))]
)
async def test_code_view_from_every_entry_point_never_locks_the_keys(
    size: tuple[int, int], visited: tuple[int, ...]
) -> None:
    """Each pane's own code (c, keys inside, c and Escape), then a stall's code (s, Enter)
    and straight to the pane's code: the sequence that left focus on a removed panel.
    After each, a digit still switches panes (the next round) and q quits at the end."""
    async with running(size, started) as (app, pilot):
        inspector = app.query_one(StallInspector)
        for index in visited:
            await pilot.press(key_of(index) or "")
            await showing(app, PANES[index].SLUG)
            await pilot.press("c")
            await eventually(lambda: app.showing_code)
            await pilot.press("tab", "right", "down", "pagedown", "shift+tab")
            await pilot.press("c")
            await eventually(lambda: not app.showing_code)
            focus_is_live(app)
            await pilot.press("c", "escape")
            await eventually(lambda: not app.showing_code)
            focus_is_live(app)
            inspector.add_stalls([fake_stall(10_000 + index)])
            await pilot.press("s")
            await eventually(lambda: inspector.has_focus)
            await pilot.press("enter")
            await eventually(lambda: app.showing_code)
            await pilot.press("c")
            await eventually(lambda: not app.showing_code)
            await pilot.press("c")
            await eventually(lambda: app.showing_code)
            await pilot.press("escape")
            await eventually(lambda: not app.showing_code)
            focus_is_live(app)
        await quit_with_q(pilot)
    assert app.return_code == 0


async def test_focus_left_on_a_removed_widget_is_mended() -> None:
    """Whatever leaves focus on a widget that is gone, the keys come back at once."""
    async with running((100, 30), started) as (app, pilot):
        stray = RadioButton("gone")
        await app.query_one("#body").mount(stray)
        stray.focus()
        await pilot.pause()
        await stray.remove()
        app.screen.set_focus(stray)  # what a recompose used to do
        await eventually(lambda: app.screen.focused is not stray, within=2)
        await pilot.press("2")
        await eventually(lambda: app.current_slug == PANES[1].SLUG)
        await quit_with_q(pilot)
    assert app.return_code == 0


def _nav(app: ExplorerApp) -> Widget:
    return app.query_one("#nav", OptionList)


def _first_radio_set(app: ExplorerApp) -> Widget:
    return app.query_one("#pane-basics RadioSet")


def _number_field(app: ExplorerApp) -> Widget:
    return app.query_one("#pane-basics #count")


def _button(app: ExplorerApp) -> Widget:
    return app.query_one("#pane-basics #run")


def _stall_table(app: ExplorerApp) -> Widget:
    return app.query_one(StallInspector)


def _tab_strip(app: ExplorerApp) -> Widget:
    return app.query_one("#bottom Tabs")


def _select(app: ExplorerApp) -> Widget:
    app.action_open_pane(1)  # Concurrency: its strategy menu
    return app.query_one("#pane-concurrency Select")


def _code_switch(app: ExplorerApp) -> Widget:
    app.action_toggle_code()
    return app.query_one(CodeView).query_one("Tabs")


def _code_panel(app: ExplorerApp) -> Widget:
    app.action_toggle_code()
    return app.query_one(CodeView).panels()[0]


FOCUS_TARGETS: dict[str, Callable[[ExplorerApp], Widget]] = {
    "menu": _nav,
    "radio set": _first_radio_set,
    "number field": _number_field,
    "button": _button,
    "stall table": _stall_table,
    "tab strip": _tab_strip,
    "select": _select,
    "code switch": _code_switch,
    "code panel": _code_panel,
}


@pytest.mark.parametrize("kind", list(FOCUS_TARGETS))
async def test_q_quits_whatever_has_the_focus(kind: str) -> None:
    async with running((100, 30), started) as (app, pilot):
        target = FOCUS_TARGETS[kind](app)
        await pilot.pause(0.3)
        await focus_on(target)
        await quit_with_q(pilot)
    assert app.return_code == 0


async def test_a_text_field_keeps_q_as_text_and_ctrl_q_still_quits() -> None:
    async with running((100, 30), started) as (app, pilot):
        await pilot.press("4")  # WebSocket: its echo field takes any text
        field = app.query_one("#pane-ws #echo-text")
        await focus_on(field)
        await pilot.press("q")
        assert app.return_code is None
        assert getattr(field, "value", None) == "q"
        await pilot.press("escape")  # out of the field: q is the app's key again
        await eventually(lambda: not field.has_focus)
        await pilot.press("ctrl+q")
        await eventually(lambda: app.return_code is not None, within=10)
    assert app.return_code == 0


async def test_a_number_field_refuses_what_it_cannot_hold() -> None:
    """999 in a 1-100 field, then keys meant for the app: they are not collected as text."""
    async with running((100, 30), started) as (app, pilot):
        field = app.query_one("#pane-basics #count")
        await focus_on(field)
        await pilot.press("end", "backspace", *"999")
        await pilot.press("r")  # the app's run: the field is refused with a toast
        await pilot.pause(0.2)
        assert any("Invalid input" in (n.title or "") for n in app._notifications)
        await pilot.press(*"38")
        assert getattr(field, "value", None) == "999"  # full: no more digits
        await pilot.press("b")  # a letter is the app's key, not text
        await eventually(lambda: app.blocking_switch.enabled)
        assert getattr(field, "value", None) == "999"
        await pilot.press("escape")
        await eventually(lambda: not field.has_focus)
        await pilot.press("2")
        await eventually(lambda: app.current_slug == PANES[1].SLUG)


async def test_s_focuses_the_newest_stall_and_enter_opens_it() -> None:
    async with running((100, 30), started) as (app, pilot):
        inspector = app.query_one(StallInspector)
        inspector.add_stalls([fake_stall(20_001), fake_stall(20_002)])
        await pilot.press("s")
        await eventually(lambda: inspector.has_focus)
        row_key, _ = inspector.coordinate_to_cell_key(inspector.cursor_coordinate)
        assert row_key.value == "20002"
        await pilot.press("enter")
        await eventually(lambda: app.showing_code)
        (block,) = app.query_one(CodeView).blocks
        assert block.title.startswith("stall #20002")
        assert 95 in block.highlight


async def test_resizing_to_tiny_and_back_leaves_no_scrollbar_on_the_menu() -> None:
    async with running((100, 30), started) as (app, pilot):
        nav = app.query_one("#nav", OptionList)
        for size in ((80, 24), (60, 15), (100, 30)):
            await pilot.resize_terminal(*size)
            await pilot.pause(0.3)
        assert not nav.show_vertical_scrollbar
        assert not nav.show_horizontal_scrollbar
        assert nav.virtual_size.height == len(PANES)
