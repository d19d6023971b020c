"""Database pane: the live backend, a pool gauge, and the guide's database patterns run on it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx
from rich.console import Group
from rich.syntax import Syntax
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Button, Input, Label, Select, Static

from server.db.pool import GaugedPool
from server.monitor import Stall
from server.routes import db as routes

from ..code_source import SourceBlock, source_of, with_highlight
from ..widgets.db_pool_gauge import PoolGauge
from ..widgets.number_field import invalid_fields, number_input
from ..wording import counted
from .base import PatternPane

#: how often the gauge asks /db/status while the pane is on screen
POLL_S = 0.25
#: requests per way in the "fetch one row" comparison
FETCH_REPEATS = 10
#: extra requests beyond the pool size in the exhaustion demo
EXHAUST_EXTRA = 6


@dataclass(frozen=True)
class Action:
    """One entry of the pattern menu: what it runs and what it teaches."""

    key: str
    label: str
    lesson: str
    pitfall: str
    code: tuple[Callable[..., Any], ...]


ACTIONS: tuple[Action, ...] = (
    Action(
        "fetch",
        "Fetch a row: pool · session · pool per request",
        f"{FETCH_REPEATS} requests each way. A connection from the lifespan pool costs "
        "nothing to get; the AsyncSession dependency commits or rolls back around the "
        "handler; the guide's dependency opens a whole pool per request.",
        "",
        (routes.get_user, routes.get_session, routes.per_request_connection),
    ),
    Action(
        "dashboard",
        "Dashboard: gather on the pool",
        "Five 50 ms queries with asyncio.gather, each on its own pooled connection: "
        "the page takes one query's time.",
        "Blocking mode: the guide's mistake, gather on ONE connection.",
        (routes.dashboard_on_pool,),
    ),
    Action(
        "one_connection",
        "Dashboard: gather on ONE connection (guide)",
        "The guide's mistake. asyncpg refuses: InterfaceError, another operation is in "
        "progress. aiosqlite accepts and runs them one after another.",
        "",
        (routes.dashboard_on_one_connection,),
    ),
    Action(
        "one_session",
        "Dashboard: gather on ONE AsyncSession",
        "The same mistake through SQLAlchemy: an error while the session opens its "
        "connection, else the queries wait for each other.",
        "",
        (routes.dashboard_on_one_session,),
    ),
    Action(
        "batch",
        "Insert: batch vs row by row",
        "The same rows with one executemany, then one INSERT per row: time and round trips.",
        "Blocking mode: both runs insert row by row.",
        (routes.insert_batch, routes.insert_row_by_row),
    ),
    Action(
        "prefetch",
        "Posts with comments: prefetch vs N+1",
        "50 posts with author and comments: a JOIN plus one IN query, then the N+1 way "
        "(1 query + 2 per post).",
        "Blocking mode: both runs take the N+1 way.",
        (routes.posts_prefetch, routes.posts_n_plus_one),
    ),
    Action(
        "exhaust",
        "Pool exhaustion: more requests than connections",
        f"Pool size + {EXHAUST_EXTRA} requests each hold a connection 1.5 s; with a 0.5 s "
        "acquire timeout the excess gets 503 at once. Watch the gauge's waiters.",
        "Blocking mode: no acquire timeout, the excess waits its turn (how a pool hangs).",
        (routes.hold_connection, GaugedPool.acquire),
    ),
    Action(
        "report",
        "Slow report: async driver vs sync sqlite3",
        "A 0.3 s report query on the pool: the loop keeps serving meanwhile.",
        "Blocking mode: sync sqlite3 inside async def. The loop stalls 0.3 s; the "
        "stall inspector names the line.",
        (routes.report_async, routes.report_sync_sqlite3),
    ),
    Action(
        "notes",
        "Notes: Motor (MongoDB) and Tortoise ORM",
        "From the guide, shown as snippets only: NOT RUN (no MongoDB server here, and "
        "Tortoise is not installed).",
        "",
        (),
    ),
)
ACTION_BY_KEY = {action.key: action for action in ACTIONS}

NOTES = Group(
    Text(
        "These two are from the guide and are NOT RUN here: there is no MongoDB server on "
        "this machine and Tortoise ORM is not a dependency. The rules the other patterns "
        "show apply to both.",
        style="bold yellow",
    ),
    Text("\nMotor (async MongoDB): one client for the app, opened in the lifespan.", "bold"),
    Syntax(
        "from motor.motor_asyncio import AsyncIOMotorClient\n\n"
        "@asynccontextmanager\n"
        "async def lifespan(app: FastAPI):\n"
        "    # the client holds its own connection pool: create it once, not per request\n"
        '    app.state.mongo = AsyncIOMotorClient("mongodb://localhost:27017",\n'
        "                                         maxPoolSize=20, serverSelectionTimeoutMS=2000)\n"
        "    yield\n"
        "    app.state.mongo.close()\n\n"
        '@app.get("/users/{user_id}")\n'
        "async def get_user(user_id: str, request: Request):\n"
        '    user = await request.app.state.mongo.app.users.find_one({"_id": user_id})\n'
        "    if user is None:\n"
        "        raise HTTPException(404)\n"
        "    return user",
        "python",
        theme="ansi_dark",
    ),
    Text(
        "Motor has no per-request session to misuse, but the same pitfalls apply: a client "
        "per request (a pool per request), and no serverSelectionTimeoutMS (a request hangs "
        "30 s when MongoDB is down instead of failing fast).",
        style="dim",
    ),
    Text("\nTortoise ORM: an async ORM with Django-style models.", "bold"),
    Syntax(
        "from tortoise.contrib.fastapi import register_tortoise\n\n"
        "class User(Model):\n"
        "    id = fields.IntField(pk=True)\n"
        "    name = fields.CharField(80)\n\n"
        '@app.get("/users/{user_id}")\n'
        "async def get_user(user_id: int):\n"
        "    # prefetch_related avoids the N+1 queries the posts pattern shows\n"
        '    return await User.get(id=user_id).prefetch_related("orders")\n\n'
        'register_tortoise(app, db_url="postgres://...", modules={"models": [__name__]})',
        "python",
        theme="ansi_dark",
    ),
    Text(
        "register_tortoise opens and closes the connections with the app (the lifespan "
        "rule). Awaiting user.orders without prefetch_related is Tortoise's N+1.",
        style="dim",
    ),
)


def backend_line(status: dict[str, Any] | None) -> Text:
    """Which backend is live, or why none is; the first thing the pane says."""
    text = Text()
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
    text.append(f" · ORM {status['orm']} · ", style="dim")
    text.append(str(status["location"]))
    if state == "seeding":
        text.append(f" · seeding {status['seed_progress']:.0%}", style="bold yellow")
    if status.get("fallback_reason"):
        text.append("\n⚠ ", style="bold yellow")
        text.append(f"{status['requested']} not usable: ", style="yellow")
        text.append(str(status["fallback_reason"]), style="bold yellow")
        text.append(" → fell back to SQLite", style="yellow")
    return text


def orm_line(status: dict[str, Any] | None) -> Text:
    text = Text()
    if status is None or not status.get("orm_pool"):
        return text
    orm = status["orm_pool"]
    text.append(f"{'ORM pool':<9}", style="bold")
    text.append(f"checked out {orm['checked_out']}/{orm['size']}")
    text.append(f" · session commits {orm['commits']} · rollbacks {orm['rollbacks']}")
    text.append(f" · per-request pools opened {status['per_request_opened']} conn.", style="dim")
    return text


class DbPane(PatternPane):
    """The live database and its pool, and the guide's patterns run against them."""

    SLUG: ClassVar[str] = "db"
    TITLE: ClassVar[str] = "Database & pool"
    SUMMARY: ClassVar[str] = "aiosqlite / asyncpg pool, AsyncSession, batch, N+1, exhaustion"

    DEFAULT_CSS = """
    DbPane #backend { height: auto; }
    DbPane #orm { height: 1; }
    DbPane #controls { height: auto; }
    DbPane #action { width: 56; }
    DbPane #controls Label { padding: 1 0 0 1; }
    DbPane #rows { width: 12; }
    DbPane #run { margin-left: 1; min-width: 8; }
    DbPane #lesson { height: auto; color: $text-muted; }
    DbPane #lesson.-blocking { color: $error; }
    DbPane #results { height: 1fr; border: round $primary 40%; }
    """

    class StatusUpdate(Message):
        """A fresh ``/db/status`` (``None``: the server did not answer)."""

        def __init__(self, status: dict[str, Any] | None) -> None:
            super().__init__()
            self.status = status

    class ActionDone(Message):
        """An action's requests came back: what to show, and the figures behind it."""

        def __init__(self, key: str, text: Text | Group, data: dict[str, Any]) -> None:
            super().__init__()
            self.key = key
            self.text = text
            self.data = data

    action_key: reactive[str] = reactive("dashboard", init=False)
    running: reactive[bool] = reactive(False, init=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Held, not queried: the status poll updates them at any time, teardown included.
        self._backend = Static(backend_line(None), id="backend")
        self._gauge = PoolGauge(id="gauge")
        self._orm = Static(id="orm")
        self._result = Static(id="result")
        self.status: dict[str, Any] | None = None
        #: the last action's figures (tests and the snapshot read them)
        self.result: dict[str, Any] | None = None
        self._began_wall = 0.0
        self._last_stall: Stall | None = None

    def compose(self) -> ComposeResult:
        yield self._backend
        yield self._gauge
        yield self._orm
        with Horizontal(id="controls"):
            yield Select(
                [(a.label, a.key) for a in ACTIONS],
                value=self.action_key,
                allow_blank=False,
                # the app's keys (digits, b, r, c, q) must reach it, not search the menu
                type_to_search=False,
                id="action",
            )
            yield Label("rows")
            yield number_input("rows", "1000", 1, 5000, "Rows to insert")
            yield Button("Run", id="run", variant="primary")
        yield Static(id="lesson")
        with VerticalScroll(id="results") as results:
            results.border_title = "result"
            yield self._result

    def on_mount(self) -> None:
        self.context.blocking.subscribe(lambda _: self._show_lesson())
        self._show_lesson()
        self.follow_status()

    def on_show(self) -> None:
        # Focus the menu, not the rows field: b, r and c must reach the app when the pane
        # opens (a focused Input would take them as text).
        self.query_one("#action", Select).focus()

    # -- the live status and gauge -----------------------------------------------------------

    @work(group="db-status")
    async def follow_status(self) -> None:
        """Poll /db/status while the pane is on screen (cheap: one small JSON, 4 Hz)."""
        while True:
            if self.display or self.status is None:
                try:
                    response = await self.context.http.get("/db/status")
                    response.raise_for_status()
                    self.post_message(self.StatusUpdate(response.json()))
                except (httpx.HTTPError, ValueError):
                    self.post_message(self.StatusUpdate(None))
            await asyncio.sleep(POLL_S)

    def on_db_pane_status_update(self, message: StatusUpdate) -> None:
        status = message.status
        if status == self.status:
            return
        self.status = status
        self._backend.update(backend_line(status))
        self._gauge.show(status.get("pool") if status else None)
        self._orm.update(orm_line(status), layout=False)

    # -- controls --------------------------------------------------------------------------

    @on(Select.Changed, "#action")
    def _action_changed(self, event: Select.Changed) -> None:
        if isinstance(event.value, str):
            self.action_key = event.value

    def watch_action_key(self) -> None:
        self._show_lesson()

    def _show_lesson(self) -> None:
        action = ACTION_BY_KEY[self.action_key]
        pitfall = self.context.blocking.enabled and bool(action.pitfall)
        lesson = self.query_one("#lesson", Static)
        lesson.update(action.pitfall if pitfall else action.lesson)
        lesson.set_class(pitfall, "-blocking")

    @on(Button.Pressed, "#run")
    def _run_pressed(self) -> None:
        self.action_run()

    def action_run(self) -> None:
        """Run the chosen pattern (the ``r`` key)."""
        if self.running:
            self.notify("Still running the last one.", severity="warning")
            return
        rows_field = self.query_one("#rows", Input)
        problems = invalid_fields(rows_field)
        if problems:
            self.notify(problems[0][1], title="Invalid input", severity="error")
            rows_field.focus()
            return
        key = self.action_key
        if key == "notes":
            self._show_result(key, NOTES, {"notes": True})
            return
        self.running = True
        self._began_wall = time.time()
        self._result.update(Text(f"running {ACTION_BY_KEY[key].label}…", style="dim italic"))
        self.send_action(key, int(rows_field.value))

    @work(exclusive=True, group="db-action")
    async def send_action(self, key: str, rows: int) -> None:
        """The requests behind each menu entry, over real HTTP; figures come back as data."""
        http = self.context.http
        try:
            if key == "fetch":
                data = await self._fetch_three_ways(http)
            elif key in ("dashboard", "one_connection", "one_session"):
                mode = {"dashboard": "pool"}.get(key, key)
                data = await _json(http.get("/db/dashboard", params={"mode": mode}))
            elif key == "batch":
                runs = []
                for method in ("batch", "row_by_row"):
                    body = {"rows": rows, "method": method}
                    runs.append(await _json(http.post("/db/batch-insert", json=body)))
                data = {"runs": runs}
            elif key == "prefetch":
                runs = []
                for strategy in ("prefetch", "n_plus_one"):
                    params = {"limit": 50, "strategy": strategy}
                    runs.append(await _json(http.get("/db/posts", params=params)))
                data = {"runs": runs}
            elif key == "exhaust":
                data = await self._exhaust(http)
            else:
                data = await _json(http.get("/db/slow-report", params={"seconds": 0.3}))
                await asyncio.sleep(self.context.stall_settle_s)
            self.post_message(self.ActionDone(key, Text(), data))
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            self.post_message(
                self.ActionDone(key, Text(), {"request_error": f"{type(exc).__name__}: {exc}"})
            )

    async def _fetch_three_ways(self, http: httpx.AsyncClient) -> dict[str, Any]:
        ways = []
        for via, path in (
            ("lifespan pool", "/db/users/{}"),
            ("AsyncSession", "/db/orm/users/{}"),
            ("pool per request", "/db/per-request-pool/users/{}"),
        ):
            took, opened = [], 0
            for user_id in range(1, FETCH_REPEATS + 1):
                began = time.perf_counter()
                user = await _json(http.get(path.format(user_id)))
                took.append(time.perf_counter() - began)
                opened += int(user["connections_opened"])
            ways.append({"via": via, "ms": 1000 * sum(took) / len(took), "opened": opened})
        missing = await http.get("/db/users/999999")
        return {"ways": ways, "unknown_id": f"{missing.status_code} {missing.json()['detail']}"}

    async def _exhaust(self, http: httpx.AsyncClient) -> dict[str, Any]:
        size = int(((self.status or {}).get("pool") or {}).get("size", 10))
        params = {"seconds": 1.5, "timeout_s": 0.5}
        began = time.perf_counter()
        responses = await asyncio.gather(
            *(http.get("/db/hold", params=params) for _ in range(size + EXHAUST_EXTRA))
        )
        wall = time.perf_counter() - began
        served = [r.json() for r in responses if r.status_code == 200]
        refused = [r.json()["detail"] for r in responses if r.status_code == 503]
        others = [r.status_code for r in responses if r.status_code not in (200, 503)]
        return {
            "requests": len(responses),
            "ok": len(served),
            "refused": len(refused),
            "other": others,
            "detail": refused[0] if refused else None,
            "max_wait_ms": max((s["waited_ms"] for s in served), default=0.0),
            "wall_ms": wall * 1000,
        }

    def on_db_pane_action_done(self, message: ActionDone) -> None:
        self.running = False
        data = message.data
        if "request_error" in data:
            text = Text(f"The requests failed: {data['request_error']}", style="bold red")
        else:
            text = self.describe(message.key, data)
        self._show_result(message.key, text, data)

    def _show_result(self, key: str, text: Text | Group, data: dict[str, Any]) -> None:
        self.result = {"key": key, **data}
        self._result.update(text)

    # -- what a result says --------------------------------------------------------------

    def describe(self, key: str, data: dict[str, Any]) -> Text:
        """The figures of one action, with what they mean."""
        if key == "fetch":
            return describe_fetch(data)
        if key in ("dashboard", "one_connection", "one_session"):
            return describe_dashboard(data)
        if key == "batch":
            return describe_pair(data, "rows", "round_trips", "round trips")
        if key == "prefetch":
            return describe_pair(data, "posts", "queries", "queries")
        if key == "exhaust":
            return describe_exhaust(data)
        stalls = [
            s
            for s in self.context.monitor.stalls_after(0)
            if s.started_at >= self._began_wall - 0.05 and s.route == "GET /db/slow-report"
        ]
        self._last_stall = stalls[-1] if stalls else None
        return describe_report(data, stalls)

    # -- code view ---------------------------------------------------------------------------

    def code_blocks(self, stall: Stall | None = None) -> list[SourceBlock]:
        action = ACTION_BY_KEY[self.action_key]
        blocks = [source_of(code, f"server: {code.__name__}") for code in action.code]
        stall = stall or (self._last_stall if self.action_key == "report" else None)
        location = stall.location if stall is not None else None
        if location is not None and location.startswith("server/routes/db.py:"):
            line = int(location.split(":")[1].split()[0])
            blocks = [with_highlight(block, line) for block in blocks]
        blocks.append(source_of(DbPane.send_action, "client: this pane's worker"))
        return blocks


async def _json(request: Any) -> dict[str, Any]:
    """The JSON of a response; an error status raises with the server's ``detail``."""
    response: httpx.Response = await request
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail")
        except ValueError:
            detail = response.text
        raise ValueError(f"HTTP {response.status_code}: {detail}")
    body: dict[str, Any] = response.json()
    return body


def describe_fetch(data: dict[str, Any]) -> Text:
    text = Text()
    for way in data["ways"]:
        text.append(f"{way['via']:<18}", style="bold")
        text.append(f"{way['ms']:7.1f} ms/request")
        style = "bold red" if way["opened"] else "green"
        text.append(f"   {way['opened']} connections opened\n", style=style)
    text.append(f"unknown id: {data['unknown_id']}\n", style="dim")
    text.append(
        "A pool per request pays the connection set-up on every request (and the guide's "
        "version never closes it: ten leaked connections per request on PostgreSQL).",
        style="dim",
    )
    return text


def describe_dashboard(data: dict[str, Any]) -> Text:
    """Each query as a bar on one time axis, its value or its error; then the verdict."""
    text = Text()
    wall = max(1.0, float(data["wall_ms"]))
    width = 28
    for query in data["queries"]:
        start = min(width - 1, round(width * query["start_ms"] / wall))
        end = min(width, max(start + 1, round(width * query["end_ms"] / wall)))
        text.append(f"{query['name']:<13}", style="bold")
        text.append(" " * start)
        text.append("█" * (end - start), style="red" if query["error"] else "green")
        text.append(" " * (width - end + 1))
        if query["error"]:
            error = str(query["error"])
            text.append(error if len(error) <= 44 else error[:43] + "…", style="bold red")
        else:
            text.append(f"{query['value']}", style="dim")
        text.append("\n")
    effective = data["effective"]
    if effective != data["mode"]:
        text.append(f"blocking mode: {data['mode']} → {effective} · ", style="bold red")
    text.append(f"{data['backend']} · wall {data['wall_ms']:.0f} ms", style="bold")
    text.append(f" · {data['ok']} ok · {data['failed']} failed\n")
    if data.get("error"):
        text.append(f"the driver said: {data['error']}\n", style="bold red")
    text.append(str(data["note"]))
    return text


def describe_pair(data: dict[str, Any], unit: str, count: str, count_label: str) -> Text:
    text = Text()
    runs = data["runs"]
    for run in runs:
        name = run["effective"]
        size = run[unit] if unit == "rows" else len(run["posts"])
        text.append(f"{name:<12}", style="bold")
        text.append(f"{size} {unit} · {run['ms']:8.1f} ms · {run[count]} {count_label}\n")
    first, second = runs
    if first["effective"] == second["effective"]:
        text.append(
            f"blocking mode: both runs took the {first['effective']} way\n", style="bold red"
        )
    elif first["ms"] > 0:
        ratio = second["ms"] / first["ms"]
        text.append(f"{second['effective']} took {ratio:.1f}× as long, ", style="bold")
        text.append(f"with {second[count] / max(1, first[count]):.0f}× the {count_label}.\n")
    text.append(str(second["note"]), style="dim")
    return text


def describe_exhaust(data: dict[str, Any]) -> Text:
    text = Text()
    text.append(f"{data['requests']} requests at once: ", style="bold")
    text.append(f"{data['ok']} served", style="green")
    text.append(" · ")
    text.append(
        f"{data['refused']} refused with 503", style="bold yellow" if data["refused"] else ""
    )
    if data["other"]:
        text.append(f" · other statuses {data['other']}", style="bold red")
    text.append(f" · wall {data['wall_ms']:.0f} ms · longest wait {data['max_wait_ms']:.0f} ms\n")
    if data["detail"]:
        text.append(f"503: {data['detail']}\n", style="yellow")
        text.append(
            "The excess was refused after the acquire timeout instead of hanging; the "
            "client can retry or show an error.",
            style="dim",
        )
    else:
        text.append(
            "No acquire timeout: the excess queued for a connection, as long as it took. "
            "With slow queries that is a hung request.",
            style="bold red",
        )
    return text


def describe_report(data: dict[str, Any], stalls: list[Stall]) -> Text:
    text = Text()
    text.append(f"{data['driver']}", style="bold")
    text.append(f" · {data['ms']:.0f} ms · {data['orders']} orders\n")
    if stalls:
        worst = max(stalls, key=lambda s: s.duration_ms)
        text.append(f"{counted(len(stalls), 'stall')} in the handler: ", style="bold red")
        text.append(f"{worst.duration_ms:.0f} ms at {worst.location}\n", style="bold red")
        text.append(
            "Nothing else ran on the loop meanwhile: not the UI, not other requests. "
            "Press c for the code, the line is highlighted.",
            style="dim",
        )
    else:
        text.append(
            "No stall: the query ran in the driver's thread / on the server while the loop "
            "went on serving.",
            style="green",
        )
    return text
