"""The explorer's home of every pattern: ``explorer/patterns/<slug>/``.

``pane.py`` (its :class:`~explorer.pane.PatternPane`), ``scenarios.py`` (its part of the
headless report) and whatever else the pattern needs (its widgets, ``bench.py``, ``load.py``
for the soak). The slugs and their order come from :data:`server.patterns.PATTERNS`.
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType


def part_of(slug: str, part: str) -> ModuleType:
    """``explorer.patterns.<slug>.<part>`` (``pane``, ``scenarios``, ``bench``...)."""
    return import_module(f"explorer.patterns.{slug}.{part}")
