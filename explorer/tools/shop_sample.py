"""The sample shop app (``examples/shop``) as the benchmarks and the report use it.

Its mistakes are marked in its source (``# injected: <kind>``); the lines a correct report
must name are read from there, never written down twice. The shop's package is called
``server`` on purpose, so it only ever runs in a child process of its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from explorer.tools.bench_kit import BenchError

#: the checkout's examples (they are not in the wheel: the benchmarks run from a checkout)
SHOP = Path(__file__).resolve().parents[2] / "examples" / "shop"
_MARK = re.compile(r"#\s*injected:\s*([\w-]+)")

#: each injected stall and the request that sets it off
STALL_REQUESTS: dict[str, tuple[str, str]] = {
    "hidden-sleep": ("GET", "/products/1"),
    "cpu-hot-spot": ("GET", "/quote?items=3"),
    "sync-http": ("GET", "/rates"),
    "mid-stream": ("GET", "/export"),
}
#: the route each of them belongs to, as the probe names routes (templates)
STALL_ROUTES: dict[str, str] = {
    "hidden-sleep": "GET /products/{product_id}",
    "cpu-hot-spot": "GET /quote",
    "sync-http": "GET /rates",
    "mid-stream": "GET /export",
}


@dataclass(frozen=True, slots=True)
class Injected:
    """Where one mistake is: its file (relative to the shop) and the lines that are it
    (the marked line, and the body of the block it opens: a CPU loop is sampled on both
    its ``for`` line and its body)."""

    kind: str
    path: str  # "server/inventory.py"
    lines: frozenset[int]

    @property
    def first_line(self) -> int:
        return min(self.lines)

    def __str__(self) -> str:
        return f"{self.path}:{self.first_line}"

    def named_by(self, location: str | None) -> bool:
        """Does ``"server/inventory.py:17 in stock_level"`` point at this mistake?"""
        if not location:
            return False
        where = location.split(" in ", 1)[0]
        path, _, line = where.rpartition(":")
        return path.endswith(self.path) and line.isdigit() and int(line) in self.lines


def require_shop() -> Path:
    """The shop's folder, or a BenchError saying the benchmark needs a checkout."""
    if not (SHOP / "server" / "main.py").is_file():
        raise BenchError(f"the sample app is not here ({SHOP}): run this from a checkout")
    return SHOP


def injected_mistakes(shop: Path = SHOP) -> dict[str, Injected]:
    """Every ``# injected: <kind>`` mark in the shop's source."""
    found: dict[str, Injected] = {}
    for source in sorted((shop / "server").glob("*.py")):
        lines = source.read_text().splitlines()
        for number, text in enumerate(lines, 1):
            mark = _MARK.search(text)
            if mark is None:
                continue
            block = {number}
            indent = len(text) - len(text.lstrip())
            for later, body in enumerate(lines[number:], number + 1):
                if body.strip() and len(body) - len(body.lstrip()) <= indent:
                    break
                if body.strip():
                    block.add(later)
            relative = source.relative_to(shop).as_posix()
            found[mark.group(1)] = Injected(mark.group(1), relative, frozenset(block))
    return found
