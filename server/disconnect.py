"""Noticing that an HTTP client hung up, for handlers that wait on something long."""

from __future__ import annotations

from starlette.requests import Request


async def until_disconnected(request: Request) -> None:
    """Return when the client goes away (call it once the request body has been read).

    Starlette reads the ASGI ``receive`` channel; after the body, the only message left
    is ``http.disconnect``, so this waits without polling.
    """
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return
