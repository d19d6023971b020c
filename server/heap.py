"""Keep long-lived startup objects out of later garbage collections."""

from __future__ import annotations

import gc


def settle_heap() -> None:
    """Collect once, then move every surviving object to the permanent generation.

    Imports and app construction leave hundreds of thousands of objects that live as long
    as the process; without this, each full collection walks them all again, pausing the
    shared loop by tens of milliseconds. Call it when startup is done.
    """
    gc.collect()
    gc.freeze()
