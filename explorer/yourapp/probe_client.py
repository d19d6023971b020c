"""The probe over HTTP: what the Your app view reads from an app in another process.

Every call is one short request with a timeout, so a probe that stops answering (the
app died, or hangs) turns into a :class:`ProbeError` the view can say in a line, never a
frozen UI. Widgets get typed records (``probe_records``), never JSON.
"""

from __future__ import annotations

from typing import Any, Protocol

import httpx

from explorer.yourapp.probe_records import (
    MonitorReading,
    ProbeError,
    ProbeInfo,
    SourceLines,
    info_of,
    reading_of,
    source_of,
)
from explorer.yourapp.target import ProbeTarget
from fastasync_probe import PREFIX

#: a probe that takes longer than this to answer is "not answering"
TIMEOUT_S = 3.0
#: seconds of lag figures the view asks for (the latency bar's rolling p50/p99)
WINDOW_S = 10


class ProbeSource(Protocol):
    """What the view reads: the probe over HTTP (:class:`ProbeClient`), or, for a snapshot
    test, answers recorded from one."""

    async def info(self) -> ProbeInfo: ...

    async def monitor(self, after: int) -> MonitorReading: ...

    async def tasks(self) -> dict[str, Any]: ...

    async def source(self, file: str, line: int, context: int = 8) -> SourceLines: ...

    async def openapi(self) -> dict[str, Any] | None: ...

    async def aclose(self) -> None: ...


class ProbeClient:
    """Reads ``target``'s probe; each method raises :class:`ProbeError` on any failure."""

    def __init__(self, target: ProbeTarget, *, timeout_s: float = TIMEOUT_S) -> None:
        self.target = target
        self._http = httpx.AsyncClient(
            base_url=target.url.rstrip("/"),
            headers=target.headers(),
            timeout=timeout_s,
            # the user's app is usually on loopback: no proxy from the environment
            trust_env=False,
        )

    async def _get(self, path: str, **params: Any) -> Any:
        try:
            response = await self._http.get(path, params=params or None)
        except httpx.HTTPError as exc:
            raise ProbeError(f"the probe at {self.target.url} does not answer ({exc!r})") from exc
        if response.status_code == 403:
            raise ProbeError(f"the probe refused: {_detail(response)} (a token is needed)")
        if response.status_code != 200:
            raise ProbeError(f"{path} answered {response.status_code}: {_detail(response)}")
        try:
            return response.json()
        except ValueError as exc:
            raise ProbeError(f"{path} did not answer JSON") from exc

    async def info(self) -> ProbeInfo:
        """``GET /_fastasync``: the probe's identity and how it measures."""
        return info_of(await self._get(PREFIX))

    async def monitor(self, after: int) -> MonitorReading:
        """The rolling figures and the stalls with a seq above ``after``."""
        return reading_of(await self._get(f"{PREFIX}/monitor", window=WINDOW_S, after=after))

    async def tasks(self) -> dict[str, Any]:
        """The task inspector's snapshot of the app's loop."""
        data: dict[str, Any] = await self._get(f"{PREFIX}/tasks", long_wait_s=1, limit=200)
        return data

    async def source(self, file: str, line: int, context: int = 8) -> SourceLines:
        """Lines of the app's own ``file`` around ``line``."""
        data = await self._get(f"{PREFIX}/source", file=file, line=line, context=context)
        try:
            return source_of(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise ProbeError(f"the source answer cannot be read ({exc!r})") from exc

    async def openapi(self) -> dict[str, Any] | None:
        """The app's OpenAPI document, or None when it has none (404, not JSON)."""
        try:
            response = await self._http.get("/openapi.json")
        except httpx.HTTPError as exc:
            raise ProbeError(f"the app at {self.target.url} does not answer ({exc!r})") from exc
        if response.status_code != 200:
            return None
        try:
            document = response.json()
        except ValueError:
            return None
        return document if isinstance(document, dict) and "paths" in document else None

    async def aclose(self) -> None:
        await self._http.aclose()


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    return str(detail) if detail else response.reason_phrase
