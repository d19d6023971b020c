"""The start-up freeze: what it moves out of the collector's way, and its switch."""

from __future__ import annotations

import gc
import weakref

import pytest

from server import heap


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_settling_collects_garbage_then_freezes_what_survives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(heap, "enabled", True)
    garbage = weakref.ref(_Cycle())  # a cycle: only the collector frees it
    survivor = _Cycle()
    frozen_before = gc.get_freeze_count()
    heap.settle_heap()
    assert garbage() is None
    assert gc.get_freeze_count() > frozen_before
    assert survivor.me is survivor


def test_switched_off_it_leaves_the_heap_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heap, "enabled", False)
    frozen_before = gc.get_freeze_count()
    heap.settle_heap()
    heap.keep_out_of_collections()
    assert gc.get_freeze_count() == frozen_before
