"""What a user types for a route and a budget: ``'POST /orders {"item": "x"}'``, ``50ms``."""

from __future__ import annotations

import json
import re

from explorer.yourapp.load_driver import LoadSpec

#: the methods a route spec may name (a bare path is a GET)
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s)?\s*$", re.IGNORECASE)


class SpecError(ValueError):
    """A route spec or a budget that cannot be read, as one sentence."""


def parse_route(text: str, *, concurrency: int = 4, duration_s: float = 3.0) -> LoadSpec:
    """``"GET /products/1"``, ``"/quote?items=3"`` or ``'POST /orders {"item": "x"}'``:
    method (default GET), path with its query, and a JSON body."""
    words = text.strip().split(None, 1)
    if not words:
        raise SpecError("a route spec is empty; write it as 'GET /path'")
    method = "GET"
    if words[0].upper() in METHODS:
        method = words[0].upper()
        words = words[1].split(None, 1) if len(words) > 1 else []
    elif not words[0].startswith("/"):
        raise SpecError(f"{text!r} does not start with a method ({', '.join(METHODS)}) or a path")
    if not words or not words[0].startswith("/"):
        raise SpecError(f"{text!r} has no path; write it as '{method} /path'")
    path, body_text = words[0], (words[1] if len(words) > 1 else "")
    body = None
    if body_text.strip():
        try:
            body = json.loads(body_text)
        except json.JSONDecodeError as exc:
            raise SpecError(f"the body of {text!r} is not JSON: {exc.msg} (at {exc.pos})") from None
    try:
        return LoadSpec(
            method, path, json_body=body, concurrency=concurrency, duration_s=duration_s
        )
    except ValueError as exc:
        raise SpecError(f"{text!r}: {exc}") from None


def parse_ms(text: str, *, what: str = "a budget") -> float:
    """``"50ms"``, ``"0.05s"`` or ``"50"`` (milliseconds): a positive number of ms."""
    match = _DURATION.match(text)
    if match is None:
        raise SpecError(f"{what} is a time like 50ms or 0.05s, not {text!r}")
    value = float(match.group(1)) * (1000.0 if (match.group(2) or "").lower() == "s" else 1.0)
    if value <= 0:
        raise SpecError(f"{what} must be more than 0 ms, not {text!r}")
    return value
