"""HTTP checks the pattern tests share: a body sent as it is, a JSON answer, a clear 422."""

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


async def json_answer(
    client: httpx.AsyncClient, verb: str, path: str, /, **given: str | int
) -> dict[str, Any]:
    """The JSON object ``path`` answers ``given`` values with: sent as the query of a GET,
    as the JSON body of a POST (``verb`` says which)."""
    if verb == "GET":
        response = await client.get(path, params=given)
    else:
        assert verb == "POST", verb
        response = await client.post(path, json=given)
    body: dict[str, Any] = response.json()
    return body


def clear_422_detail(response: httpx.Response) -> list[dict[str, Any]]:
    """A 422 whose every item says what is wrong (``msg``); those items, for more checks."""
    assert response.status_code == 422, response.text
    detail: list[dict[str, Any]] = response.json()["detail"]
    assert all(item["msg"] for item in detail)
    return detail
