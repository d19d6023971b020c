"""Correctness's scenarios (scaffold): none yet."""

from __future__ import annotations

from explorer.tools.report.scenario import Scenario

SCENARIOS: tuple[Scenario, ...] = ()
