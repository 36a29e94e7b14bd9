"""An outage is two log lines, whatever the number of retries in between."""

from __future__ import annotations

import logging

import pytest

from services.runtime.outage import Outage


def test_a_long_outage_logs_its_start_and_its_end_only(caplog: pytest.LogCaptureFixture) -> None:
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
        "Redis unavailable: refused #0; retrying with backoff, quiet until it is back",
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
