"""The ``fastasync-explorer`` command's entry point.

The wheel keeps the explorer's own packages, ``server`` and ``explorer``, inside this one
(``fastasync_explorer/_app/``) instead of at the top of site-packages, where they would
overwrite, or be overwritten by, a user's own package of the same name. This entry point
puts them on the path of the explorer's own process only; the user's app runs in a
process of its own that sees nothing of them but the probe, ``fastasync_probe``.
"""

from __future__ import annotations

import sys
from pathlib import Path

#: where the wheel keeps ``server`` and ``explorer`` (absent in a checkout, where they are
#: top-level folders)
BUNDLED = Path(__file__).resolve().parent / "_app"


def use_bundled_packages() -> None:
    """Make the wheel's ``server`` and ``explorer`` importable in this process, first."""
    if BUNDLED.is_dir() and str(BUNDLED) not in sys.path:
        sys.path.insert(0, str(BUNDLED))


def main() -> int:
    """``fastasync-explorer``: the explorer's own command line; its exit code."""
    use_bundled_packages()
    from explorer.cli import main as explorer_main

    return explorer_main()
