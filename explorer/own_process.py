"""Child processes that run the explorer's own code need its packages on their path.

Installed from the wheel, ``server`` and ``explorer`` live inside ``fastasync_explorer``
(see ``fastasync_explorer/__init__.py``), not at the top of site-packages, so a plain
``python -m explorer...`` child would not find them. A user's app never gets this path.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

#: the folder that holds ``server/`` and ``explorer/`` (the checkout, or the wheel's _app)
OWN_ROOT = Path(__file__).resolve().parent.parent


def own_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) with the explorer's packages first
    on ``PYTHONPATH``."""
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(OWN_ROOT), *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])]
    )
    return env
