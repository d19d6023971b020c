"""What the server and the worker processes agree on: the queue's name, the keys, the bounds.

arq keeps each job under ``arq:job:<id>``, ``arq:in-progress:<id>``, ``arq:retry:<id>`` and
``arq:result:<id>`` whatever the queue is called; the demo's job ids all start with
:data:`JOB_PREFIX`, and its own keys with :data:`KEY_PREFIX`, so clearing the demo never
touches anything else in the same Redis database.
"""

from __future__ import annotations

from typing import Literal

#: arq's queue (a sorted set) and the prefix of everything else the demo writes
QUEUE_NAME = "fastasync:queue"
KEY_PREFIX = "fastasync:queue:"
#: every demo job's id starts with this (arq's own keys end with the id)
JOB_PREFIX = "fq-"
#: job id -> how many times a worker started it (more than once: redelivered)
RUNS_KEY = KEY_PREFIX + "runs"
#: job id -> pid of the worker that last started it
RAN_BY_KEY = KEY_PREFIX + "ran-by"
#: the demo's job ids, newest last (trimmed to :data:`HISTORY`)
IDS_KEY = KEY_PREFIX + "ids"
#: job id -> the idempotent job's output (written again, identical, by a second run)
OUTPUT_KEY = KEY_PREFIX + "output"
#: per worker process: its state, current job and jobs done
WORKER_KEY = KEY_PREFIX + "worker:"

JobKind = Literal["sleep", "cpu", "fail", "hang"]
#: how long a job may run before arq cancels it (a "hang" job ends so, as TimeoutError)
JOB_TIMEOUT_S = 5.0
#: arq's lock on a running job outlives the job's timeout by this much; a worker killed
#: mid-job leaves the lock to expire, and then another worker takes the job again. arq's
#: own margin is 10 s; the demo's jobs are short, so it waits less.
LOCK_MARGIN_S = 1.0
#: tries before arq gives a job up (a redelivery after a killed worker is a try)
MAX_TRIES = 3
#: how often an idle worker asks Redis for a job (arq's default is 0.5 s)
POLL_DELAY_S = 0.05
#: job ids remembered for the listing
HISTORY = 1000
#: at most this many workers at once
MAX_WORKERS = 8
