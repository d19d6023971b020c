"""The durable queue pattern's resources, opened by its router's lifespan."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from redis.exceptions import RedisError

from server.patterns.queue.fleet import WorkerFleet
from server.patterns.queue.inprocess import InProcessJobs
from server.patterns.queue.models import WorkerView
from server.patterns.queue.redis_queue import QueueDown, RedisQueue, worker_view

#: how long stopping workers get before SIGKILL
STOP_GRACE_S = 1.0


@dataclass
class QueueBackends:
    """The Redis queue, the worker processes on it and the in-process jobs."""

    redis: RedisQueue
    fleet: WorkerFleet
    inprocess: InProcessJobs = field(default_factory=InProcessJobs)

    @classmethod
    def on(cls, redis_url: str) -> QueueBackends:
        return cls(RedisQueue(redis_url), WorkerFleet(redis_url))

    async def workers(self) -> list[WorkerView]:
        """Every worker process, the ended ones with how they ended."""
        listed = self.fleet.workers
        reports: dict[int, dict[str, str]] = {}
        with contextlib.suppress(QueueDown, OSError, RedisError):
            reports = await self.redis.worker_states(w.pid for w in listed)
        return [worker_view(w.pid, w.how_it_ended(), reports.get(w.pid, {})) for w in listed]

    def dead_pids(self) -> set[int]:
        return {w.pid for w in self.fleet.workers if not w.alive}

    async def close(self) -> None:
        """Stop the workers this server started (none is left running), then the pool.

        Within the server's shutdown budget: a second of SIGTERM grace (a worker busy with
        a CPU job cannot handle it before the job ends), then SIGKILL. The pool is closed
        whatever happens, cancellation included.
        """
        ended = self.fleet.workers
        try:
            await self.fleet.stop_all(grace_s=STOP_GRACE_S)
            with contextlib.suppress(QueueDown, OSError, RedisError):
                for worker in ended:
                    await self.redis.forget_worker(worker.pid)
        finally:
            await self.redis.close()
