"""A validated numeric input, the way every pane takes its parameters."""

from __future__ import annotations

from textual import events
from textual.validation import Integer, Number
from textual.widgets import Input

#: what a number field may ever hold: its own keys, never the app's
_NUMBER_ALPHABET = frozenset("0123456789.-+_eE")


class NumberField(Input):
    """An Input that holds only what a number in its range can need.

    It takes no more characters than its bound has (``100`` → 3), so digits pressed after
    an "invalid input" toast cannot pile up in it. Keys it will never hold (letters such
    as ``r``, ``b``, ``q``) are not swallowed: they reach the app's bindings, so ``r`` runs
    the pane and ``q`` quits even while the field has focus.
    """

    def check_consume_key(self, key: str, character: str | None) -> bool:
        # Letters are the app's keys; digits and signs belong to the field even when it is
        # full (refused with the bell rather than switching panes under the user's hands).
        return character is not None and character in _NUMBER_ALPHABET

    async def _on_key(self, event: events.Key) -> None:
        # Textual calls each class's own handler in turn: Input's comes next and takes the
        # key, unless it is not the field's to take. Then prevent_default skips Input's
        # handler, and the key, not stopped, bubbles up to the app's bindings (r, b, q...).
        if event.is_printable and event.character not in _NUMBER_ALPHABET:
            event.prevent_default()


def _plain(bound: float) -> str:
    """``2000000`` and ``0.5``, never ``2e+06``."""
    return f"{bound:f}".rstrip("0").rstrip(".")


def _width_of(low: float, high: float, value: str, whole: bool) -> int:
    """Characters enough for any value in ``low..high`` written plainly."""
    widest = max(len(_plain(low)), len(_plain(high)), len(value))
    # a fractional field also takes a few decimals (0.25, 1.125)
    return widest if whole else widest + 4


def number_input(input_id: str, value: str, low: float, high: float, meaning: str) -> Input:
    """A compact field for ``low..high``: integers unless a bound or the value is fractional.

    The tooltip doubles as the field's name in validation messages.
    """
    whole = all(float(bound).is_integer() for bound in (low, high)) and "." not in value
    return NumberField(
        value,
        type="integer" if whole else "number",
        id=input_id,
        validators=[Integer(int(low), int(high)) if whole else Number(low, high)],
        tooltip=f"{meaning}, {low:g} to {high:,g}",
        max_length=_width_of(low, high, value, whole),
        compact=True,
    )


def invalid_fields(*fields: Input) -> list[tuple[Input, str]]:
    """Each field whose value fails its validators, with the reasons in words."""
    problems = []
    for field in fields:
        result = field.validate(field.value)
        if result is not None and not result.is_valid:
            problems.append((field, f"{field.tooltip}: {'; '.join(result.failure_descriptions)}"))
    return problems
