"""The guide fixes' shared query parameter: ``form``, absent when blocking mode decides."""

from __future__ import annotations

from typing import Any


def absent_not_null(schema: dict[str, Any]) -> None:
    """Document an optional query choice as its choices alone.

    A query parameter is absent or a string, never JSON ``null``; FastAPI's
    ``anyOf [..., null]`` made the fuzzer send "null" (serialized as absent, which is
    valid) and expect a refusal.
    """
    options = [option for option in schema.pop("anyOf", []) if option.get("type") != "null"]
    if len(options) == 1:
        schema.update(options[0])
