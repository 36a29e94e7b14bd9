"""`marketsignal ingest --akshare` on the real broker, its fetch a stand-in for akshare's
calls (tests/support/snapshot_feed.py): A-share quotes in lots with a zone-less local
time, an HK quote in shares, an unchanged poll, a failed poll (retried after a backoff,
not ready meanwhile), a row with no price, a new trading day. On `ticks`: a tick per
change, its volume the day volume's increase in shares, its time in the exchange zone."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from schemas.dead_letter import DeadLetter
from services.runtime.settings import Settings
from tests.integration.test_deploy_prometheus import LIVE_SOURCE_PREFIX, used_metric_names
from tests.support.live_ingest import (
    ingest,
    readyz,
    scrape,
    stop,
    ticks_of,
    wait_metric,
    wait_ticks,
)
from tests.support.services import free_port
from tests.support.snapshot_feed import FILE_VARIABLE

pytestmark = pytest.mark.integration


def row(code: str, price: Any, volume: float, unit: int, time: str | None = None) -> dict[str, Any]:
    fields = {"code": code, "price": price, "volume": volume, "unit": unit}
    return fields if time is None else {**fields, "time": time}


BAD = row("000001", None, 10.0, 100)
BATCHES: list[Any] = [
    [row("600519", 1520.5, 87.0, 100, "2026-02-13 10:00:03"), row("00700", 496.2, 1e6, 1)],
    [row("600519", 1520.5, 87.0, 100, "2026-02-13 10:00:06"), row("00700", 496.2, 1e6, 1)],
    {"fail": "connection reset by peer"},
    [
        row("600519", 1520.5, 90.0, 100, "2026-02-13 10:00:09"),
        row("00700", 496.4, 1e6, 1),
        BAD,
    ],
    [row("600519", 1519.0, 5.0, 100, "2026-02-16 09:30:00")],  # the next trading day
]
EXPECTED = [
    ("600519.SH", "2026-02-13T10:00:03+08:00", 1520.5, 8_700),
    ("0700.HK", None, 496.2, 1_000_000),  # no time in the row: the poll's
    ("600519.SH", "2026-02-13T10:00:09+08:00", 1520.5, 300),
    ("0700.HK", None, 496.4, 0),
    ("600519.SH", "2026-02-16T09:30:00+08:00", 1519.0, 500),
]


def test_akshare_polls_to_canonical_ticks(
    tmp_path: Path,
    settings: Callable[..., Settings],
    read_topic: Callable[..., list[Any]],
) -> None:
    s = settings(partitions=1)
    port = free_port()
    feed = tmp_path / "batches.json"
    feed.write_text(json.dumps(BATCHES))
    proc = ingest(
        s,
        "--akshare",
        "--codes",
        "600519,00700,000001",
        "--every",
        "300ms",
        "--backoff-initial",
        "3",  # long enough to see /readyz say "not ready" after the failed poll
        "--backoff-max",
        "3",
        metrics_port=port,
        bundle=True,
        env={
            "MARKETSIGNAL_AKSHARE_FETCH": "tests.support.snapshot_feed:from_file",
            FILE_VARIABLE: str(feed),
        },
    )
    try:
        wait_metric(
            port,
            'marketsignal_ingest_source_reconnects_total{source="akshare"}',
            lambda v: v >= 1,
            proc,
        )
        not_ready = readyz(port)  # within the 1.5-3 s backoff after the failed poll
        got = wait_ticks(read_topic, s.ticks_topic, len(EXPECTED))
        ready = readyz(port)
        metrics = scrape(port)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            families = text_string_to_metric_families(resp.read().decode())
            exposed = {sample.name for family in families for sample in family.samples}
        code, err = stop(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 0, err
    assert (not_ready, ready) == (503, 200)
    assert [(t["symbol"], t["price"], t["volume"]) for t in got] == [
        (symbol, price, volume) for symbol, _, price, volume in EXPECTED
    ]
    for tick, (_, ts, _, _) in zip(got, EXPECTED, strict=True):
        if ts is not None:
            assert tick["ts"] == ts
    # the poll's time, in Hong Kong's zone
    assert got[1]["ts"].endswith("+08:00")
    assert got[3]["ts"].endswith("+08:00")
    assert ticks_of(read_topic(s.ticks_topic)) == got  # and nothing arrived after
    [dead] = [DeadLetter.model_validate_json(r.value) for r in read_topic(s.dlq_topic, expect=1)]
    assert (dead.reason, dead.field, dead.source) == ("malformed", "price", "akshare")
    assert json.loads(dead.raw) == BAD
    assert metrics['marketsignal_ingest_source_ticks_total{source="akshare"}'] == 5
    assert metrics['marketsignal_ingest_source_connected{source="akshare"}'] == 1
    assert (
        metrics[
            'marketsignal_ingest_source_dead_letters_total{reason="malformed",source="akshare"}'
        ]
        == 1
    )
    # what the dashboard's live-feed panels query, this live ingestor exposes
    live = {n for n in used_metric_names() if n.startswith(LIVE_SOURCE_PREFIX)}
    assert live
    assert live <= exposed, live - exposed
