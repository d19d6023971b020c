"""The shop app under each instrument the probe is compared with, and what each one said.

- the probe (``server.probed:app``): reads its stalls from ``/_fastasync/monitor``;
- fastapi-loopguard (its ``LoopGuardMiddleware``, defaults): reads the banner it prints
  for each request that was in flight during a stall (``In-flight request: GET /path``);
- blockbuster (``BlockBuster("server")``: calls made from the shop's own modules): it
  raises ``BlockingError`` in the request, which uvicorn logs with its traceback; the
  innermost frame in the shop's code is what it names.

Both rivals come from PyPI (``pip install -e '.[bench]'``). Their wrapper modules are
written into a scratch folder at run time, next to nothing of the explorer's.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass, field

from explorer.tools.bench_kit import BenchError

#: the variants of the shop the benchmark serves, by the ASGI target uvicorn imports
TARGETS = {
    "plain": "server.main:app",
    "probe": "server.probed:app",
    "loopguard": "fastasync_bench_loopguard:app",
    "blockbuster": "fastasync_bench_blockbuster:app",
}

WRAPPERS = {
    "fastasync_bench_loopguard.py": '''\
"""The shop with fastapi-loopguard's middleware at its defaults (warn mode)."""
import logging
from fastapi_loopguard import LoopGuardMiddleware
from server.main import app

logging.basicConfig(level=logging.WARNING, format="%(name)s %(levelname)s %(message)s")
app.add_middleware(LoopGuardMiddleware)
''',
    "fastasync_bench_blockbuster.py": '''\
"""The shop with blockbuster watching calls made from the shop's own package."""
from blockbuster import BlockBuster
from server.main import app

BlockBuster("server").activate()
''',
}

_LOOPGUARD = re.compile(r"In-flight request: (\w+) (\S+)")
_FRAME = re.compile(r'File "([^"]+)", line (\d+), in (\S+)')
_BLOCKING_ERROR = re.compile(r"BlockingError: Blocking call to (\S+)")


def require_rivals() -> None:
    """A BenchError naming what to install when a rival is missing."""
    missing = [
        name for name in ("fastapi_loopguard", "blockbuster") if not importlib.util.find_spec(name)
    ]
    if missing:
        raise BenchError(
            f"{' and '.join(missing)} not installed: pip install -e '.[bench]' (from PyPI)"
        )


@dataclass
class RivalSaw:
    """What a rival reported for one injected stall."""

    #: the routes (paths) it named for the stall: loopguard names every request in flight
    paths: list[str] = field(default_factory=list)
    #: the line it named ("server/inventory.py:17 in stock_level"), when it names one
    location: str | None = None
    #: what it did to the request: "ok", "500", "cut" (a stream that broke off)
    effect: str = "ok"
    #: the blocking function it caught (blockbuster)
    caught: str | None = None


def loopguard_saw(log: str) -> RivalSaw:
    """The loopguard warnings in ``log`` (the part written during one stall's request)."""
    return RivalSaw(paths=[f"{m.group(1)} {m.group(2)}" for m in _LOOPGUARD.finditer(log)])


def blockbuster_saw(log: str, shop_folder: str, status: int, complete: bool) -> RivalSaw:
    """What blockbuster raised in ``log``: the innermost frame of the shop's code in the
    traceback uvicorn logged, and what it did to the request."""
    caught = _BLOCKING_ERROR.search(log)
    location = None
    if caught is not None:
        frames = [m for m in _FRAME.finditer(log[: caught.start()]) if shop_folder in m.group(1)]
        if frames:
            last = frames[-1]
            path = last.group(1).split(shop_folder, 1)[1].lstrip("/")
            location = f"{path}:{last.group(2)} in {last.group(3)}"
    effect = "ok" if status < 500 and complete else ("500" if status >= 500 else "cut")
    return RivalSaw(
        location=location,
        effect=effect,
        caught=caught.group(1) if caught else None,
    )
