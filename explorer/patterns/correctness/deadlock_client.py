"""The deadlock tab's requests, over real HTTP: two opposite transfers (or one handshake)
sent at once, watched through the task inspector (``GET /monitor/tasks``) while they hang,
until they answer, the user ends them, or their bound does. What the tab shows as its
client code."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

#: how often the tab asks the task inspector while the requests hang
WATCH_S = 0.5


@dataclass(frozen=True)
class Answer:
    """What one lab request answered."""

    name: str
    status: int
    detail: str


@dataclass(frozen=True)
class Cycle:
    """A wait-for cycle as the task inspector reported it."""

    tasks: list[str]
    locks: list[str]
    #: one line per task: what it holds and what it waits for
    lines: list[str]


@dataclass
class Watch:
    """What the tab knows of a run so far (a copy is posted on every look)."""

    demo: str
    form: str
    began: float = field(default_factory=time.perf_counter)
    #: the first cycle the task inspector reported among the lab's tasks
    cycle: Cycle | None = None
    cycle_after_s: float | None = None
    #: lab tasks the inspector sees waiting, with what they wait on (no cycle needed)
    waiting: list[str] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    inspector_missing: bool = False

    @property
    def elapsed_s(self) -> float:
        return time.perf_counter() - self.began


def form_param(form: str) -> dict[str, str]:
    """The ``form`` query parameter; none when the tab follows blocking mode."""
    return {} if form == "mode" else {"form": form}


def lab_requests(demo: str, form: str, bound_s: float) -> list[tuple[str, dict[str, Any]]]:
    """The requests of a run: (path, query) each."""
    query: dict[str, Any] = {**form_param(form), "bound_s": bound_s}
    if demo == "handshake":
        return [("/correctness/deadlock/handshake", query)]
    return [("/correctness/deadlock/transfer", {**query, "first": lock}) for lock in "AB"]


def name_of(path: str, query: dict[str, Any]) -> str:
    """The name the server gives the request's task (``transfer A->B``)."""
    if path.endswith("/handshake"):
        return "handshake"
    first = query["first"]
    return f"transfer {first}->{'B' if first == 'A' else 'A'}"


def cycle_of(snapshot: dict[str, Any], names: set[str]) -> Cycle | None:
    """The first cycle of ``snapshot`` (``GET /monitor/tasks``) made of the lab's tasks."""
    tasks = {task["id"]: task for task in snapshot.get("tasks", [])}
    for cycle in snapshot.get("cycles", []):
        if not set(cycle["tasks"]) <= names:
            continue
        lines = []
        for task_id in cycle["task_ids"]:
            task = tasks.get(task_id)
            if task is None:
                continue
            held = ", ".join(h["label"] or "?" for h in task["holds"]) or "nothing"
            lines.append(f"{task['name']} holds {held}, waits for {task['waits_on']['detail']}")
        return Cycle(tasks=list(cycle["tasks"]), locks=list(cycle["locks"]), lines=lines)
    return None


def waiting_of(snapshot: dict[str, Any], names: set[str]) -> list[str]:
    """The lab's tasks in ``snapshot`` with what each waits on and for how long."""
    lines = []
    for task in snapshot.get("tasks", []):
        if task["name"] in names and task["waits_on"]["kind"] != "none":
            waited = task.get("waiting_s")
            since = f" for {waited:.1f} s" if isinstance(waited, float) else ""
            lines.append(f"{task['name']} waits on {task['waits_on']['detail']}{since}")
    return lines


async def look_at_tasks(http: httpx.AsyncClient, watch: Watch, names: set[str]) -> None:
    """Ask the task inspector what the lab's tasks wait on, and for a cycle among them."""
    seen = await http.get("/monitor/tasks", params={"long_wait_s": 0.2})
    if seen.status_code == 404:
        watch.inspector_missing = True
    elif seen.is_success:
        snapshot = seen.json()
        cycle = cycle_of(snapshot, names)
        if cycle is not None:
            watch.cycle, watch.cycle_after_s = cycle, watch.elapsed_s
        elif watch.demo == "handshake":  # a wait, no cycle: nobody holds an event
            watch.waiting = waiting_of(snapshot, names)


async def run_lab(
    http: httpx.AsyncClient,
    demo: str,
    form: str,
    bound_s: float,
    on_look: Callable[[Watch], object],
) -> Watch:
    """Send the run's requests at once; look at the task inspector every ``WATCH_S`` until
    they have all answered (each answer, even a 409, is kept)."""
    watch = Watch(demo, form)
    requests = lab_requests(demo, form, bound_s)
    # the names the server gives the tasks that wait (only the handshake's pitfall waits)
    names = {name_of(path, query) for path, query in requests} | {"handshake (pitfall)"}
    sent = [asyncio.create_task(http.post(path, params=query)) for path, query in requests]
    try:
        while not all(task.done() for task in sent):
            await asyncio.wait(sent, timeout=WATCH_S)
            if all(task.done() for task in sent):
                break
            if not (watch.cycle or watch.waiting or watch.inspector_missing):
                # Asked until it has seen the hang: a snapshot is loop time, and the lesson
                # is a loop that idles while nothing moves.
                await look_at_tasks(http, watch, names)
            on_look(watch)
        for (path, query), task in zip(requests, sent, strict=True):
            response = task.result()
            body = response.json()
            if response.is_success:
                took = f"took {body['took_s']:.2f} s"
                detail = f"{took}, {body['attempts']} attempt(s)" if "attempts" in body else took
            else:
                detail = str(body.get("detail"))
            watch.answers.append(Answer(name_of(path, query), response.status_code, detail))
    finally:
        for task in sent:
            task.cancel()
    return watch


async def end_lab(http: httpx.AsyncClient) -> int:
    """End every stuck lab request now (``POST /correctness/deadlock/end``)."""
    response = await http.post("/correctness/deadlock/end")
    response.raise_for_status()
    ended: int = response.json()["ended"]
    return ended
