"""The pane's, the tests' and the benchmark's client of ``/queue`` (real HTTP)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx

#: how often a wait looks again
POLL_S = 0.1


class QueueUnavailable(Exception):
    """Redis does not answer, or the server refused (the message says which)."""


@dataclass(frozen=True, slots=True)
class Listing:
    """``GET /queue/jobs``: the jobs, their counts by state, how many ran twice."""

    jobs: list[dict[str, Any]]
    counts: dict[str, int]
    ran_twice: int

    def count(self, *states: str) -> int:
        return sum(self.counts.get(state, 0) for state in states)

    @property
    def finished(self) -> int:
        return self.count("done", "failed")


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except ValueError:
        detail = None
    return str(detail or f"{response.request.url.path} answered {response.status_code}")


class QueueClient:
    """``/queue`` of one server, over ``http``."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.http.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise QueueUnavailable(_detail(response))
        return response.json()

    async def status(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("GET", "/queue")
        return result

    async def require_redis(self) -> dict[str, Any]:
        """The status, if Redis answers; else :class:`QueueUnavailable` with its reason."""
        status = await self.status()
        if not status["redis_up"]:
            raise QueueUnavailable(status["reason"])
        return status

    async def scale(self, workers: int) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = await self._call(
            "PUT", "/queue/workers", json={"workers": workers}
        )
        return found

    async def kill(self, pid: int) -> None:
        await self._call("POST", f"/queue/workers/{pid}/kill")

    async def enqueue(
        self, kind: str, seconds: float, count: int, backend: str | None
    ) -> list[str]:
        body: dict[str, Any] = {"kind": kind, "seconds": seconds, "count": count}
        if backend is not None:
            body["backend"] = backend
        accepted = await self._call("POST", "/queue/jobs", json=body)
        ids: list[str] = accepted["ids"]
        return ids

    async def jobs(self, backend: str, ids: list[str] | None = None, limit: int = 100) -> Listing:
        params: dict[str, Any] = {"backend": backend, "limit": limit}
        if ids:
            params["ids"] = ",".join(ids)
        found = await self._call("GET", "/queue/jobs", params=params)
        return Listing(found["jobs"], found["counts"], found["ran_twice"])

    async def clear(self) -> None:
        await self._call("DELETE", "/queue/jobs")

    async def workers_ready(self, count: int, within_s: float = 30.0) -> list[dict[str, Any]]:
        """Wait until ``count`` workers report in (a worker process starts in ~0.5 s)."""
        deadline = time.monotonic() + within_s
        while True:
            workers = (await self.status())["workers"]
            ready = [w for w in workers if w["state"] in ("idle", "busy")]
            if len(ready) >= count:
                return ready
            if time.monotonic() > deadline:
                raise QueueUnavailable(
                    f"{len(ready)} of {count} workers ready after {within_s:g} s"
                )
            await asyncio.sleep(POLL_S)

    async def until(self, backend: str, ids: list[str], finished: int, within_s: float) -> Listing:
        """Wait until ``finished`` of ``ids`` are done or failed; the last listing."""
        deadline = time.monotonic() + within_s
        while True:
            listing = await self.jobs(backend, ids)
            if listing.finished >= finished or time.monotonic() > deadline:
                return listing
            await asyncio.sleep(POLL_S)
