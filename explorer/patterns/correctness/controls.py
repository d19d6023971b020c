"""What the correctness tabs' controls share: a compact choice and the tab's lesson line."""

from __future__ import annotations

from textual.widgets import Select, Static

from explorer.pane import LessonLine

Choices = tuple[tuple[str, str], ...]


def choice_select(select_id: str, options: Choices, value: str, classes: str = "") -> Select[str]:
    """A compact drop-down of ``options`` (label, value) with ``value`` chosen."""
    # type_to_search off: the app's keys (digits, b, r, c, q) must reach it
    return Select(
        options,
        value=value,
        allow_blank=False,
        type_to_search=False,
        id=select_id,
        classes=classes,
        compact=True,
    )


class TabLesson(Static):
    """The tab's own lesson line (not the pane's ``Lesson``: the pane may have one)."""

    DEFAULT_CSS = """
    TabLesson { height: auto; color: $text-muted; }
    TabLesson.-blocking { color: $error; }
    """

    def show(self, line: LessonLine) -> None:
        """Say ``line`` (in the error colour when it is the pitfall's)."""
        self.update(line.text)
        self.set_class(line.pitfall, "-blocking")


def form_lesson(text: str, pitfall: bool, blocking: bool) -> LessonLine:
    """A form's lesson line; the pitfall's, taken because of blocking mode, says so."""
    return LessonLine(f"Blocking mode: {text}" if pitfall and blocking else text, pitfall)
