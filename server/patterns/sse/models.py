"""The SSE pattern's JSON bodies: the bus ticker's interval, the leaks ended."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from server.patterns.sse.feeds import TICK_MAX_S, TICK_MIN_S


class TickIntervalIn(BaseModel):
    """``PUT /sse/tick-interval`` body."""

    model_config = ConfigDict(extra="forbid", strict=True)
    interval_s: float = Field(ge=TICK_MIN_S, le=TICK_MAX_S, allow_inf_nan=False)


class TickIntervalOut(BaseModel):
    interval_s: float


class LeakedOut(BaseModel):
    cancelled: int
