"""Orders: accepted at once, confirmed by e-mail "later"."""

from __future__ import annotations

import asyncio
import itertools

from pydantic import BaseModel, Field

#: how long the mail server takes to say it sent the confirmation
CONFIRMATION_WAIT_S = 30.0

_order_ids = itertools.count(1001)


class OrderIn(BaseModel):
    """An order as the client sends it."""

    product_id: int = Field(ge=1)
    quantity: int = Field(ge=1, le=100)
    email: str = Field(min_length=3, pattern=r"^[^@\s]+@[^@\s]+$")


class OrderOut(BaseModel):
    """What the client is told: its order number, and that it is accepted."""

    order_id: int
    product_id: int
    quantity: int
    status: str


async def send_confirmation(order_id: int, email: str) -> None:
    """Waits for the (imaginary) mail server: a task nobody awaits or keeps."""
    await asyncio.sleep(CONFIRMATION_WAIT_S)


def place(order: OrderIn) -> OrderOut:
    """Accept ``order`` and send its confirmation in the background (call it on the loop)."""
    order_id = next(_order_ids)
    asyncio.create_task(send_confirmation(order_id, order.email))  # injected: leaked-task
    return OrderOut(
        order_id=order_id, product_id=order.product_id, quantity=order.quantity, status="accepted"
    )
