"""The report's scenarios, in menu order: each pattern's ``scenarios.py``.

Each drives the embedded server over real loopback HTTP (and WebSocket) exactly as a user
would; the runner switches blocking mode (``PUT /monitor/blocking``) between the two
forms, so the server code that runs is the code the panes show.
"""

from __future__ import annotations

from dataclasses import replace

from explorer.patterns import part_of
from explorer.tools.report.scenario import Scenario
from server.patterns import PATTERNS


def scenarios_of(slug: str) -> tuple[Scenario, ...]:
    """``explorer.patterns.<slug>.scenarios.SCENARIOS``, each marked as the pattern's."""
    scenarios: tuple[Scenario, ...] = part_of(slug, "scenarios").SCENARIOS
    return tuple(replace(scenario, pattern=slug) for scenario in scenarios)


SCENARIOS: tuple[Scenario, ...] = tuple(s for slug in PATTERNS for s in scenarios_of(slug))
