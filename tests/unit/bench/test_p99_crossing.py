"""The bench's "rate where the p99 passes 100 ms": read from the top, so one slow level
among faster ones (a small sample's outlier) is not taken for the crossing."""

from __future__ import annotations

from bench.live.latency import p99_passes_100ms


def test_interpolates_between_the_last_level_under_and_the_first_over() -> None:
    assert p99_passes_100ms([(1000, 20.0), (2000, 50.0), (5000, 150.0), (10000, 300.0)]) == 3500.0


def test_an_outlier_at_a_low_rate_is_not_the_crossing() -> None:
    points = [(1000, 112.8), (2000, 32.7), (5000, 44.0), (10000, 53.6), (20000, 85.6)]
    assert p99_passes_100ms(points) is None  # under 100 ms up to the highest level


def test_over_at_every_level_or_no_levels() -> None:
    assert p99_passes_100ms([(1000, 120.0), (2000, 150.0)]) == 0.0
    assert p99_passes_100ms([]) is None
