"""The WebSocket source's pure parts: backoff, the replay filter, adapters."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.ingestor.backoff import backoff_delay
from services.ingestor.websocket import (
    ReplayFilter,
    default_adapter,
    load_adapter,
)

ROOT = Path(__file__).resolve().parents[3]


@given(st.integers(0, 40), st.floats(0.01, 5), st.floats(5, 120), st.integers(0, 2**32))
def test_backoff_grows_exponentially_is_capped_and_jittered(
    attempt: int, initial: float, cap: float, seed: int
) -> None:
    delay = backoff_delay(attempt, initial, cap, random.Random(seed))
    step = min(cap, initial * 2.0**attempt)
    assert step / 2 <= delay <= step


def test_backoff_jitter_spreads_clients() -> None:
    delays = {round(backoff_delay(3, 0.5, 30, random.Random(seed)), 6) for seed in range(20)}
    assert len(delays) > 10  # not every client retrying at the same instant


def test_replay_filter_drops_resent_ticks_until_each_symbol_moves_on() -> None:
    replay = ReplayFilter()
    a = [{"symbol": "A", "ts": i, "price": 1.0} for i in range(5)]
    b = [{"symbol": "B", "ts": i, "price": 2.0} for i in range(3)]
    assert not any(replay.seen_before(t) for t in a + b)
    # the same tick twice on one connection is a real (if odd) feed: kept
    assert not replay.seen_before(a[4])
    replay.reconnected()
    assert [replay.seen_before(t) for t in a[2:]] == [True, True, True]
    assert not replay.seen_before({"symbol": "A", "ts": 5, "price": 1.0})  # new: A resynced
    assert not replay.seen_before(a[3])  # so a repeat of an old A tick now counts again
    # B still replays; field order does not matter
    assert replay.seen_before({"price": 2.0, "ts": 2, "symbol": "B"})


def test_default_adapter_shapes() -> None:
    assert list(default_adapter({"symbol": "A", "ts": 1, "price": 1})) == [
        {"symbol": "A", "ts": 1, "price": 1}
    ]
    assert len(list(default_adapter([{"symbol": "A"}, {"symbol": "B"}]))) == 2
    assert list(default_adapter({"type": "heartbeat"})) == []
    # not a heartbeat: validated, and dead-lettered for its missing fields
    assert list(default_adapter({"type": "trade"})) == [{"type": "trade"}]


def test_the_example_vendor_adapter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "deploy" / "examples"))
    adapter = load_adapter("vendor_adapter:to_ticks")
    message = {
        "ev": "batch",
        "data": [
            {"ev": "T", "sym": "0700.HK", "t": 1770948000123, "p": 612.5, "s": 300},
            {"ev": "status", "message": "subscribed"},
        ],
    }
    assert list(adapter(message)) == [
        {"symbol": "0700.HK", "ts": 1770948000123, "price": 612.5, "volume": 300}
    ]
    sys.modules.pop("vendor_adapter", None)


@pytest.mark.parametrize("spec", ["no_colon", "json:nope", ":x"])
def test_bad_adapter_specs_are_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="adapter"):
        load_adapter(spec)
