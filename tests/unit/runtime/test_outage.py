"""An outage is two log lines and a summary every 30 s, whatever the number of retries."""

from __future__ import annotations

import logging

import pytest

from services.runtime.outage import Outage


def test_an_outage_logs_its_start_and_its_end_only(caplog: pytest.LogCaptureFixture) -> None:
    now = [100.0]
    outage = Outage(logging.getLogger("test.outage"), "Redis", clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="test.outage"):
        outage.ok()  # nothing to end: silent
        for attempt in range(50):
            now[0] += 0.5
            outage.failed(ConnectionError(f"refused #{attempt}"))
        assert outage.ongoing
        outage.ok()
        outage.ok()
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "Redis unavailable: refused #0; retrying with backoff, "
        "a summary every 30s until it is back",
        "Redis back after 24.5s (50 failed attempts; last error: refused #49)",
    ]
    assert not outage.ongoing


def test_a_second_outage_is_logged_and_counted_afresh(caplog: pytest.LogCaptureFixture) -> None:
    outage = Outage(logging.getLogger("test.outage2"), "Kafka", clock=lambda: 0.0)
    with caplog.at_level(logging.INFO, logger="test.outage2"):
        outage.failed("down")
        outage.failed("down")
        outage.ok()
        outage.failed("down again")
        outage.ok()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 4
    assert lines[1].endswith("(2 failed attempts; last error: down)")
    assert lines[3].endswith("(1 failed attempt; last error: down again)")


def test_a_long_outage_is_summed_up_every_30_s(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    outage = Outage(logging.getLogger("test.outage3"), "Kafka", clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="test.outage3"):
        for attempt in range(100):  # a retry a second for 100 s
            outage.failed(f"refused #{attempt}")
            now[0] += 1.0
        outage.ok()
    lines = [r.getMessage() for r in caplog.records]
    assert lines[1:] == [
        "Kafka still unavailable after 30s (31 failed attempts; last error: refused #30)",
        "Kafka still unavailable after 60s (61 failed attempts; last error: refused #60)",
        "Kafka still unavailable after 90s (91 failed attempts; last error: refused #90)",
        "Kafka back after 100.0s (100 failed attempts; last error: refused #99)",
    ]
