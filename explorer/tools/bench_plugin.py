"""What the pytest plugin costs a passing suite: the shop's tests, three ways, alternated.

- *without*: the plugin blocked (``-p no:fastasync_probe``), as if the explorer were not
  installed;
- *inert*: loaded, as in every pytest run of an environment that has the explorer, with no
  option given (it only registers its options and marker);
- *on*: ``--loop-stall-budget`` over every test, with a budget the shop's slowest stall
  (80 ms) stays under, so the suite still passes and only the monitoring is timed.

Each is the wall time of a whole ``pytest`` process (start-up and collection included:
that is what a user waits for), in rounds that alternate the three so drift in the
machine's speed falls on all of them alike; the median is what counts.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

from explorer.tools.bench_kit import BenchError, format_table
from explorer.tools.shop_sample import require_shop

#: a budget the shop's passing tests stay under (its product page holds the loop 80 ms)
PASSING_BUDGET = "500ms"

MODES: dict[str, list[str]] = {
    "without": ["-p", "no:fastasync_probe"],
    "inert": [],
    "on": ["--loop-stall-budget", PASSING_BUDGET],
}


def time_suite(extra: list[str]) -> float:
    """Seconds of one passing run of the shop's tests; BenchError if it does not pass."""
    shop = require_shop()
    began = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra],
        cwd=shop,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    took = time.perf_counter() - began
    if result.returncode != 0:
        last = (result.stdout.strip().splitlines() or ["no output"])[-1]
        raise BenchError(f"the shop's tests did not pass with {extra or 'no option'}: {last}")
    return took


def plugin_cost(rounds: int) -> dict[str, list[float]]:
    """Wall seconds of each mode, one run per mode per round (after one warm-up each)."""
    for extra in MODES.values():
        time_suite(extra)  # imports cached, bytecode written: not what is measured
    times: dict[str, list[float]] = {mode: [] for mode in MODES}
    for _ in range(rounds):
        for mode, extra in MODES.items():
            times[mode].append(time_suite(extra))
    return times


def render_plugin(times: dict[str, list[float]]) -> str:
    """The table: median wall time per mode and its ratio to *without*."""
    base = statistics.median(times["without"])
    rows = []
    for mode, runs in times.items():
        median = statistics.median(runs)
        rows.append(
            [
                mode,
                " ".join(MODES[mode]) or "(no option)",
                f"{median * 1000:.0f}",
                f"{min(runs) * 1000:.0f}-{max(runs) * 1000:.0f}",
                f"{median / base:.3f}" if base else "-",
            ]
        )
    return "\n".join(
        [
            f"What the pytest plugin costs: the shop's {len(times['without'])}-round "
            "passing suite, a whole pytest process each",
            format_table(["plugin", "options", "median ms", "min-max ms", "÷ without"], rows),
        ]
    )
