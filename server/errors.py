"""App-wide error responses: bad input is a 422 with a message, whatever the input was."""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute


def json_safe(value: Any) -> Any:
    """``value`` with every NaN or infinity replaced by its text, so it can be sent as JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's own 422, made safe to encode.

    Python's JSON parser accepts ``NaN`` and ``1e999``, FastAPI's 422 echoes the refused
    input, and the strict JSON encoder then fails: the client would get a 500 for bad
    input. The errors are the same; only non-finite numbers become text.
    """
    assert isinstance(exc, RequestValidationError)
    detail = json_safe(jsonable_encoder(exc.errors()))
    return JSONResponse(status_code=422, content={"detail": detail})


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(RequestValidationError, validation_error)


UNPARSEABLE_BODY = {
    "description": "The body could not be parsed at all (FastAPI's own answer, e.g. bytes "
    "that are not text): `{detail}` says so."
}


def document_body_errors(router: APIRouter) -> APIRouter:
    """Add FastAPI's 400 for an unparseable body to each of ``router``'s operations that
    read a body, in the routers it includes too (idempotent).

    FastAPI (0.165) keeps an included router by reference, so its routes are reached
    through the router that includes it, whenever this is called.
    """
    for route in router.routes:
        if isinstance(route, APIRoute) and route.body_field is not None:
            route.responses.setdefault(400, UNPARSEABLE_BODY)
        included = getattr(route, "original_router", None)
        if isinstance(included, APIRouter):
            document_body_errors(included)
    return router


def describe(exc: BaseException) -> str:
    """``"ExceptionType: message"`` on one line (the type alone when it has no message).

    Every pattern reports errors in this one form: a job's ``error``, a failed call's
    reason, a 502's detail.
    """
    message = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
