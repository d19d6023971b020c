"""The Tasks tab: ``t`` shows it with a real deadlock flagged, Enter opens the code where a
task is suspended, Escape comes back; hidden, it takes no snapshot. Snapshots, frozen."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import TabbedContent

from explorer.app import ExplorerApp
from explorer.task_feed import TaskFeed
from explorer.widgets.code_view import CodeView
from explorer.widgets.task_inspector import TaskInspector, TaskSummary
from explorer.widgets.top_bar import TopBar
from server.settings import Settings
from tests.conftest import FrozenSnapshot, eventually
from tests.frozen import FrozenMonitor
from tests.pilots import FROZEN_URL, live_app, settle, still_picture
from tests.test_task_inspector import deadlock, take_in_order

SIZES = [(100, 30), (140, 45)]


def feed_of(app: ExplorerApp) -> TaskFeed:
    feed = app._tasks
    assert isinstance(feed, TaskFeed)
    return feed


async def ready(app: ExplorerApp, pilot: Pilot[Any]) -> None:
    await eventually(lambda: app.context is not None and feed_of(app)._timer is not None)
    await pilot.pause(0.1)


def shown_names(app: ExplorerApp) -> list[str]:
    table = app.query_one(TaskInspector)
    return [str(table.get_row_at(i)[1]) for i in range(table.row_count)]


@pytest.mark.parametrize("size", SIZES, ids=["100x30", "140x45"])
async def test_t_shows_a_deadlock_and_enter_opens_its_code(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    app = live_app(tmp_path)
    async with app.run_test(size=size) as pilot:
        await ready(app, pilot)
        async with deadlock():
            await pilot.press("t")
            assert app.query_one("#bottom", TabbedContent).active == "tasks"
            await eventually(lambda: "DEADLOCK" in str(app.query_one(TaskSummary).render()))
            summary = str(app.query_one(TaskSummary).render())
            assert "worker-1 ⇄ worker-2" in summary or "worker-2 ⇄ worker-1" in summary
            assert "lock A" in summary
            assert "lock B" in summary
            # the deadlocked tasks are the first rows, marked, with the UI folded below
            names = shown_names(app)
            assert set(names[:2]) == {"worker-1", "worker-2"}
            assert any(name.startswith("explorer UI ×") for name in names)
            table = app.query_one(TaskInspector)
            assert str(table.get_row_at(0)[0]) == "DEAD"
            assert table.region.height >= 3  # rows visible at this size, not just a header
            table.move_cursor(row=0)
            table.focus()
            await pilot.press("enter")
            await eventually(lambda: app.showing_code)
            (block,) = app.query_one(CodeView).blocks
            assert block.title.startswith("task worker-")
            assert block.filename == take_in_order.__code__.co_filename
            assert "async with second:" in block.text
            assert not feed_of(app).visible  # the tab is hidden behind the code
            await pilot.press("escape")
            await eventually(lambda: not app.showing_code)
            assert app.query_one("#bottom", TabbedContent).active == "tasks"
            assert feed_of(app).visible


async def test_no_snapshot_is_taken_while_the_tab_is_hidden(tmp_path: Path) -> None:
    app = live_app(tmp_path)
    async with app.run_test(size=(140, 45)) as pilot:
        await ready(app, pilot)
        feed = feed_of(app)
        await asyncio.sleep(1.5)
        assert feed.taken == 0  # never shown: never taken
        await pilot.press("t")
        await eventually(lambda: feed.taken >= 2, within=4.0)  # once now, then once a second
        await pilot.press("l")
        await pilot.pause(0.1)
        hidden_at = feed.taken
        await asyncio.sleep(2.5)
        assert feed.taken == hidden_at
        await pilot.press("t")
        await eventually(lambda: feed.taken > hidden_at, within=2.0)


# -- snapshots -----------------------------------------------------------------------------


def _row(task_id: int, name: str, **fields: Any) -> dict[str, Any]:
    row = {
        "id": task_id,
        "name": name,
        "coro": "take_in_order",
        "state": "pending",
        "age_s": 12.4,
        "where": None,
        "where_short": None,
        "waits_on": {"kind": "none", "detail": "ready to run", "object_id": None, "label": None},
        "waiting_s": None,
        "holds": [],
        "route": None,
        "request_id": None,
        "created_at": None,
        "flags": [],
    }
    row.update(fields)
    return row


def _lock_wait(label: str, holder: str) -> dict[str, Any]:
    return {"kind": "lock", "detail": f"{label}, held by {holder}", "object_id": 1, "label": label}


def _sleep_wait(detail: str) -> dict[str, Any]:
    return {"kind": "sleep", "detail": detail, "object_id": None, "label": None}


FROZEN_TASKS: dict[str, Any] = {
    "tasks": [
        _row(
            1,
            "worker-1",
            where_short="server/patterns/locks/router.py:41",
            waits_on=_lock_wait("lock B", "worker-2"),
            waiting_s=8.2,
            route="POST /locks/deadlock",
            request_id="r7",
            created_at="server/patterns/locks/router.py:58",
            flags=["in_cycle", "long_wait"],
        ),
        _row(
            2,
            "worker-2",
            where_short="server/patterns/locks/router.py:41",
            waits_on=_lock_wait("lock A", "worker-1"),
            waiting_s=8.2,
            route="POST /locks/deadlock",
            request_id="r7",
            created_at="server/patterns/locks/router.py:59",
            flags=["in_cycle", "long_wait"],
        ),
        _row(
            3,
            "cache:user-42",
            coro="TtlCache._compute",
            age_s=2.5,
            where_short="server/patterns/cache/ttl_cache.py:170",
            waits_on={
                "kind": "sleep",
                "detail": "asyncio.sleep(5)",
                "object_id": None,
                "label": None,
            },
            waiting_s=2.5,
            route="GET /cache/item",
            request_id="r9",
            created_at="server/patterns/cache/ttl_cache.py:154",
            flags=[],
        ),
        _row(
            4,
            "uvicorn",
            coro="Server.serve",
            age_s=64.0,
            where_short="uvicorn/server.py:248",
            waits_on={
                "kind": "sleep",
                "detail": "asyncio.sleep(0.1)",
                "object_id": None,
                "label": None,
            },
            waiting_s=0.04,
            created_at="server/runner.py:137",
        ),
        *(
            _row(10 + i, f"message pump {i}", coro="MessagePump._process_messages", age_s=64.0)
            for i in range(40)
        ),
    ],
    "cycles": [
        {"task_ids": [1, 2], "tasks": ["worker-1", "worker-2"], "locks": ["lock B", "lock A"]}
    ],
    "never_retrieved": [],
    "pending_at_shutdown": [],
    "counts": {"total": 44, "listed": 44, "by_state": {"pending": 44}},
    "owners_known": True,
    "cost_ms": 0.6,
}


def frozen_tasks_app(data_dir: Path) -> ExplorerApp:
    return ExplorerApp(
        Settings(port=0, data_dir=data_dir),
        monitor_source=FrozenMonitor(),
        task_source=lambda: FROZEN_TASKS,
    )


async def tasks_tab(pilot: Pilot[Any]) -> None:
    app = pilot.app
    assert isinstance(app, ExplorerApp)
    await settle(
        pilot, lambda: app.context is not None and feed_of(app)._timer is not None, "task feed"
    )
    await pilot.press("t")
    app.query_one(TopBar).url = FROZEN_URL
    await still_picture(pilot)


@pytest.mark.parametrize("size", SIZES, ids=["100x30", "140x45"])
def test_tasks_tab_with_a_deadlock(
    frozen_snapshot: FrozenSnapshot, tmp_path: Path, size: tuple[int, int]
) -> None:
    assert frozen_snapshot(size, tasks_tab, frozen_tasks_app(tmp_path))
