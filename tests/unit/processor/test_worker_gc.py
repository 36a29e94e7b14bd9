"""The worker's garbage-collector settings (services/processor/worker.py:collect_less)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from services.processor.worker import collect_less


@pytest.fixture
def restored_gc() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


@pytest.mark.usefixtures("restored_gc")
def test_a_threshold_moves_the_young_generation_and_freezes_what_exists() -> None:
    _, older, oldest = gc.get_threshold()
    collect_less(50_000)
    assert gc.get_threshold() == (50_000, older, oldest)
    assert gc.get_freeze_count() > 0


@pytest.mark.usefixtures("restored_gc")
def test_zero_leaves_python_s_defaults() -> None:
    gc.unfreeze()
    before = gc.get_threshold()
    collect_less(0)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
