"""The Concurrency pane's nine strategies: what each teaches, in its right and pitfall form,
and the parameters that make its difference show on screen."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

from explorer.pane import Teaching
from server.patterns.concurrency import router as routes

#: the run parameters, their JSON names and types (also the pane's fields, in screen order)
FIELDS: dict[str, type] = {
    "n": int,
    "latency": float,
    "jitter": float,
    "failure_rate": float,
    "timeout_s": float,
    "limit": int,
}

#: what the fields hold when a strategy does not say otherwise
BASE_DEFAULTS: dict[str, str] = {
    "n": "5",
    "latency": "0.2",
    "jitter": "0.0",
    "failure_rate": "0.0",
    "timeout_s": "0.3",
    "limit": "5",
}

_SEQUENTIAL = (
    "Blocking mode: {label} becomes one await after another (each call awaited in "
    "turn): the wall time is the sum of the calls."
)


@dataclass(frozen=True)
class Strategy(Teaching):
    """One way to run n upstream calls, what it teaches, and the figures that show it.

    Its pitfall says plainly what runs in blocking mode ("" when blocking mode changes nothing).
    """

    key: str
    label: str
    #: field values that make the lesson visible, applied when the strategy is picked
    defaults: dict[str, str] = field(default_factory=dict)

    def values(self) -> dict[str, str]:
        """Every field's default for this strategy."""
        return {**BASE_DEFAULTS, **self.defaults}

    def effective(self, blocking: bool) -> str:
        """What the server runs for this strategy (its pitfall form in blocking mode)."""
        return str(routes.effective_strategy(cast("routes.Strategy", self.key), blocking))


STRATEGIES: tuple[Strategy, ...] = (
    Strategy(
        "sequential",
        "sequential awaits",
        lesson="One await after another: the wall time is the sum of the calls. Blocking mode "
        "turns gather, TaskGroup and as_completed into this.",
    ),
    Strategy(
        "gather",
        "asyncio.gather",
        lesson="All calls in flight at once: the wall time is the slowest call. One failure "
        "raises at once, and the other calls keep running.",
        pitfall=_SEQUENTIAL.format(label="gather"),
    ),
    Strategy(
        "gather_exceptions",
        "gather(return_exceptions=True)",
        {"failure_rate": "0.4", "jitter": "0.05"},
        lesson="Failures come back as values next to the results (✗): nothing is cancelled, "
        "every call gets its answer.",
        pitfall=_SEQUENTIAL.format(label="gather(return_exceptions=True)"),
    ),
    Strategy(
        "taskgroup",
        "asyncio.TaskGroup",
        {"latency": "0.3", "jitter": "0.2", "failure_rate": "0.4"},
        lesson="Structured concurrency: the first failure (✗) cancels the siblings (⊘); the "
        "group raises an ExceptionGroup of every error.",
        pitfall=_SEQUENTIAL.format(label="the TaskGroup"),
    ),
    Strategy(
        "as_completed",
        "asyncio.as_completed",
        {"latency": "0.3", "jitter": "0.2"},
        lesson="Results in the order they finish, not the order they started (the jitter "
        "spreads the finishing times).",
        pitfall=_SEQUENTIAL.format(label="as_completed"),
    ),
    Strategy(
        "race",
        "race: FIRST_COMPLETED + cancel",
        {"latency": "0.3", "jitter": "0.2"},
        lesson="asyncio.wait(tasks, return_when=FIRST_COMPLETED), then cancel and await the "
        "losers (⊘; ┄ what they would have taken).",
        pitfall="Blocking mode runs the guide's race: asyncio.wait() on bare coroutines, a "
        "TypeError since Python 3.11: nothing runs.",
    ),
    Strategy(
        "timeout",
        "asyncio.timeout",
        {"latency": "0.3", "jitter": "0.2", "timeout_s": "0.25"},
        lesson="Everything still running at the deadline is cancelled (⊘; ┄ what it would have "
        "taken); the jitter puts some past it.",
        pitfall="Blocking mode drops the timeout: the slowest upstream holds the whole request, "
        "however long it takes.",
    ),
    Strategy(
        "bounded",
        "bounded: Semaphore(limit)",
        {"n": "6", "limit": "2"},
        lesson="At most `limit` calls at once, in waves: the 10-connection pool is never "
        "oversubscribed. A bar starts at its slot.",
        pitfall="Blocking mode drops the semaphore: all n calls start at once and queue for the "
        "10 pooled connections.",
    ),
    Strategy(
        "unbounded",
        "unbounded: n tasks at once",
        {"n": "15", "latency": "1.2"},
        lesson="The pitfall: n calls race for 10 pooled connections. Calls that wait more than "
        "1 s for a connection fail with PoolTimeout.",
    ),
)
STRATEGY_BY_KEY = {strategy.key: strategy for strategy in STRATEGIES}
