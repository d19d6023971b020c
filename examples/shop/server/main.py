"""The shop's FastAPI app: ``uvicorn server.main:app --app-dir examples/shop``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import StreamingResponse

from . import catalog, orders, pricing, rates
from .export import sales_csv
from .upstream import RatesUpstream


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start the rates upstream for the app's lifetime; stop it when the app stops."""
    upstream = RatesUpstream()
    upstream.start()
    app.state.rates_url = upstream.url
    try:
        yield
    finally:
        # the upstream's shutdown() waits for its serve_forever loop: not on the event loop
        await asyncio.to_thread(upstream.stop)


app = FastAPI(title="Shop", version="1.0.0", lifespan=lifespan)


@app.get("/health")
async def health() -> dict[str, str]:
    """Liveness: answers at once."""
    return {"status": "ok"}


@app.get("/products")
async def list_products() -> list[catalog.Product]:
    """The catalogue (a short await, as a database read would be)."""
    await asyncio.sleep(0.005)
    return catalog.all_products()


@app.get("/products/{product_id}")
async def product_page(product_id: int) -> catalog.ProductPage:
    """One product with its stock level."""
    page = catalog.find(product_id)
    if page is None:
        raise HTTPException(status_code=404, detail=f"No product {product_id}.")
    return page


@app.get("/quote")
async def get_quote(items: int = Query(default=3, ge=1, le=1000)) -> pricing.Quote:
    """The price of ``items`` espresso cups, discount included."""
    return pricing.quote(items)


@app.get("/rates")
async def get_rates(request: Request) -> dict[str, Any]:
    """Today's exchange rates, from the upstream service."""
    return await rates.current_rates(request.app.state.rates_url)


@app.post("/orders", status_code=201)
async def create_order(order: orders.OrderIn) -> orders.OrderOut:
    """Accept an order; its confirmation goes out in the background."""
    if order.product_id not in catalog.PRODUCTS:
        raise HTTPException(status_code=404, detail=f"No product {order.product_id}.")
    return orders.place(order)


@app.get("/export")
async def export() -> StreamingResponse:
    """The sales export as CSV, streamed."""
    return StreamingResponse(sales_csv(), media_type="text/csv")
