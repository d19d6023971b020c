"""The correctness pane's demo tabs: missing await, race, swallowed errors.

Each is a :class:`~explorer.patterns.correctness.demo_tab.DemoTab`: its choices and lessons,
its request (:mod:`explorer.patterns.correctness.client`) and its figures
(:mod:`explorer.patterns.correctness.figures`).
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Input

from explorer.code_source import SourceBlock, source_of
from explorer.patterns.correctness import client, figures
from explorer.patterns.correctness.controls import Choices
from explorer.patterns.correctness.demo_tab import DemoTab, labelled
from explorer.widgets.number_field import number_input
from server.patterns.correctness import missing_await, race, race_stores, swallow

#: each store choice's class (its two ways to buy are what the code view shows)
STORES: dict[str, type[race_stores.Store]] = {
    "memory": race_stores.MemoryStore,
    "sqlite": race_stores.SqliteStore,
    "postgres": race_stores.PgStore,
}


class MissingAwaitTab(DemoTab):
    """Calls the row-writing helper with and without ``await``."""

    PREFIX = "await"
    LESSONS: ClassVar[dict[tuple[str, str], str]] = {
        ("", "pitfall"): "The handler calls an async def helper without await: it gets a "
        "coroutine object, the helper's body never runs (no row), the answer is still 200; "
        "only a RuntimeWarning, naming the line, says so.",
        ("", "right"): "Awaited: the helper runs, the handler gets the row id and the row is "
        "written. (mypy and pyright flag a bare call left un-awaited; assigned to a name, as "
        "in the pitfall, only the RuntimeWarning tells.)",
    }

    async def fetch(self, form: str) -> Any:
        return await client.missing_await(self.context.http, form)

    def draw(self, result: Any) -> tuple[Text, Text]:
        return figures.await_verdict(result), figures.await_log(result)

    def code_blocks(self) -> list[SourceBlock]:
        form = self.form_in_use(self.context.blocking.enabled)
        shown = missing_await.call_without_await if form == "pitfall" else missing_await.write_row
        return [
            source_of(shown, f"server: the call ({form})"),
            source_of(missing_await.missing_await, "server: POST /correctness/missing-await"),
            source_of(client.missing_await, "client: this tab's worker"),
        ]


class RaceTab(DemoTab):
    """Fires N concurrent buys at one stock level, in memory or a database."""

    PREFIX = "race"
    CHOICES: ClassVar[Choices] = (
        ("memory", "memory"),
        ("SQLite file", "sqlite"),
        ("PostgreSQL", "postgres"),
    )
    PITFALL = (
        "Read the stock, await, write read - 1: concurrent buyers read the same level before "
        "any writes, and overwrite each other. Lost updates, no error anywhere."
    )
    LESSONS: ClassVar[dict[tuple[str, str], str]] = {
        ("memory", "pitfall"): PITFALL,
        ("sqlite", "pitfall"): PITFALL,
        ("postgres", "pitfall"): PITFALL,
        ("memory", "right"): "An asyncio.Lock around read-await-write: one buyer at a time "
        "in that section, so every sale counts (exactly N).",
        ("sqlite", "right"): "One atomic UPDATE stock SET n = n - 1 ... RETURNING n: the "
        "database does read and write in one step, so every sale counts (exactly N).",
        ("postgres", "right"): "One atomic UPDATE ... SET n = n - 1 RETURNING n, on a pool "
        "of connections: the database serializes the row, every sale counts (exactly N).",
    }
    DEFAULT_CSS = """
    RaceTab #race-n { width: 5; }
    """

    def fields(self) -> ComposeResult:
        yield from labelled("N", number_input("race-n", "50", 1, race.MAX_STOCK, "Buyers"))

    async def fetch(self, form: str) -> Any:
        n = int(self.query_one("#race-n", Input).value)
        return await client.race(self.context.http, self.choice, form, n)

    def draw(self, result: Any) -> tuple[Text, Text]:
        return figures.race_verdict(result), figures.race_log(result)

    def code_blocks(self) -> list[SourceBlock]:
        form = self.form_in_use(self.context.blocking.enabled)
        kind = STORES[self.choice]
        method = kind.buy_racy if form == "pitfall" else kind.buy_safe
        return [
            source_of(method, f"server: {kind.__name__} ({form})"),
            source_of(race.buy, "server: POST /correctness/race/buy"),
            source_of(client.race, "client: this tab's worker (N buys at once)"),
        ]


class SwallowTab(DemoTab):
    """A failing background task, or a gather, whose errors are swallowed or surfaced."""

    PREFIX = "swallow"
    CHOICES: ClassVar[Choices] = (("create_task", "task"), ("gather", "gather"))
    LESSONS: ClassVar[dict[tuple[str, str], str]] = {
        ("task", "pitfall"): "A task's exception nobody retrieves: the answer says ok; the "
        "only trace is 'Task exception was never retrieved' in a log, when the task is "
        "collected, if ever.",
        ("task", "right"): "The task is kept and awaited: its exception reaches the handler, "
        "and the answer says the step failed.",
        ("gather", "pitfall"): "gather(..., return_exceptions=True) returns exceptions as "
        "results: not checking them answers '5 done' while 2 failed.",
        ("gather", "right"): "Every result of gather(..., return_exceptions=True) is checked: "
        "the failures are counted and reported.",
    }

    async def fetch(self, form: str) -> Any:
        return await client.swallow(self.context.http, self.choice, form)

    def draw(self, result: Any) -> tuple[Text, Text]:
        return figures.swallow_verdict(result), figures.swallow_log(result)

    def code_blocks(self) -> list[SourceBlock]:
        demo = swallow.run_task if self.choice == "task" else swallow.run_gather
        blocks = [source_of(demo, f"server: the {self.choice} demo")]
        if self.choice == "task":
            blocks.append(source_of(swallow.drop_unretrieved, "server: the pitfall's drop"))
        return [*blocks, source_of(client.swallow, "client: this tab's worker")]
