"""The Lifespan pane's requests, over real HTTP: a child app's life, and a pool drained
request by request. What the pane shows as its client code."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass(frozen=True)
class PoolStep:
    """One request of a drain: its status, what it answered, the gauge right after."""

    n: int
    status: int
    detail: str
    gauge: dict[str, Any]


@dataclass
class Drain:
    """A run of failing requests on the pool, and what the reset before it gave back."""

    form: str
    requests: int
    returned_first: int = 0
    steps: list[PoolStep] = field(default_factory=list)


def form_param(form: str) -> dict[str, str]:
    """The ``form`` query parameter; none when the pane follows blocking mode."""
    return {} if form == "mode" else {"form": form}


async def app_life(http: httpx.AsyncClient, form: str, fail_at: str) -> dict[str, Any]:
    """A child app's whole life on the server: its event log and what it left open."""
    response = await http.post("/lifespan/app/run", params={**form_param(form), "fail_at": fail_at})
    response.raise_for_status()
    life: dict[str, Any] = response.json()
    return life


async def clean_up(http: httpx.AsyncClient) -> dict[str, Any]:
    """Close what child apps left open."""
    response = await http.post("/lifespan/app/cleanup")
    response.raise_for_status()
    closed: dict[str, Any] = response.json()
    return closed


async def reset_pool(http: httpx.AsyncClient) -> dict[str, Any]:
    """Give the leaked connections back."""
    response = await http.post("/lifespan/pool/reset")
    response.raise_for_status()
    reset: dict[str, Any] = response.json()
    return reset


async def drain_pool(
    http: httpx.AsyncClient,
    form: str,
    requests: int,
    timeout_s: float,
    step: Callable[[PoolStep], None],
) -> Drain:
    """Reset the pool, then ``requests`` failing requests one after another, each followed
    by a reading of the gauge (handed to ``step`` as it comes)."""
    run = Drain(form, requests, returned_first=(await reset_pool(http))["returned"])
    params = {**form_param(form), "fail": "true", "timeout_s": str(timeout_s)}
    for n in range(1, requests + 1):
        response = await http.post("/lifespan/pool/request", params=params)
        detail = str(response.json().get("detail", "committed"))
        gauge = (await http.get("/lifespan/pool")).json()
        run.steps.append(PoolStep(n, response.status_code, detail, gauge))
        step(run.steps[-1])
    return run
