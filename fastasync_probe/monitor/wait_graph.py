"""Wait-for cycles: task A waits on something task B holds, B on something A holds.

Each suspended task waits on one thing at a time, so each has at most one outgoing edge
(to the lock's owner, or the task it awaits): following the edges from any task either
ends, or comes back round. A cycle there is a deadlock: no task in it can ever run again
unless something outside cancels one of them.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import TypeVar

N = TypeVar("N", bound=Hashable)


def cycles(edges: Mapping[N, N]) -> list[list[N]]:
    """Every cycle of the functional graph ``edges`` (node -> the node it waits for), each
    once, in edge order starting from its first node met."""
    found: list[list[N]] = []
    state: dict[N, int] = {}  # 1: on the current path, 2: done
    for start in edges:
        if start in state:
            continue
        path: list[N] = []
        node: N | None = start
        while node is not None and node not in state:
            state[node] = 1
            path.append(node)
            node = edges.get(node)
        if node is not None and state.get(node) == 1:
            found.append(path[path.index(node) :])
        for visited in path:
            state[visited] = 2
    return found
