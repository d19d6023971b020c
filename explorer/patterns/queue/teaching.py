"""What each of the queue pane's buttons and backends teaches, and the code it shows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from explorer.pane import Teaching
from explorer.patterns.queue import demos
from server.patterns.queue import demo_job, inprocess, worker
from server.patterns.queue import router as routes


@dataclass(frozen=True, kw_only=True)
class Action(Teaching):
    """A button: what it runs and what it teaches."""

    key: str
    label: str
    code: tuple[Callable[..., Any], ...]


ACTIONS: tuple[Action, ...] = (
    Action(
        key="enqueue",
        label="Enqueue",
        code=(routes.enqueue, inprocess.run_in_process),
        lesson="",  # said by the backend chosen (BACKENDS)
    ),
    Action(
        key="kill_worker",
        label="Kill -9 worker",
        code=(demos.kill_a_worker, worker.build_worker),
        lesson="50 jobs; after 20 the worker is killed with -9 mid-job and another starts. "
        "All 50 finish: arq delivers the killed job again once its lock expires (6 s).",
    ),
    Action(
        key="kill_server",
        label="Kill -9 server",
        code=(demos.kill_the_server, routes.enqueue, inprocess.InProcessJobs.run),
        lesson="A serve child takes 50 BackgroundTasks jobs and 50 Redis jobs, then is "
        "killed with -9: its in-process jobs die with it, the Redis ones finish.",
    ),
    Action(
        key="scale",
        label="Scale 1·2·4",
        code=(demos.scale,),
        lesson="The same jobs on 1, 2 and 4 workers (one job at a time each): wall time "
        "beside the ideal, jobs × seconds ÷ workers.",
    ),
)
ACTION_BY_KEY = {action.key: action for action in ACTIONS}


@dataclass(frozen=True, kw_only=True)
class BackendChoice(Teaching):
    """A backend Enqueue may use: what it teaches, and the code that runs its jobs."""

    key: str
    label: str
    code: tuple[Callable[..., Any], ...]


BACKENDS: tuple[BackendChoice, ...] = (
    BackendChoice(
        key="inprocess",
        label="in-process",
        code=(routes.enqueue, inprocess.run_in_process, demo_job.job_body),
        lesson="BackgroundTasks in this server's process, a CPU job sent to its process "
        "pool: the loop stays free, but the jobs live in this process (Kill -9 server).",
        pitfall="Blocking mode: the CPU job runs in the background task itself, on the "
        "server's loop: every request waits (the inspector names burn_cpu).",
    ),
    BackendChoice(
        key="redis",
        label="Redis queue",
        code=(routes.enqueue, demo_job.demo, demo_job.job_body, worker.build_worker),
        lesson="Jobs wait in Redis and run in worker processes: a CPU job stalls only its "
        "worker's loop, never this server's, and the jobs outlive the server.",
        no_pitfall=" (No pitfall form: b changes the in-process backend.)",
    ),
)
BACKEND_BY_KEY = {choice.key: choice for choice in BACKENDS}
