"""What the correctness demos share: the ``form`` choice and how blocking mode decides it."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Query

from server.patterns.correctness.guide_params import absent_not_null

Form = Literal["right", "pitfall"]

FormQuery = Annotated[
    Form | None,
    Query(
        json_schema_extra=absent_not_null,
        description="right or pitfall; absent: blocking mode decides (on: pitfall)",
    ),
]


def chosen(form: Form | None, blocking: bool) -> Form:
    """The form a request takes: the one asked for, else the pitfall in blocking mode."""
    if form is not None:
        return form
    return "pitfall" if blocking else "right"
