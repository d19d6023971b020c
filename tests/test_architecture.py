"""The boundaries DESIGN.md sets, checked: who imports whom, one slug in four places."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from explorer.registry import PANES

ROOT = Path(__file__).resolve().parent.parent
SERVER = ROOT / "server"
EXPLORER = ROOT / "explorer"
#: routers that are not patterns (no pane of their own)
INFRASTRUCTURE_ROUTES = {"monitor"}


def imported_modules(path: Path) -> set[str]:
    """Top-level names of every absolute import in a file."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def python_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.py"))


@pytest.mark.parametrize("path", python_files(SERVER), ids=lambda p: str(p.relative_to(ROOT)))
def test_server_never_imports_the_ui(path: Path) -> None:
    assert not imported_modules(path) & {"textual", "explorer", "rich"}


def test_server_runs_alone_without_loading_textual() -> None:
    script = (
        "import importlib, pkgutil, sys, server\n"
        "for m in pkgutil.walk_packages(server.__path__, 'server.'):\n"
        "    importlib.import_module(m.name)\n"
        "from server.app import create_app\n"
        "create_app()\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in {'textual', 'explorer'})\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "path", python_files(SERVER / "monitor"), ids=lambda p: str(p.relative_to(ROOT))
)
def test_loop_monitor_is_standard_library_only(path: Path) -> None:
    outside = imported_modules(path) - set(sys.stdlib_module_names) - {"__future__"}
    assert not outside, f"{path.name} imports {outside}"


@pytest.mark.parametrize(
    "path", python_files(EXPLORER / "widgets"), ids=lambda p: str(p.relative_to(ROOT))
)
def test_widgets_do_no_io(path: Path) -> None:
    assert not imported_modules(path) & {"httpx", "socket", "websockets", "aiosqlite", "asyncpg"}


def test_every_pattern_has_its_route_pane_and_tests() -> None:
    routes = {
        p.stem for p in (SERVER / "routes").glob("*.py") if p.stem != "__init__"
    } - INFRASTRUCTURE_ROUTES
    panes = {pane.SLUG for pane in PANES}
    assert routes == panes, "every route module needs a pane in explorer.registry, and back"
    for slug in routes:
        assert (EXPLORER / "panes" / f"{slug}.py").is_file()
        assert (ROOT / "tests" / f"test_{slug}.py").is_file()
        router = __import__(f"server.routes.{slug}", fromlist=["router"]).router
        assert router.prefix == f"/{slug}"
        assert router.tags == [slug]


def test_no_print_in_the_app() -> None:
    """Only the CLI may print (before or after the TUI); the rest logs."""
    for path in [*python_files(SERVER), *python_files(EXPLORER)]:
        if path.name in {"cli.py", "bench.py", "loadgen.py"} or path.name.startswith("bench_"):
            continue
        tree = ast.parse(path.read_text())
        calls = [
            node.lineno
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "print"
        ]
        assert not calls, f"print() in {path.relative_to(ROOT)} at lines {calls}"
