"""``fastasync-explorer report``: every scenario, right and pitfall, measured without a UI."""

from __future__ import annotations

from explorer.tools.report.cli import run_report_command

__all__ = ["run_report_command"]
