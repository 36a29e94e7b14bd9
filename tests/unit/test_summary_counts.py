"""The summary parser the tests rely on reads the services' own summary lines."""

from __future__ import annotations

from collections import Counter

from services.alerter.relay import AlertStats
from services.backtest.run import Summary
from services.ingestor.ingest import IngestSummary
from tests.support.summary import summary_counts


def test_ingest_line() -> None:
    summary = IngestSummary(read=1234, published=1228, dead=Counter(late=1, malformed=5))
    summary.seconds = 51.0  # a rate of "24 ticks/s": not a count of ticks
    assert summary_counts(summary.render(), "ingest:") == {
        "read": 1234,
        "published": 1228,
        "dead-lettered": 6,
        "late": 1,
        "malformed": 5,
    }


def test_alert_line() -> None:
    stats = AlertStats(consumed=22, delivered=20, duplicates=1, invalid=1)
    assert summary_counts("noise\n" + stats.render(), "alert:") == {
        "consumed": 22,
        "delivered": 20,
        "duplicates": 1,
        "invalid": 1,
    }


def test_backtest_line_with_history() -> None:
    summary = Summary(lines=7, accepted=3, malformed=3, late=1, bars=3, bad_bars=0, overlap=1)
    summary.signals = Counter(record_high=2)
    summary.seconds = 0.001
    assert summary_counts(summary.render(), "summary:") == {
        "bars": 3,
        "bad": 0,
        "overlap": 1,
        "ticks": 7,
        "accepted": 3,
        "malformed": 3,
        "late": 1,
        "record_high": 2,
    }
