"""Request parameters that more than one pattern takes, so the rule is written once."""

from __future__ import annotations

from typing import Any

from fastapi import Path

#: A short name: safe in a URL, a log line and a cache key.
SHORT_NAME_PATTERN = r"^[A-Za-z0-9_.-]+$"


def short_name_in_path(description: str) -> Any:
    """A path parameter of 1 to 64 letters, digits, '_', '.' or '-' (``Annotated`` metadata)."""
    return Path(min_length=1, max_length=64, pattern=SHORT_NAME_PATTERN, description=description)
