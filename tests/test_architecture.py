"""The boundaries docs/architecture.md sets, checked: who imports whom, one home per pattern."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from explorer.registry import PANES
from server.patterns import PATTERNS, router_of

ROOT = Path(__file__).resolve().parent.parent
SERVER = ROOT / "server"
EXPLORER = ROOT / "explorer"


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


PROBE = ROOT / "fastasync_probe"
#: the probe's modules that are not loaded by ``install(app)``, and what each may import
#: beyond the standard library: the child that hosts a user's app runs uvicorn, and the
#: pytest plugin is loaded by pytest
PROBE_EDGES: dict[str, set[str]] = {
    "host.py": {"uvicorn"},
    "pytest_plugin.py": {"pytest"},
}


@pytest.mark.parametrize("path", python_files(PROBE), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_probe_is_standard_library_only(path: Path) -> None:
    """What runs inside a user's process brings nothing they did not install, and never
    the explorer's own ``server`` or ``explorer``."""
    allowed = set(sys.stdlib_module_names) | {"__future__", "fastasync_probe"}
    allowed |= PROBE_EDGES.get(path.name, set())
    outside = imported_modules(path) - allowed
    assert not outside, f"{path.name} imports {outside}"


@pytest.mark.parametrize(
    "path", python_files(EXPLORER / "widgets"), ids=lambda p: str(p.relative_to(ROOT))
)
def test_widgets_do_no_io(path: Path) -> None:
    assert not imported_modules(path) & {"httpx", "socket", "websockets", "aiosqlite", "asyncpg"}


def test_every_pattern_has_its_two_homes_its_tests_and_snapshots() -> None:
    """One slug, one list: its server home, its explorer home, its tests, its snapshots."""
    assert len(set(PATTERNS)) == len(PATTERNS)
    homes = {p.name for p in (SERVER / "patterns").iterdir() if (p / "__init__.py").is_file()}
    assert homes == set(PATTERNS), "a folder in server/patterns/ is not in PATTERNS, or back"
    panes = {p.name for p in (EXPLORER / "patterns").iterdir() if (p / "__init__.py").is_file()}
    assert panes == set(PATTERNS), "a folder in explorer/patterns/ is not in PATTERNS, or back"
    assert [pane.SLUG for pane in PANES] == list(PATTERNS)
    for slug in PATTERNS:
        assert (SERVER / "patterns" / slug / "router.py").is_file(), slug
        assert (EXPLORER / "patterns" / slug / "pane.py").is_file(), slug
        assert (EXPLORER / "patterns" / slug / "scenarios.py").is_file(), slug
        assert (EXPLORER / "patterns" / slug / "load.py").is_file(), slug
        assert (ROOT / "tests" / f"test_{slug}.py").is_file(), slug
        assert list((ROOT / "tests" / "__snapshots__" / f"test_{slug}").glob("*.svg")), slug
        router = router_of(slug)
        assert router.prefix == f"/{slug}"
        assert router.tags == [slug]


def _pattern_of(path: Path) -> str | None:
    parts = path.relative_to(ROOT).parts
    return parts[2] if len(parts) > 3 and parts[1] == "patterns" else None


PATTERN_FILES = [
    p for home in (SERVER / "patterns", EXPLORER / "patterns") for p in python_files(home)
]


@pytest.mark.parametrize("path", PATTERN_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_a_pattern_uses_another_only_through_its_public_names(path: Path) -> None:
    mine = _pattern_of(path)
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not (isinstance(node, ast.ImportFrom) and node.module and node.level == 0):
            continue
        parts = node.module.split(".")
        if len(parts) < 3 or parts[1] != "patterns" or parts[2] == mine:
            continue
        private = [alias.name for alias in node.names if alias.name.startswith("_")]
        private += [part for part in parts[3:] if part.startswith("_")]
        assert not private, f"{path.relative_to(ROOT)} uses {node.module}'s {private}"


def _may_print(path: Path) -> bool:
    """Command-line tools may print: the CLI, the headless tools, a pattern's benchmark."""
    relative = path.relative_to(ROOT).as_posix()
    return (
        relative == "explorer/cli.py"
        or relative.startswith("explorer/tools/")
        or (relative.startswith("explorer/patterns/") and path.name == "bench.py")
    )


def test_no_print_in_the_app() -> None:
    """Only command-line tools may print; the rest logs."""
    for path in [*python_files(SERVER), *python_files(EXPLORER)]:
        if _may_print(path):
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


def _state_bag_reads(path: Path) -> list[int]:
    """Lines that read or write Starlette's untyped ``<app>.state.<name>`` (or getattr it)."""

    def is_bag(node: ast.expr) -> bool:
        return (
            isinstance(node, ast.Attribute)
            and node.attr == "state"
            and _name_of(node.value) == "app"
        )

    lines = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Attribute) and is_bag(node.value):
            lines.append(node.lineno)
        elif isinstance(node, ast.Call) and node.args and is_bag(node.args[0]):
            lines.append(node.lineno)  # getattr(app.state, ...), setattr, vars
    return lines


def _name_of(node: ast.expr) -> str:
    """``app`` for ``app`` and for ``request.app``; empty for anything else."""
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


def test_the_app_state_is_read_only_through_its_typed_object() -> None:
    """``server/state.py`` is the one place that touches Starlette's ``app.state`` bag."""
    for path in [*python_files(SERVER), *python_files(EXPLORER)]:
        if path == SERVER / "state.py":
            continue
        lines = _state_bag_reads(path)
        assert not lines, f"{path.relative_to(ROOT)} reads app.state.<name> at lines {lines}"


def test_every_module_is_small() -> None:
    """One job per module: none over 400 lines."""
    big = {
        str(path.relative_to(ROOT)): lines
        for path in [*python_files(SERVER), *python_files(EXPLORER)]
        if (lines := len(path.read_text().splitlines())) > 400
    }
    assert not big, f"modules over 400 lines: {big}"
