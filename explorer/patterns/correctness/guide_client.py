"""The guide-fixes tab's requests, over real HTTP: a burst of concurrent callers of one
debounce key, and one upload under a filename the client picks. What the tab shows as its
client code."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

#: the key the tab's bursts use (reset before each burst, so its counts are the burst's)
TAB_KEY = "guide-tab"
#: how far apart the callers of a burst start
SPACING_S = 0.02


@dataclass(frozen=True)
class Caller:
    """One caller of a burst: what it got back, and how long it waited for it."""

    n: int
    status: int
    waited_ms: float
    outcome: str


@dataclass
class Burst:
    """A burst of callers of one key, and the key's counts once its run is done."""

    form: str
    delay_s: float
    callers: list[Caller] = field(default_factory=list)
    runs: int = 0
    triggers: int = 0

    @property
    def failed(self) -> list[Caller]:
        """The callers whose request failed (the guide form's superseded ones)."""
        return [caller for caller in self.callers if caller.status >= 400]


def form_param(form: str) -> dict[str, str]:
    """The ``form`` query parameter; none when the tab follows blocking mode."""
    return {} if form == "mode" else {"form": form}


def _outcome(response: httpx.Response) -> str:
    body: dict[str, Any] = response.json()
    if response.status_code == 409:
        return "superseded: CancelledError"
    if response.is_success:
        return str(body["outcome"])
    return f"HTTP {response.status_code}: {body.get('detail')}"


async def fire_burst(
    http: httpx.AsyncClient, form: str, callers: int, delay_s: float, key: str = TAB_KEY
) -> Burst:
    """Reset ``key``, then ``callers`` concurrent triggers ``SPACING_S`` apart; once the
    key's run is done (at most ``delay_s`` + 2 s after the last), its counts."""
    (await http.post("/correctness/debounce/reset", params={"key": key})).raise_for_status()
    params = {**form_param(form), "key": key, "delay_s": str(delay_s)}

    async def one(n: int) -> tuple[Caller, str | None]:
        await asyncio.sleep((n - 1) * SPACING_S)
        began = time.perf_counter()
        response = await http.post("/correctness/debounce/trigger", params=params)
        waited_ms = (time.perf_counter() - began) * 1000
        chosen = response.json().get("form") if response.is_success else None
        return Caller(n, response.status_code, waited_ms, _outcome(response)), chosen

    answers = await asyncio.gather(*(one(n) for n in range(1, callers + 1)))
    forms = {chosen for _, chosen in answers if chosen}
    burst = Burst(forms.pop() if len(forms) == 1 else form, delay_s, [c for c, _ in answers])
    deadline = time.perf_counter() + delay_s + 2.0
    while True:
        counts = (await http.get("/correctness/debounce", params={"key": key})).json()
        if not counts["pending"] or time.perf_counter() > deadline:
            break
        await asyncio.sleep(0.05)
    burst.runs, burst.triggers = counts["runs"], counts["triggers"]
    return burst


@dataclass(frozen=True)
class Stored:
    """One upload's answer: its status, and where it went or why it was refused."""

    filename: str
    status: int
    body: dict[str, Any]

    @property
    def detail(self) -> str:
        """The refusal's sentence, or the verdict of a stored upload."""
        return str(self.body.get("detail") or self.body.get("verdict", ""))


async def upload_file(http: httpx.AsyncClient, form: str, filename: str, content: bytes) -> Stored:
    """One multipart upload whose file part carries ``filename`` as the client set it."""
    response = await http.post(
        "/correctness/upload",
        params=form_param(form),
        files={"file": (filename, content, "text/plain")},
    )
    body: dict[str, Any] = response.json()
    return Stored(filename, response.status_code, body)


async def reset_sandbox(http: httpx.AsyncClient) -> int:
    """Empty the upload sandbox: how many files it removed."""
    response = await http.post("/correctness/upload/reset")
    response.raise_for_status()
    removed: int = response.json()["removed"]
    return removed
