"""The soak script works end to end (the real soak is 10 minutes: see README)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from explorer.tools.soak import slope_per_minute

ROOT = Path(__file__).resolve().parent.parent
SOAK = [sys.executable, "-m", "explorer.tools.soak"]


def test_slope_is_per_minute() -> None:
    assert slope_per_minute([(0.0, 10.0), (60.0, 12.0), (120.0, 14.0)]) == 2.0
    assert slope_per_minute([(0.0, 5.0)]) == 0.0


def test_a_short_soak_answers_everything_and_reports_slopes() -> None:
    completed = subprocess.run(
        [*SOAK, "--minutes", "0.2", "--toggle-s", "4", "--warmup-s", "0"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )
    out = completed.stdout
    assert completed.returncode == 0, out[-3000:] + completed.stderr[-3000:]
    assert "blocking mode flipped 2 times" in out
    for figure in ("rss_bytes MiB", "open_fds", "threads", "asyncio_tasks"):
        assert figure in out
    assert "every request answered" in out
    assert "server exited with 0" in out
