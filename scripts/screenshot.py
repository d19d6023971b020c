"""Save the README screenshot: the real app, a real run in blocking mode, real figures.

.venv/bin/python scripts/screenshot.py [assets/explorer.svg]
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from explorer.app import ExplorerApp
from explorer.patterns.basics.pane import BasicsPane
from server.settings import Settings


async def main(target: Path) -> None:
    app = ExplorerApp(Settings(port=0))
    async with app.run_test(size=(140, 45)) as pilot:
        while app.context is None or not app.query(BasicsPane):
            await pilot.pause(0.05)
        pane = app.query_one(BasicsPane)
        await pilot.pause(1.0)
        await pilot.press("r")  # right: five overlapping awaits
        while pane.summary is None:
            await pilot.pause(0.05)
        await pilot.pause(1.0)
        await pilot.press("b")  # blocking mode: the same handler, now with time.sleep
        pane.summary = None
        await pilot.press("r")
        while pane.summary is None:
            await pilot.pause(0.05)
        await pilot.pause(1.5)
        app.clear_notifications()
        await pilot.pause(0.3)
        app.save_screenshot(filename=target.name, path=str(target.parent))
        await pilot.press("q")


if __name__ == "__main__":
    destination = Path(sys.argv[1] if len(sys.argv) > 1 else "assets/explorer.svg")
    asyncio.run(main(destination.resolve()))
    print(f"saved {destination}")
