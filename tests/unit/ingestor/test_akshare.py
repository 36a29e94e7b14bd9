"""`ingest --akshare`: codes to canonical symbols, lots to shares, zone-less local time in
the exchange zone, polled rows through the snapshot rule, and the poller's loop (its
fetch failing, retried) into a collecting sink; akshare's own calls read as akshare
returns them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from schemas.zones import ExchangeZones
from services.cli import main
from services.ingestor.akshare_quotes import (
    AkshareSnapshots,
    akshare_fetch,
    local_time,
    market_symbol,
    parse_codes,
    shares,
)
from services.ingestor.polling import PollOptions, SnapshotPoller
from services.ingestor.screening import Screener
from services.ingestor.source_metrics import CountedSink, SourceMetrics, readiness
from services.ingestor.symbols import SymbolMap
from tests.unit.ingestor.test_vendor_adapters import Collect

POLLED_AT = datetime(2026, 2, 13, 2, 0, 3, tzinfo=UTC)


@pytest.mark.parametrize(
    ("code", "symbol"),
    [
        ("600519", "600519.SH"),
        ("688981", "688981.SH"),
        ("900901", "900901.SH"),
        ("000001", "000001.SZ"),
        ("300750", "300750.SZ"),
        ("00700", "0700.HK"),
        ("700", "0700.HK"),
        ("09988", "9988.HK"),
    ],
)
def test_codes_are_canonical_symbols(code: str, symbol: str) -> None:
    assert SymbolMap().canonical(market_symbol(code)) == symbol


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("430047", "neither a Shanghai nor a Shenzhen code"),  # Beijing: no zone of its own
        ("1234567", "neither 6 digits"),
        ("TCEHY", "not an exchange code"),
        (" , ", "--codes: no symbol given (e.g. --codes 600519,00700)"),
    ],
)
def test_unusable_codes_are_refused_at_start(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match="--codes") as caught:
        parse_codes(text, SymbolMap())
    assert problem in str(caught.value)


def test_codes_keep_their_order_once_and_the_symbol_map_applies() -> None:
    assert parse_codes("600519, 00700,600519", SymbolMap()) == ("600519", "00700")
    mapped = AkshareSnapshots(SymbolMap({"HK.00700": "TENCENT.HK"}))
    item = mapped({"code": "00700", "price": 1.0, "volume": 1}, POLLED_AT)
    assert item is not None
    assert getattr(item, "fields", {})["symbol"] == "TENCENT.HK"


def test_lots_are_shares() -> None:
    assert shares(87.0, 100) == 8_700  # A-share lots: pandas gives floats
    assert shares(1_000_000, 1) == 1_000_000
    assert shares(87.5, 100) == "volume: not a whole number >= 0 (87.5)"
    assert isinstance(shares(float("nan"), 100), str)
    assert isinstance(shares(-1, 1), str)
    assert isinstance(shares(1, 0), str)


def test_local_times() -> None:
    assert local_time("2026-02-13 10:00:03", POLLED_AT) == "2026-02-13T10:00:03"
    assert local_time("2025/07/07 16:08:06", POLLED_AT) == "2025-07-07T16:08:06"  # Sina's
    assert local_time("2026-02-13T10:00:03+08:00", POLLED_AT) == "2026-02-13T10:00:03+08:00"
    assert local_time(None, POLLED_AT) == "2026-02-13T02:00:03+00:00"  # the poll's time
    assert local_time("15:00:00 tomorrow", POLLED_AT) is None
    assert local_time(1770948003, POLLED_AT) is None


def screener() -> Screener:
    return Screener(ExchangeZones(), 5.0, "akshare", lambda: POLLED_AT)


def poller(batches: list[Any], codes: tuple[str, ...] = ("600519", "00700")) -> SnapshotPoller:
    """A poller over `batches` (rows, or an exception to raise) that stops after the last."""
    sink = Collect()
    calls = iter(batches)
    registry = CollectorRegistry()
    metrics = SourceMetrics(registry, "akshare")

    def fetch(asked: Any) -> list[dict[str, Any]]:
        assert tuple(asked) == codes
        batch = next(calls)
        if isinstance(batch, Exception):
            raise batch
        return list(batch)

    source = SnapshotPoller(
        fetch,
        codes,
        AkshareSnapshots(SymbolMap()),
        PollOptions(every_s=0.0, backoff_initial_s=0.001, backoff_max_s=0.002),
        screener(),
        CountedSink(sink, metrics),
        lambda: 0,
        metrics,
        clock=lambda: POLLED_AT,
    )
    source.collected = sink  # type: ignore[attr-defined]
    source.registry = registry  # type: ignore[attr-defined]
    return source


def run_polls(source: SnapshotPoller, polls: int) -> Collect:
    """Run until `polls` fetches (good or failed) were made."""
    fetch = source.fetch
    made = 0

    def counting(codes: Any) -> list[dict[str, Any]]:
        nonlocal made
        made += 1
        if made == polls:
            source.stop()
        return fetch(codes)

    source.fetch = counting
    source.run()
    return source.collected  # type: ignore[attr-defined, no-any-return]


def row(code: str, price: Any, volume: Any, unit: int, time: str | None = None) -> dict[str, Any]:
    fields = {"code": code, "price": price, "volume": volume, "unit": unit}
    return fields if time is None else {**fields, "time": time}


def test_polls_become_ticks_when_a_quote_changed() -> None:
    source = poller(
        [
            [row("600519", 1520.5, 87.0, 100, "2026-02-13 10:00:03"), row("00700", 496.2, 1e6, 1)],
            [row("600519", 1520.5, 87.0, 100, "2026-02-13 10:00:06"), row("00700", 496.2, 1e6, 1)],
            ConnectionError("reset by peer"),
            [row("600519", 1520.5, 90.0, 100), row("00700", 496.4, 1e6, 1)],
            [row("600519", 1519.0, 5.0, 100, "2026-02-16 09:30:00")],  # the next trading day
        ]
    )
    sink = run_polls(source, 5)
    assert sink.dead == []
    assert sink.ticks == [
        {
            "symbol": "600519.SH",
            "ts": "2026-02-13T10:00:03+08:00",  # zone-less local time, Shanghai's zone
            "price": 1520.5,
            "volume": 8_700,  # 87 lots
            "kind": "trade",
        },
        {
            "symbol": "0700.HK",
            "ts": "2026-02-13T10:00:03+08:00",  # no time in the row: the poll's
            "price": 496.2,
            "volume": 1_000_000,
            "kind": "trade",
        },
        # the second poll: nothing changed (a later time alone is no trade)
        {
            "symbol": "600519.SH",
            "ts": "2026-02-13T10:00:03+08:00",
            "price": 1520.5,
            "volume": 300,  # 3 lots more
            "kind": "trade",
        },
        {
            "symbol": "0700.HK",
            "ts": "2026-02-13T10:00:03+08:00",
            "price": 496.4,
            "volume": 0,  # the price moved alone
            "kind": "trade",
        },
        {
            "symbol": "600519.SH",
            "ts": "2026-02-16T09:30:00+08:00",
            "price": 1519.0,
            "volume": 500,  # a new day: the counter restarted
            "kind": "trade",
        },
    ]
    assert source.polls == 4  # the failed one is no poll
    registry = source.registry  # type: ignore[attr-defined]
    assert (
        registry.get_sample_value(
            "marketsignal_ingest_source_reconnects_total", {"source": "akshare"}
        )
        == 1
    )
    assert (
        registry.get_sample_value("marketsignal_ingest_source_ticks_total", {"source": "akshare"})
        == 5
    )
    assert (
        registry.get_sample_value(
            "marketsignal_ingest_source_messages_total", {"source": "akshare"}
        )
        == 4
    )
    assert (
        registry.get_sample_value("marketsignal_ingest_source_connected", {"source": "akshare"})
        == 1
    )


def test_a_bad_row_is_a_dead_letter_quoting_it_and_the_others_go_on() -> None:
    bad = row("600519", None, 87.0, 100)
    source = poller([[bad, row("00700", 496.2, 1e6, 1)], [row("600519", 1520.5, 87.0, 100)]])
    sink = run_polls(source, 2)
    [dead] = sink.dead
    assert (dead.reason, dead.field, dead.line) == ("malformed", "price", 1)
    assert dead.raw == '{"code":"600519","price":null,"volume":87.0,"unit":100}'
    assert dead.source == "akshare"
    # the bad row moved nothing: the good one after it carries the whole volume
    assert [(t["symbol"], t["volume"]) for t in sink.ticks] == [
        ("0700.HK", 1_000_000),
        ("600519.SH", 8_700),
    ]
    registry = source.registry  # type: ignore[attr-defined]
    assert (
        registry.get_sample_value(
            "marketsignal_ingest_source_dead_letters_total",
            {"source": "akshare", "reason": "malformed"},
        )
        == 1
    )


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        (row("600519", 1.0, 87.5, 100), "volume"),
        (row("600519", 1.0, 87.0, 100, "yesterday"), "ts"),
        (row("TCEHY", 1.0, 1.0, 1), "symbol"),
        ({"price": 1.0}, "symbol"),
    ],
)
def test_unusable_rows_name_their_field(bad: dict[str, Any], field: str) -> None:
    item = AkshareSnapshots(SymbolMap())(bad, POLLED_AT)
    assert getattr(item, "field", None) == field


def test_not_ready_until_a_poll_succeeded_and_while_polls_fail() -> None:
    metrics = SourceMetrics(CollectorRegistry(), "akshare")
    ready = readiness(lambda: (True, "producer connected"), metrics)
    assert ready() == (False, "akshare: not connected to the source")
    metrics.connected()
    assert ready() == (True, "producer connected; akshare connected")
    metrics.disconnected()
    assert ready()[0] is False
    assert readiness(lambda: (False, "connecting to Kafka"), metrics)() == (
        False,
        "connecting to Kafka",
    )


def test_seconds_since_the_last_message() -> None:
    now = [100.0]
    metrics = SourceMetrics(CollectorRegistry(), "yahoo", clock=lambda: now[0])
    now[0] = 104.0
    assert metrics.silence_s() == 4.0  # since the start, before any message
    metrics.message()
    now[0] = 104.5
    assert metrics.silence_s() == 0.5


# -- akshare's own calls, as akshare returns them ----------------------------------------------


def test_the_built_in_fetch_reads_akshares_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    import akshare
    import pandas as pd

    asked: list[str] = []

    def bid_ask(symbol: str) -> pd.DataFrame:
        asked.append(symbol)
        # stock_bid_ask_em's shape: item/value rows; "总手" in lots, order-book sizes in shares
        return pd.DataFrame(
            {
                "item": ["sell_1", "sell_1_vol", "最新", "总手"],
                "value": [1520.6, 200.0, 1520.5, 87.0],
            }
        )

    def hk_spot() -> pd.DataFrame:
        # stock_hk_spot_em's columns (a few), volume in shares
        return pd.DataFrame(
            {
                "代码": ["00005", "00700"],
                "最新价": [95.2, 496.2],
                "成交量": [2.0e7, 1.0e6],
            }
        )

    monkeypatch.setattr(akshare, "stock_bid_ask_em", bid_ask)
    monkeypatch.setattr(akshare, "stock_hk_spot_em", hk_spot)
    rows = akshare_fetch()(["600519", "700"])
    assert asked == ["600519"]
    assert rows == [
        {"code": "600519", "price": 1520.5, "volume": 87.0, "unit": 100},
        {"code": "00700", "price": 496.2, "volume": 1_000_000.0, "unit": 1},
    ]
    assert all(type(v) in (str, int, float) for r in rows for v in r.values())  # no numpy
    mapped = AkshareSnapshots(SymbolMap())
    volumes = [getattr(mapped(r, POLLED_AT), "fields", {}).get("volume") for r in rows]
    assert volumes == [8_700, 1_000_000]


# -- the command line ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["--akshare"], "--akshare reads --codes: give them (e.g. --codes 600519,00700)"),
        (["--akshare", "--codes", "430047"], "neither a Shanghai nor a Shenzhen code"),
        (
            ["--akshare", "x.csv", "--codes", "600519"],
            "--akshare reads its own source: no FILE and no --ws",
        ),
        (["--akshare", "--yahoo", "0700.HK"], "give one of --yahoo, --akshare"),
        (["--akshare", "--codes", "600519", "--adapter", "m:f"], "--akshare has its own adapter"),
        (["x.csv", "--codes", "600519"], "--codes is --akshare's or --futu's"),
        (["--akshare", "--codes", "600519", "--every", "0s"], "must be > 0"),
    ],
)
def test_akshare_options_are_checked_before_kafka(
    capsys: pytest.CaptureFixture[str], argv: list[str], problem: str
) -> None:
    try:
        code = main(["ingest", *argv])
    except SystemExit as exc:  # argparse's own refusal
        code = int(exc.code or 0)
    assert code == 2
    assert problem in capsys.readouterr().err


def test_no_poll_while_kafka_holds_too_many_records() -> None:
    """Back-pressure: the next fetch waits until the in-flight count is under the bound."""
    waiting = [3]  # the in-flight count is high for this many looks after the first poll
    fetches: list[int] = []
    looks: list[int] = []

    def in_flight() -> int:
        looks.append(len(fetches))
        if waiting[0] > 0:
            waiting[0] -= 1
            return 11
        return 0

    def fetch(_codes: Any) -> list[dict[str, Any]]:
        fetches.append(len(looks))
        if len(fetches) == 2:
            source.stop()
        return [row("600519", 1520.5 + len(fetches), 87.0, 100)]

    sink = Collect()
    source = SnapshotPoller(
        fetch,
        ("600519",),
        AkshareSnapshots(SymbolMap()),
        PollOptions(every_s=0.0, max_in_flight=10),
        screener(),
        sink,
        in_flight,
        clock=lambda: POLLED_AT,
    )
    source.run()
    # the second fetch came only after the count fell: 3 looks over the bound, 1 under
    assert fetches == [0, 4]
    assert len(sink.ticks) == 2
