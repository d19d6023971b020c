"""The app must start from a wheel (non-editable install), with its TCSS inside."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

STARTS_FROM_WHEEL = """
import asyncio, sys
import fastasync_explorer
fastasync_explorer.use_bundled_packages()
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
    # two top-level names only: the probe and the entry point that keeps the explorer's own
    # `server` and `explorer` inside it, where no user's package of that name can meet them
    assert {name.split("/")[0] for name in names if ".dist-info/" not in name} == {
        "fastasync_explorer",
        "fastasync_probe",
    }
    assert "fastasync_explorer/_app/explorer/app.tcss" in names
    assert "fastasync_explorer/_app/server/py.typed" in names
    assert "fastasync_probe/monitor/watchdog.py" in names
    assert not any(name.startswith("tests/") for name in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert (
        "fastasync-explorer = fastasync_explorer:main"
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

    # A user's own package called `server` beside the installed wheel: theirs is the one
    # imported, and the probe still imports (the explorer's `server` is not on the path).
    theirs = tmp_path / "their_project" / "server"
    theirs.mkdir(parents=True)
    (theirs / "__init__.py").write_text("OWNER = 'the user'\n")
    their_run = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            f"import sys; sys.path[:0] = [{str(theirs.parent)!r}, {str(target)!r}]; "
            "import server, fastasync_probe.monitor; print(server.OWNER)",
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert their_run.returncode == 0, their_run.stderr[-3000:]
    assert their_run.stdout.strip() == "the user"


def test_the_command_passes_on_its_exit_code() -> None:
    """The console script exits with what the CLI returned: 2 for a clear error."""
    command = Path(sys.executable).parent / "fastasync-explorer"
    done = subprocess.run(
        [str(command), "attach", "http://127.0.0.1:9"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("fastasync-explorer: ")
