"""The services' garbage-collector settings (services/runtime/heap.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from services.runtime.heap import collect_less


@pytest.fixture
def restored_gc() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)


@pytest.mark.usefixtures("restored_gc")
def test_a_threshold_moves_only_the_young_generation_s() -> None:
    _, older, oldest = gc.get_threshold()
    collect_less(50_000)
    assert gc.get_threshold() == (50_000, older, oldest)


@pytest.mark.usefixtures("restored_gc")
def test_zero_leaves_python_s_default() -> None:
    before = gc.get_threshold()
    collect_less(0)
    assert gc.get_threshold() == before
