"""The durable queue's request and response bodies."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from server.patterns.queue.names import MAX_WORKERS, JobKind

Backend = Literal["redis", "inprocess"]


def _a_number(value: object) -> object:
    """A count is a JSON number (``1`` or ``1.0``), never ``true`` or ``"1"``."""
    if isinstance(value, bool | str):
        raise ValueError("must be a number")
    return value


#: a whole number: strict about the type, not about ``1.0``
Count = Annotated[int, BeforeValidator(_a_number)]
JobState = Literal["queued", "running", "retrying", "done", "failed", "lost", "unknown"]


class JobsIn(BaseModel):
    """Jobs to enqueue: ``count`` of one kind, in-process (``BackgroundTasks``, the
    default: nothing to install) or on the Redis queue."""

    model_config = ConfigDict(extra="forbid")
    kind: JobKind = "sleep"
    seconds: float = Field(default=0.2, ge=0.0, le=4.0, allow_inf_nan=False, strict=True)
    count: Count = Field(default=1, ge=1, le=200)
    backend: Backend = "inprocess"


class JobsAccepted(BaseModel):
    backend: Backend
    ids: list[str]


class JobView(BaseModel):
    """One job as the backend that holds it knows it."""

    id: str
    backend: Backend
    kind: str
    seconds: float
    state: JobState
    #: times a worker started it (2: it was redelivered after its worker died)
    runs: int = 0
    #: the worker process that last ran it (Redis backend)
    worker: int | None = None
    result: str | None = None
    error: str | None = None


class JobsOut(BaseModel):
    backend: Backend
    jobs: list[JobView]
    counts: dict[str, int]
    #: jobs that ran more than once (Redis: at-least-once delivery)
    ran_twice: int = 0


class WorkerView(BaseModel):
    """One worker process: from the OS (alive, how it ended) and from Redis (the rest)."""

    pid: int
    state: str
    current: str | None = None
    done: int = 0


class WorkersIn(BaseModel):
    """How many worker processes should run."""

    model_config = ConfigDict(extra="forbid")
    workers: Count = Field(ge=0, le=MAX_WORKERS)


class QueueStatus(BaseModel):
    """Whether Redis answers, and the workers."""

    redis_url: str
    redis_up: bool
    #: one sentence when Redis does not answer
    reason: str | None = None
    workers: list[WorkerView]
