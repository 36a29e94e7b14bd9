"""The ingestor's throughput gauge (lines per second over a sliding window), on a fake clock."""

from __future__ import annotations

from services.ingestor.metrics import THROUGHPUT_WINDOW_S, Throughput


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_no_lines_no_rate() -> None:
    assert Throughput(Clock()).rate() == 0.0


def test_steady_lines_give_their_rate() -> None:
    clock = Clock()
    meter = Throughput(clock)
    for _ in range(50):  # 100 lines per second for 5 s
        for _ in range(10):
            meter.add()
            clock.now += 0.01
    assert 95.0 <= meter.rate() <= 105.0
    assert meter.count == 500


def test_a_burst_counts_then_ages_out_of_the_window() -> None:
    clock = Clock()
    meter = Throughput(clock)
    meter.add()
    meter.add(99)  # a batch counts as its lines
    clock.now += 2.0
    assert meter.rate() == 99 / 2.0  # lines since the first sample, over the time since
    clock.now += THROUGHPUT_WINDOW_S
    assert meter.rate() == 0.0  # idle for a whole window: nothing in it


def test_a_burst_inside_one_second_is_not_divided_by_a_tiny_interval() -> None:
    clock = Clock()
    meter = Throughput(clock)
    meter.add()
    clock.now += 0.001
    meter.add(9)
    assert meter.rate() == 9.0  # over at least a second, not 9 / 0.001
