"""Field types that read JSON the way JSON Schema does."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator


def _integral(value: Any) -> Any:
    # For a strict model: JSON Schema counts 41.0 as an integer, pydantic's strict mode
    # does not. Lax mode would be worse: it turns `true` into 1 and "5" into 5.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


#: An integer in a strict model's JSON body: ``5`` and ``5.0`` are accepted, ``true``,
#: ``5.5`` and ``"5"`` are not.
JsonInt = Annotated[int, BeforeValidator(_integral)]
