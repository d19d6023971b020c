"""The app must start from a wheel (non-editable install), with its TCSS inside."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

STARTS_FROM_WHEEL = """
import asyncio, sys
import explorer, server
assert explorer.__file__.startswith(sys.argv[1]), explorer.__file__
assert server.__file__.startswith(sys.argv[1]), server.__file__
from explorer.app import ExplorerApp
from server.settings import Settings

async def main() -> None:
    app = ExplorerApp(Settings(port=0))
    async with app.run_test(size=(100, 30)) as pilot:
        while app.context is None:
            await pilot.pause(0.02)
        assert app.query_one("#nav").styles.width.value == 23  # from app.tcss
        await pilot.press("q")
        while app.return_code is None:
            await pilot.pause(0.02)
    assert app.return_code == 0

asyncio.run(main())
print("started from the wheel")
"""


def test_wheel_ships_everything_and_the_app_starts_from_it(tmp_path: Path) -> None:
    build = subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert build.returncode == 0, build.stderr
    wheel = next(tmp_path.glob("fastasync_explorer-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "explorer/app.tcss" in names
    assert "server/py.typed" in names
    assert "server/monitor/watchdog.py" in names
    assert not any(name.startswith("tests/") for name in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert (
        "fastasync-explorer = explorer.cli:main"
        in zipfile.ZipFile(wheel).read(entry_points).decode()
    )

    target = tmp_path / "site"
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(target),
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert install.returncode == 0, install.stderr
    # Run from an empty directory with the wheel's copy first on the path, not the checkout.
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    run = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            f"import sys; sys.path.insert(0, {str(target)!r}); "
            f"sys.argv[1:] = [{str(target)!r}]; exec({STARTS_FROM_WHEEL!r})",
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "started from the wheel" in run.stdout
