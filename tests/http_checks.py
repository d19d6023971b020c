"""HTTP checks the pattern tests share: a body sent as it is, and what a clear 422 is."""

from __future__ import annotations

from typing import Any

import httpx

#: labels a raw body as JSON, so that the app's parser (not httpx's encoder) reads it
JSON_CONTENT = {"content-type": "application/json"}


async def send_raw(
    client: httpx.AsyncClient, method: str, path: str, body: bytes | None
) -> httpx.Response:
    """``body`` exactly as given (labelled JSON), or no body at all when it is ``None``."""
    headers = JSON_CONTENT if body is not None else {}
    return await client.request(method, path, content=body, headers=headers)


def clear_422_detail(response: httpx.Response) -> list[dict[str, Any]]:
    """A 422 whose every item says what is wrong (``msg``); those items, for more checks."""
    assert response.status_code == 422, response.text
    detail: list[dict[str, Any]] = response.json()["detail"]
    assert all(item["msg"] for item in detail)
    return detail
