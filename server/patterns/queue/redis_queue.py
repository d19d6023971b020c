"""The server's side of the durable queue: arq's pool to enqueue, and what Redis says.

Redis may be down or elsewhere: the pool is made on first use and again after a failure
(at most every :data:`RETRY_AFTER_S`), and every call that needs it raises
:class:`QueueDown` with one sentence instead of a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.jobs import deserialize_job, deserialize_result
from redis.exceptions import RedisError

from server.patterns.queue.models import JobState, JobView, WorkerView
from server.patterns.queue.names import (
    HISTORY,
    IDS_KEY,
    JOB_PREFIX,
    KEY_PREFIX,
    QUEUE_NAME,
    RAN_BY_KEY,
    RUNS_KEY,
    WORKER_KEY,
    JobKind,
)

#: after a failed connection, the next attempt waits this long (a poll must not stall)
RETRY_AFTER_S = 2.0


class QueueDown(Exception):
    """Redis does not answer (the message is one sentence for the user)."""


def redacted(url: str) -> str:
    """``url`` without its password (it is shown on screen and in ``GET /queue``)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def describe_failure(result: Any) -> str:
    """A failed job's exception as text: its type, and its message when it has one."""
    if isinstance(result, TimeoutError):
        return "TimeoutError: the job ran past its timeout and arq cancelled it"
    if isinstance(result, BaseException):
        text = str(result)
        return f"{type(result).__name__}: {text}" if text else type(result).__name__
    return str(result)


class RedisQueue:
    """arq's pool on ``url``, made lazily; the demo's jobs and workers as Redis has them."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._pool: ArqRedis | None = None
        self._connecting = asyncio.Lock()
        self._failed_at = 0.0
        #: why the last attempt failed (one sentence), None once connected
        self.reason: str | None = None

    async def pool(self) -> ArqRedis:
        """The pool, connecting if need be; :class:`QueueDown` when Redis does not answer."""
        if self._pool is not None:
            return self._pool
        # one connection attempt at a time: two polls at once made two pools, and the one
        # overwritten was never closed
        async with self._connecting:
            return await self._connect()

    async def _connect(self) -> ArqRedis:
        if self._pool is not None:
            return self._pool
        if self.reason is not None and time.monotonic() - self._failed_at < RETRY_AFTER_S:
            raise QueueDown(self.reason)
        try:
            settings = RedisSettings.from_dsn(self.url)
        except (RuntimeError, ValueError) as exc:
            self.reason = f"{redacted(self.url)} is not a Redis URL ({exc})."
            self._failed_at = time.monotonic()
            raise QueueDown(self.reason) from None
        settings.conn_retries = 0
        try:
            self._pool = await create_pool(settings, default_queue_name=QUEUE_NAME)
        except (OSError, RedisError, TimeoutError) as exc:
            detail = str(exc).rstrip(".") or type(exc).__name__
            self.reason = f"Redis does not answer at {redacted(self.url)} ({detail})."
            self._failed_at = time.monotonic()
            raise QueueDown(self.reason) from None
        self.reason = None
        return self._pool

    async def available(self) -> bool:
        """Whether Redis answers now (a ping; a lost connection is made again next time)."""
        try:
            pool = await self.pool()
            await pool.ping()
        except QueueDown:
            return False
        except (OSError, RedisError, TimeoutError) as exc:
            await self._lost(exc)
            return False
        return True

    async def _lost(self, exc: BaseException) -> None:
        self.reason = f"Redis stopped answering at {redacted(self.url)} ({exc})."
        self._failed_at = time.monotonic()
        pool, self._pool = self._pool, None
        if pool is not None:
            with contextlib.suppress(OSError, RedisError):
                await pool.aclose()

    async def enqueue(self, kind: JobKind, seconds: float, count: int) -> list[str]:
        """Put ``count`` jobs on the queue; their ids."""
        pool = await self.pool()
        ids = [f"{JOB_PREFIX}{uuid.uuid4().hex[:12]}" for _ in range(count)]
        try:
            for job_id in ids:
                await pool.enqueue_job("demo", kind, seconds, _job_id=job_id)
            async with pool.pipeline(transaction=True) as pipe:
                pipe.rpush(IDS_KEY, *ids)
                pipe.ltrim(IDS_KEY, -HISTORY, -1)
                await pipe.execute()
        except (OSError, RedisError) as exc:
            await self._lost(exc)
            raise QueueDown(self.reason) from None
        return ids

    async def recent_ids(self, limit: int) -> list[str]:
        pool = await self.pool()
        async with pool.pipeline(transaction=False) as pipe:
            pipe.lrange(IDS_KEY, -limit, -1)
            (raw,) = await pipe.execute()
        return [item.decode() for item in raw]

    async def jobs(self, ids: Iterable[str]) -> list[JobView]:
        """What Redis holds of each job: queued, running, retrying (its worker died and
        the lock has not expired yet, or it waits for a free worker again), done or failed."""
        ids = list(ids)
        pool = await self.pool()
        try:
            async with pool.pipeline(transaction=False) as pipe:
                for job_id in ids:
                    pipe.get(f"arq:job:{job_id}")
                    pipe.exists(f"arq:in-progress:{job_id}")
                    pipe.get(f"arq:result:{job_id}")
                    pipe.hget(RUNS_KEY, job_id)
                    pipe.hget(RAN_BY_KEY, job_id)
                raw = await pipe.execute()
        except (OSError, RedisError) as exc:
            await self._lost(exc)
            raise QueueDown(self.reason) from None
        return [_job_view(job_id, *raw[i * 5 : i * 5 + 5]) for i, job_id in enumerate(ids)]

    async def worker_states(self, pids: Iterable[int]) -> dict[int, dict[str, str]]:
        """Each worker's own report (state, current job, jobs done), by pid."""
        pids = list(pids)
        pool = await self.pool()
        async with pool.pipeline(transaction=False) as pipe:
            for pid in pids:
                pipe.hgetall(f"{WORKER_KEY}{pid}")
            raw = await pipe.execute()
        return {
            pid: {k.decode(): v.decode() for k, v in found.items()}
            for pid, found in zip(pids, raw, strict=True)
        }

    async def forget_worker(self, pid: int) -> None:
        """Drop the report of a worker that ended without tidying (killed with -9)."""
        pool = await self.pool()
        await pool.delete(f"{WORKER_KEY}{pid}")

    async def clear(self) -> int:
        """Delete every key of the demo (its jobs' arq keys, its queue, its own keys), and
        nothing else in the database; how many."""
        pool = await self.pool()
        doomed = [QUEUE_NAME, QUEUE_NAME + ":health-check"]
        async for key in pool.scan_iter(match=f"arq:*:{JOB_PREFIX}*", count=500):
            doomed.append(key)
        async for key in pool.scan_iter(match=f"{KEY_PREFIX}*", count=500):
            doomed.append(key)
        return int(await pool.delete(*doomed)) if doomed else 0

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.aclose()


def _job_view(
    job_id: str,
    job: bytes | None,
    in_progress: int,
    result: bytes | None,
    runs: bytes | None,
    ran_by: bytes | None,
) -> JobView:
    kind, seconds = "?", 0.0
    state: JobState = "unknown"
    text: str | None = None
    error: str | None = None
    if result is not None:
        done = deserialize_result(result)
        kind, seconds = done.args[0], float(done.args[1])
        if done.success:
            state, text = "done", str(done.result)
        else:
            state, error = "failed", describe_failure(done.result)
    elif job is not None:
        queued = deserialize_job(job)
        kind, seconds = queued.args[0], float(queued.args[1])
        # started before (a run counted) but not running now: taken again once it is free
        state = "running" if in_progress else "retrying" if runs is not None else "queued"
    return JobView(
        id=job_id,
        backend="redis",
        kind=str(kind),
        seconds=seconds,
        state=state,
        runs=int(runs or 0),
        worker=int(ran_by) if ran_by is not None else None,
        result=text,
        error=error,
    )


def worker_view(pid: int, ended: str | None, report: dict[str, str]) -> WorkerView:
    """One worker, from the OS (``ended``: how it ended, None if alive) and its report."""
    state = ended if ended is not None else report.get("state", "starting")
    return WorkerView(
        pid=pid,
        state=state,
        current=report.get("current") or None,
        done=int(report.get("done", 0)),
    )
