"""Quotes: the price of a basket, with a loyalty discount computed the slow way."""

from __future__ import annotations

from pydantic import BaseModel

#: rounds of the discount's "risk score": about 80 ms of pure Python on a 2-core VM
SCORE_ROUNDS = 1_200_000


class Quote(BaseModel):
    """What a basket of ``items`` articles costs."""

    items: int
    subtotal_cents: int
    discount_cents: int
    total_cents: int


def _risk_score(seed: int) -> int:
    """A deterministic number in [0, 1_000_003): CPU work that never yields the loop."""
    acc = seed
    for i in range(SCORE_ROUNDS):
        # the line a stack sample finds: the loop's jump back (where the GIL switches)
        # belongs to the body's last line
        acc = (acc * 31 + i) % 1_000_003  # injected: cpu-hot-spot
    return acc


def quote(items: int, unit_cents: int = 450) -> Quote:
    """The quote for ``items`` articles at ``unit_cents`` each (up to 10 % off)."""
    subtotal = items * unit_cents
    discount = subtotal * (_risk_score(items) % 11) // 100
    return Quote(
        items=items,
        subtotal_cents=subtotal,
        discount_cents=discount,
        total_cents=subtotal - discount,
    )
