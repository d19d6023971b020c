"""Read the code the panes show straight from the modules that run it."""

from __future__ import annotations

import ast
import inspect
import linecache
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastasync_probe.monitor.attribution import short_path


@dataclass(frozen=True)
class SourceBlock:
    """A contiguous piece of a source file, with the lines to highlight."""

    title: str
    filename: str
    start: int
    text: str
    highlight: frozenset[int] = field(default=frozenset())

    @property
    def path(self) -> str:
        return short_path(self.filename)

    @property
    def end(self) -> int:
        return self.start + self.text.count("\n")


def source_of(
    obj: Callable[..., Any] | type, title: str, highlight: int | None = None
) -> SourceBlock:
    """The source of a function or class as it is on disk now."""
    target = inspect.unwrap(obj)
    filename = inspect.getsourcefile(target) or "<unknown>"
    lines, start = inspect.getsourcelines(target)
    block = SourceBlock(title, filename, start, "".join(lines))
    return with_highlight(block, highlight)


def with_highlight(block: SourceBlock, lineno: int | None) -> SourceBlock:
    """The same block with ``lineno`` highlighted, if it falls inside it."""
    if lineno is None or not block.start <= lineno <= block.end:
        return block
    return SourceBlock(block.title, block.filename, block.start, block.text, frozenset({lineno}))


def source_around(filename: str, lineno: int, title: str, context: int = 12) -> SourceBlock:
    """The function that encloses ``filename:lineno`` (or a window of lines around it)."""
    lines = linecache.getlines(filename)
    if not lines:
        return SourceBlock(title, filename, lineno, f"# source of {filename} is not available\n")
    start, end = max(1, lineno - context), min(len(lines), lineno + context)
    try:
        tree = ast.parse("".join(lines))
    except SyntaxError:
        tree = None
    if tree is not None:
        best: ast.AST | None = None
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno:
                first = min([node.lineno] + [d.lineno for d in node.decorator_list])
                if first <= lineno <= node.end_lineno and (
                    best is None or first >= getattr(best, "lineno", 0)
                ):
                    best, start, end = node, first, node.end_lineno
    text = "".join(lines[start - 1 : end])
    return SourceBlock(title, filename, start, text, frozenset({lineno}))
