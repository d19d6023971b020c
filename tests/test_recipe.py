"""The recipe of docs/architecture.md, followed for real: a pattern added in its steps.

The project is copied, the files the recipe shows are written exactly as the page shows
them, and the slug goes into the one list. Then, in a fresh interpreter on that copy, the
new pattern must be in the menu (and its pane run), in ``/openapi.json``, in
``report --only hello`` and in a short soak. Nothing else may need editing: that is the
point of one registry.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from explorer.registry import key_of

ROOT = Path(__file__).resolve().parent.parent
RECIPE = ROOT / "docs" / "architecture.md"

#: the files of the recipe, in the order the page shows their code
FILES = (
    "server/patterns/hello/router.py",
    "explorer/patterns/hello/pane.py",
    "explorer/patterns/hello/scenarios.py",
    "explorer/patterns/hello/load.py",
)

PROBE = """
import asyncio, json, sys
from pathlib import Path
from explorer.app import ExplorerApp
from server.settings import Settings

async def main() -> None:
    app = ExplorerApp(Settings(port=0, data_dir=Path(sys.argv[1])))
    async with app.run_test(size=(100, 30)) as pilot:
        for _ in range(600):
            if app.context is not None and app._gauges is not None:
                break
            await pilot.pause(0.05)
        else:
            sys.exit("the explorer did not start")
        nav = app.query_one("#nav")
        menu = [str(nav.get_option_at_index(i).prompt) for i in range(nav.option_count)]
        key = menu[-1][0]
        if key.strip():  # the key the menu shows for it
            await pilot.press(key)
        else:  # past the tenth pane there is no key: the command palette opens it
            await pilot.press("ctrl+p")
            await pilot.pause(0.3)
            await pilot.press(*"hello")
            await pilot.pause(0.5)
            await pilot.press("enter")
        await pilot.pause(0.3)
        await pilot.press("r")
        answer = ""
        for _ in range(100):
            await pilot.pause(0.05)
            answer = str(app.query_one("#pane-hello #answer").render())
            if "world" in answer:
                break
        paths = sorted((await app.context.http.get("/openapi.json")).json()["paths"])
        print(json.dumps({"menu": menu, "current": app.current_slug, "answer": answer,
                          "paths": paths}))
        await pilot.press("q")

asyncio.run(main())
"""


def recipe_blocks() -> list[str]:
    """The python code blocks of the recipe section, in order."""
    section = RECIPE.read_text().split("## Add a pattern", 1)[1]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def follow_the_recipe(copy: Path) -> None:
    for package in ("server", "explorer"):
        shutil.copytree(
            ROOT / package, copy / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    blocks = recipe_blocks()
    assert len(blocks) == len(FILES), "the recipe shows one code block per file"
    for relative, code in zip(FILES, blocks, strict=True):
        path = copy / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.parent / "__init__.py").write_text('"""Hello: the smallest pattern."""\n')
        path.write_text(code)
    registry = copy / "server" / "patterns" / "__init__.py"
    text = registry.read_text()
    listed = re.search(r"PATTERNS: tuple\[str, \.\.\.\] = \((.*?)\)", text, flags=re.S)
    assert listed, "the one list is where the recipe says"
    registry.write_text(text.replace(listed.group(1), listed.group(1).rstrip(", \n") + ', "hello"'))


def run_in(copy: Path, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    # the copy first on the path: it shadows the installed project
    env = {"PYTHONPATH": str(copy), "PATH": "/usr/bin:/bin", "HOME": str(copy)}
    return subprocess.run(
        [sys.executable, *args],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_a_pattern_added_by_the_recipe_is_in_the_menu_the_api_and_the_report(
    tmp_path: Path,
) -> None:
    copy = tmp_path / "project"
    copy.mkdir()
    follow_the_recipe(copy)

    probe = run_in(copy, "-c", PROBE, str(tmp_path / "data"), timeout=120)
    assert probe.returncode == 0, probe.stderr[-3000:]
    seen = json.loads(probe.stdout.strip().splitlines()[-1])
    # keys 1-9, then 0, label the first ten panes; past them the label has a blank key
    assert seen["menu"][-1] == f"{key_of(len(seen['menu']) - 1) or ' '} Hello"
    assert seen["current"] == "hello"
    assert "world" in seen["answer"]
    assert "/hello/wave" in seen["paths"]

    report = run_in(
        copy,
        "-m",
        "explorer.cli",
        "report",
        "--only",
        "hello",
        "--out",
        str(tmp_path / "report"),
        "--data-dir",
        str(tmp_path / "report-data"),
        timeout=180,
    )
    assert report.returncode == 0, report.stderr[-3000:]
    written = json.loads((tmp_path / "report" / "report.json").read_text())
    assert [s["scenario"] for s in written["scenarios"]] == ["hello/wave"]

    soak = run_in(
        copy, "-m", "explorer.tools.soak", "--minutes", "0.1", "--warmup-s", "0", timeout=120
    )
    assert soak.returncode == 0, soak.stdout[-3000:] + soak.stderr[-3000:]
    assert "/hello/wave" in soak.stdout
