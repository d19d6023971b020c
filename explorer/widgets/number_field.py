"""A validated numeric input, the way every pane takes its parameters."""

from __future__ import annotations

from textual.validation import Integer, Number
from textual.widgets import Input


def number_input(input_id: str, value: str, low: float, high: float, meaning: str) -> Input:
    """An Input for ``low..high``: integers unless a bound or the value is fractional.

    The tooltip doubles as the field's name in validation messages.
    """
    whole = all(float(bound).is_integer() for bound in (low, high)) and "." not in value
    return Input(
        value,
        type="integer" if whole else "number",
        id=input_id,
        validators=[Integer(int(low), int(high)) if whole else Number(low, high)],
        tooltip=f"{meaning}, {low:g} to {high:,g}",
    )


def invalid_fields(*fields: Input) -> list[tuple[Input, str]]:
    """Each field whose value fails its validators, with the reasons in words."""
    problems = []
    for field in fields:
        result = field.validate(field.value)
        if result is not None and not result.is_valid:
            problems.append((field, f"{field.tooltip}: {'; '.join(result.failure_descriptions)}"))
    return problems
