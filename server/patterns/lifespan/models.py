"""The lifespan pattern's API models."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from server.patterns.lifespan.pool import PoolGauge

PoolForm = Literal["acm", "leak"]


class LifeEvent(BaseModel):
    """One step of a child app's life."""

    at_ms: float = Field(description="Since the child app was built.")
    text: str


class AppRunOut(BaseModel):
    """One child app's whole life, and what it left open."""

    form: Literal["lifespan", "naive", "on_event"]
    fail_at: Literal["none", "second"]
    started: bool = Field(description="Startup completed and the server accepted requests.")
    served: bool = Field(description="The one request through it answered 200.")
    events: list[LifeEvent]
    opened: list[str] = Field(description="Every resource it opened, in order.")
    still_open: list[str] = Field(description="Those still open once its server was gone.")
    warnings: list[str] = Field(description="What building the app warned (recorded).")
    globals_used: list[str] = Field(description="Module globals that held its resources.")
    leftovers: int = Field(description="Resources left open by runs so far, not cleaned up.")
    elapsed_ms: float


class CleanupOut(BaseModel):
    """What the cleanup closed."""

    closed: list[str]
    leftovers: int


class PoolRequestOut(BaseModel):
    """A request that got its connection, did its work and committed."""

    form: PoolForm
    committed: bool
    pool: PoolGauge


class ResetOut(BaseModel):
    """Leaked connections rolled back and given back to the pool."""

    returned: int
    pool: PoolGauge
