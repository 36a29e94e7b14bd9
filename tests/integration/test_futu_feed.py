"""`marketsignal ingest --futu` on the real broker, against a stand-in for OpenD that speaks
futu-api's framing with futu-api's own protobuf classes (tests/support/fake_opend.py).

futu-api connects, initialises and subscribes; OpenD pushes HK.00700 and SH.600519
tickers, a repeat, a gap and a bad price; the connection is cut, futu-api reconnects by
itself (6 s later) and subscribes again (not ready meanwhile); OpenD's catch-up re-sends
a ticker already published, then new ones. On `ticks`: every trade once, canonical, in
the exchange zone; the repeats not published; the gap and the repeats counted."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from schemas.dead_letter import DeadLetter
from services.runtime.settings import Settings
from tests.support.fake_opend import FakeOpenD
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
from tests.support.wait import wait_for

pytestmark = pytest.mark.integration

SECOND = 1_689_753_598  # 2023-07-19 15:59:58 in Hong Kong
CODES = ("HK.00700", "SH.600519")


def trade(count: int, price: float, volume: int, second: int = 0, **more: Any) -> dict[str, Any]:
    """A ticker as Futu numbers them: the epoch second, then the day's trade count."""
    hh_mm_ss = f"15:59:{58 + second:02d}" if second < 2 else f"16:00:{second - 2:02d}"
    return {
        "time": f"2023-07-19 {hh_mm_ss}.000",
        "sequence": ((SECOND + second) << 32) | count,
        "price": price,
        "volume": volume,
        **more,
    }


BEFORE_DROP = [
    ("HK.00700", [trade(25752, 332.4, 100), trade(25753, 332.6, 200)]),
    ("SH.600519", [trade(901, 1520.5, 300, 1)]),
    ("HK.00700", [trade(25753, 332.6, 200)]),  # a repeat
    ("HK.00700", [trade(25756, 333.0, 400, 2), trade(25757, -1.0, 100, 2)]),  # a gap, a bad price
]
AFTER_RECONNECT = [
    ("HK.00700", [trade(25756, 333.0, 400, 2, push_data_type=2)]),  # the catch-up: a repeat
    ("HK.00700", [trade(25758, 333.2, 500, 3)]),
    ("SH.600519", [trade(902, 1521.0, 600, 3)]),
]
EXPECTED = [
    ("0700.HK", "2023-07-19T15:59:58+08:00", 332.4, 100),
    ("0700.HK", "2023-07-19T15:59:58+08:00", 332.6, 200),
    ("600519.SH", "2023-07-19T15:59:59+08:00", 1520.5, 300),
    ("0700.HK", "2023-07-19T16:00:00+08:00", 333.0, 400),
    ("0700.HK", "2023-07-19T16:00:01+08:00", 333.2, 500),
    ("600519.SH", "2023-07-19T16:00:01+08:00", 1521.0, 600),
]


def test_futu_push_to_canonical_ticks(
    settings: Callable[..., Settings], read_topic: Callable[..., list[Any]]
) -> None:
    s = settings(partitions=1)
    port = free_port()
    opend = FakeOpenD()
    proc = ingest(
        s,
        "--futu",
        f"127.0.0.1:{opend.port}",
        "--codes",
        ",".join(CODES),
        metrics_port=port,
        bundle=True,
    )

    def subscribed(times: int) -> Callable[[], bool]:
        def done() -> bool:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            return len(opend.subscriptions) >= times

        return done

    try:
        wait_for("futu-api to subscribe", subscribed(1), 60)
        for futu_code, tickers in BEFORE_DROP:
            opend.push_tickers(futu_code, tickers)
        wait_ticks(read_topic, s.ticks_topic, 4, timeout_s=60)
        opend.drop()
        wait_metric(
            port,
            'marketsignal_ingest_source_connected{source="futu"}',
            lambda v: v == 0,
            proc,
        )
        down = readyz(port)
        wait_for("futu-api to reconnect and subscribe again", subscribed(2), 60)
        for futu_code, tickers in AFTER_RECONNECT:
            opend.push_tickers(futu_code, tickers)
        got = wait_ticks(read_topic, s.ticks_topic, len(EXPECTED), timeout_s=60)
        wait_metric(
            port,
            'marketsignal_ingest_source_connected{source="futu"}',
            lambda v: v == 1,
            proc,
        )
        up = readyz(port)
        metrics = scrape(port)
        code, err = stop(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
        opend.close()
    assert code == 0, err
    # resubscribed after the reconnect (futu-api keeps its subscriptions in no order)
    assert [set(codes) for codes in opend.subscriptions] == [set(CODES)] * 2
    assert (down, up) == (503, 200)
    assert [(t["symbol"], t["ts"], t["price"], t["volume"]) for t in got] == EXPECTED
    assert ticks_of(read_topic(s.ticks_topic)) == got  # and nothing arrived after
    [dead] = [DeadLetter.model_validate_json(r.value) for r in read_topic(s.dlq_topic, expect=1)]
    assert (dead.reason, dead.field) == ("malformed", "price")
    assert '"code":"HK.00700"' in dead.raw
    assert dead.source == f"futu://127.0.0.1:{opend.port}"
    source = '{source="futu"}'
    assert metrics[f"marketsignal_ingest_source_sequence_repeats_total{source}"] == 2
    assert metrics[f"marketsignal_ingest_source_sequence_gaps_total{source}"] == 1
    assert metrics[f"marketsignal_ingest_source_reconnects_total{source}"] == 1
    assert metrics[f"marketsignal_ingest_source_ticks_total{source}"] == len(EXPECTED)
