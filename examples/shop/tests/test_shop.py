"""The shop's tests: what a user of the pytest plugin has.

Run them with the plugin on (``pytest --loop-stall-budget 50ms``) and the product page
test fails: its route holds the loop for 80 ms in server/inventory.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from server.main import app
from starlette.testclient import TestClient


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
        yield client


async def test_product_page_shows_stock(client: httpx.AsyncClient) -> None:
    response = await client.get("/products/2")
    assert response.status_code == 200
    assert response.json()["in_stock"] == 35


async def test_catalogue_lists_every_product(client: httpx.AsyncClient) -> None:
    response = await client.get("/products")
    assert response.status_code == 200
    assert [p["id"] for p in response.json()] == [1, 2, 3, 4]


def test_health_with_the_lifespan_running() -> None:
    with TestClient(app) as sync_client:
        assert sync_client.get("/health").json() == {"status": "ok"}
