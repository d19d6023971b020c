"""A snapshot of every task on a loop: where it is suspended, what it waits on, its flags.

Read on the loop's thread, on demand: a GET of ``/monitor/tasks``, or the UI's Tasks tab
while it is visible (once a second). Its cost is in the result (``cost_ms``).
"""

from __future__ import annotations

import asyncio
import time
from time import perf_counter
from typing import TYPE_CHECKING, Any

from . import lock_owners
from .attribution import cached_short_path, request_tasks
from .await_chain import NOT_WAITING, Wait, chain_frames, location, wait_of, where
from .wait_graph import cycles

if TYPE_CHECKING:
    from .tasks import TaskBook

#: flags, most serious first: the order a row's flags are listed in
FINISHED = Wait("none", "finished")
#: waits that are a task stuck behind another when long: an idle consumer's wait (a sleep,
#: an event, a queue's get, a socket read) is its normal state and is never flagged
_BLOCKING_KINDS = frozenset({"lock", "semaphore", "condition", "task"})
FLAGS = ("in_cycle", "never_retrieved", "long_wait", "pending_at_shutdown")


def _state(task: asyncio.Future[Any]) -> str:
    if not task.done():
        return "pending"
    return "cancelled" if task.cancelled() else "done"


def _unretrieved(task: asyncio.Future[Any]) -> bool:
    """Done with an exception that nobody has asked for yet (reading it would mark it)."""
    return bool(getattr(task, "_log_traceback", False))


def _row(
    book: TaskBook, task: asyncio.Task[Any], now: float, loop_now: float
) -> tuple[dict[str, Any], Wait, float | None]:
    origin = book.origin_of(task)
    coro = task.get_coro()
    frames = chain_frames(coro) if not task.done() else []
    wait = FINISHED if task.done() else NOT_WAITING
    if frames:
        wait = wait_of(task, frames, book.loop)
    inner = where(frames)
    waiting_s: float | None = None
    if wait is not NOT_WAITING and wait is not FINISHED:
        if wait.began is not None:
            waiting_s = max(0.0, loop_now - wait.began)
        else:
            # since a snapshot first saw this very wait: a lower bound, exact to a refresh
            key = id(getattr(task, "_fut_waiter", None) or wait.obj)
            seen = book.waits_seen.get(id(task))
            if seen is None or seen[0] != key:
                book.waits_seen[id(task)] = seen = (key, now)
            waiting_s = now - seen[1]
    request = request_tasks.request_of(task) or (origin.request if origin else None)
    where_dict: dict[str, Any] | None = None
    where_short: str | None = None
    if inner is not None:
        filename, lineno, function = location(inner)
        where_dict = {"file": filename, "line": lineno, "function": function}
        where_short = f"{cached_short_path(filename)}:{lineno}"
    row: dict[str, Any] = {
        "id": id(task),
        "name": task.get_name(),
        "coro": getattr(coro, "__qualname__", type(coro).__name__),
        "state": _state(task),
        "age_s": round(now - (origin.created if origin else book.installed_at), 3),
        "where": where_dict,
        "where_short": where_short,
        "waits_on": wait.as_dict(),
        "waiting_s": round(waiting_s, 3) if waiting_s is not None else None,
        "holds": [],
        "route": request.route if request else None,
        "request_id": request.request_id if request else None,
        "created_at": origin.site if origin else None,
        "flags": [],
    }
    return row, wait, waiting_s


def _blocks(wait: Wait) -> bool:
    return wait.kind in _BLOCKING_KINDS or (wait.kind == "queue" and "put" in wait.detail)


def take(
    book: TaskBook, long_wait_s: float = 1.0, limit: int = 200, fold: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """Every task of ``book``'s loop (and its done tasks whose exception is unread).

    A pending task whose coroutine's qualified name is in ``fold`` is counted, not
    described: the UI folds its hundreds of message pumps, and a snapshot that skips their
    await chains costs a fraction.
    """
    began = perf_counter()
    loop = book.loop
    now, loop_now = time.monotonic(), loop.time()
    tasks: list[asyncio.Task[Any]] = []
    folded = 0
    for task in asyncio.all_tasks(loop):
        if fold and getattr(task.get_coro(), "__qualname__", None) in fold:
            folded += 1
        else:
            tasks.append(task)
    tasks.extend(
        t
        for t in book.recorded_tasks()
        if isinstance(t, asyncio.Task) and t.done() and _unretrieved(t)
    )
    rows: dict[asyncio.Task[Any], dict[str, Any]] = {}
    edges: dict[asyncio.Task[Any], asyncio.Task[Any]] = {}
    waits: dict[asyncio.Task[Any], Wait] = {}
    for task in tasks:
        row, wait, waiting_s = _row(book, task, now, loop_now)
        rows[task] = row
        waits[task] = wait
        if wait.target is not None:
            edges[task] = wait.target
        if waiting_s is not None and waiting_s >= long_wait_s and _blocks(wait):
            row["flags"].append("long_wait")
        if _unretrieved(task):
            row["flags"].append("never_retrieved")
    for lock, owner in lock_owners.held_locks():
        if owner in rows:
            rows[owner]["holds"].append(
                {"object_id": id(lock), "label": lock_owners.default_name(lock)}
            )
    # forget the waits of tasks that are gone (their ids may be reused)
    alive = {id(task) for task in rows}
    for gone in [key for key in book.waits_seen if key not in alive]:
        del book.waits_seen[gone]
    shutdown_ids = {entry["id"] for entry in book.pending_at_shutdown}
    found = []
    for cycle in cycles(edges):
        if not all(task in rows for task in cycle):
            continue
        for task in cycle:
            rows[task]["flags"].append("in_cycle")
        locks = [
            lock_owners.default_name(waits[task].obj)
            for task in cycle
            if waits[task].kind == "lock"
        ]
        found.append(
            {
                "task_ids": [id(task) for task in cycle],
                "tasks": [task.get_name() for task in cycle],
                "locks": locks,
            }
        )
    by_state: dict[str, int] = {"pending": folded} if folded else {}
    for task, row in rows.items():
        by_state[row["state"]] = by_state.get(row["state"], 0) + 1
        if id(task) in shutdown_ids:
            row["flags"].append("pending_at_shutdown")
        row["flags"].sort(key=FLAGS.index)
    # the gravest first (a cycle before a long wait: flags are sorted by FLAGS), then oldest
    ordered = sorted(
        rows.values(),
        key=lambda r: (FLAGS.index(r["flags"][0]) if r["flags"] else len(FLAGS), -r["age_s"]),
    )
    listed = ordered[:limit]
    return {
        "tasks": listed,
        "cycles": found,
        "never_retrieved": list(book.never_retrieved),
        "pending_at_shutdown": list(book.pending_at_shutdown),
        "counts": {
            "total": len(rows) + folded,
            "listed": len(listed),
            "folded": folded,
            "by_state": by_state,
        },
        "owners_known": book.owners_known,
        "cost_ms": round((perf_counter() - began) * 1000.0, 3),
    }
