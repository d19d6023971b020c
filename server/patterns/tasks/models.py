"""The ``/tasks`` API's models: a job as every route (and the SQLite history) shows it,
and the routes' bodies and answers."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

Kind = Literal["sleep", "fail", "hang"]
Origin = Literal["background", "queue", "fire_and_forget", "debounce"]
State = Literal["pending", "running", "done", "failed", "cancelled", "lost"]

STATES: tuple[State, ...] = get_args(State)

#: the longest job a request may ask for, and the most jobs in one BackgroundTasks request
MAX_DURATION_S = 30.0
MAX_BATCH = 10


class JobOut(BaseModel):
    """One job as the API shows it (and as SQLite stores it)."""

    id: int = Field(description="SQLite rowid.")
    kind: Kind
    origin: Origin = Field(description="Which pattern started it.")
    state: State
    duration_s: float = Field(description="The duration asked for (hang ignores it).")
    created_at: str
    started_at: str | None
    finished_at: str | None
    duration_ms: float | None = Field(description="Run time, start to finish.")
    error: str | None = Field(
        description='Why it failed or was cancelled, e.g. "ValueError: simulated failure in job 7".'
    )
    request_id: str | None = Field(description="Groups the jobs one request started.")
    response_sent_ms: float | None = Field(
        description="Background jobs: ms from the response being sent to this job starting."
    )


class JobSpec(BaseModel):
    """One job to run."""

    model_config = ConfigDict(extra="forbid", strict=True)
    kind: Kind = Field(
        description="sleep: waits duration_s; fail: waits, then raises; hang: never ends "
        "on its own (the job timeout cancels it)."
    )
    duration_s: float = Field(
        default=0.5, ge=0, le=MAX_DURATION_S, allow_inf_nan=False, description="0 to 30 s."
    )


class BackgroundIn(BaseModel):
    """``POST /tasks/background`` body."""

    model_config = ConfigDict(extra="forbid", strict=True)
    jobs: list[JobSpec] = Field(min_length=1, max_length=MAX_BATCH)


class BackgroundOut(BaseModel):
    request_id: str
    job_ids: list[int]
    responded_at: str = Field(description="When the handler returned (ISO 8601 UTC).")


class JobAccepted(BaseModel):
    job_id: int


class FireAndForgetOut(BaseModel):
    job_id: int
    supervised: bool = Field(description="False in blocking mode: nobody hears the outcome.")


class DebounceIn(BaseModel):
    """``POST /tasks/debounce`` body."""

    model_config = ConfigDict(extra="forbid", strict=True)
    key: str = Field(min_length=1, max_length=40, pattern=r"^[a-z0-9_-]+$")
    delay_s: float = Field(ge=0.05, le=5.0, allow_inf_nan=False, description="0.05 to 5 s.")


class DebounceOut(BaseModel):
    key: str
    triggers: int = Field(description="Triggers in the current burst, this one included.")
    job_id: int | None = Field(description="The burst's job (created at its first trigger).")


class QueueInfo(BaseModel):
    size: int = Field(description="Jobs waiting for a worker.")
    capacity: int
    workers: int


class JobsOut(BaseModel):
    """``GET /tasks/jobs``."""

    jobs: list[JobOut] = Field(description="Newest first.")
    counts: dict[State, int] = Field(description="Jobs in memory per state.")
    queue: QueueInfo
