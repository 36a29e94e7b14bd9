"""`ingest --futu`: OpenD ticker rows to canonical ticks (symbols, Beijing and US Eastern
times), the sequence logic (a repeat never published twice, gaps counted, each burst
logged once), futu-api's handler fed with pushes built from futu-api's own protobuf
classes, and the loop's connection state. No OpenD here: the live connection is not
tested."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from services.cli import main
from services.ingestor.adapters.base import Mapped, Rejected
from services.ingestor.futu_push import (
    FutuOptions,
    FutuSource,
    parse_address,
    parse_futu_codes,
    ticker_handler,
)
from services.ingestor.futu_tickers import FutuTickers, SequenceWatch, trade_time
from services.ingestor.source_metrics import CountedSink, SourceMetrics, readiness
from services.ingestor.symbols import SymbolMap
from tests.unit.ingestor.test_akshare import screener
from tests.unit.ingestor.test_vendor_adapters import Collect

SECOND = 1_689_753_598  # 2023-07-19 07:59:58 UTC: 15:59:58 in Hong Kong


def seq(count: int, second: int = SECOND) -> int:
    """A sequence as Futu's HK example has them: the epoch second, then the day's count."""
    return (second << 32) | count


FIRST = seq(25752)  # Futu's example: HK.00700's trade 25752 of the day


def ticker(code: Any = "HK.00700", sequence: Any = FIRST, **more: Any) -> dict[str, Any]:
    row = {
        "code": code,
        "name": "腾讯控股",
        "time": "2023-07-19 15:59:58.000",
        "price": 332.4,
        "volume": 100,
        "turnover": 33240.0,
        "ticker_direction": "SELL",
        "sequence": sequence,
        "type": "AUTO_MATCH",
        "push_data_type": "REALTIME",
    }
    return {**row, **more}


def source() -> tuple[FutuSource, Collect, CollectorRegistry]:
    sink = Collect()
    registry = CollectorRegistry()
    metrics = SourceMetrics(registry, "futu")
    options = FutuOptions(host="127.0.0.1", port=11111, codes=("HK.00700",))
    feed = FutuSource(
        options,
        FutuTickers(SymbolMap()),
        screener(),
        CountedSink(sink, metrics),
        lambda: 0,
        metrics,
    )
    return feed, sink, registry


@pytest.mark.parametrize(
    ("code", "time", "symbol", "ts"),
    [
        ("HK.00700", "2023-07-19 15:59:58.000", "0700.HK", "2023-07-19T15:59:58+08:00"),
        ("SH.600519", "2023-07-19 14:56:01:250", "600519.SH", "2023-07-19T14:56:01.250000+08:00"),
        ("SZ.000001", "2023-07-19 09:30:00", "000001.SZ", "2023-07-19T09:30:00+08:00"),
        ("US.AAPL", "2025-04-07 05:50:23.745", "AAPL", "2025-04-07T09:50:23.745000Z"),
    ],
)
def test_ticker_rows_become_canonical_ticks(code: str, time: str, symbol: str, ts: str) -> None:
    feed, sink, _ = source()
    feed.push([ticker(code, time=time)])
    assert sink.dead == []
    assert sink.ticks == [
        {"symbol": symbol, "ts": ts, "price": 332.4, "volume": 100, "kind": "trade"}
    ]


def test_times_as_futu_writes_them() -> None:
    # documented as yyyy-MM-dd HH:mm:ss:xxx; printed with a dot in Futu's examples
    assert trade_time("2023-07-19 15:59:58:123", us=False) == "2023-07-19T15:59:58.123000"
    assert trade_time("2023-07-19 15:59:58.123", us=False) == "2023-07-19T15:59:58.123000"
    # US Eastern, daylight saving or not
    assert trade_time("2025-04-07 05:50:23", us=True) == "2025-04-07T05:50:23-04:00"
    assert trade_time("2025-01-07 05:50:23", us=True) == "2025-01-07T05:50:23-05:00"
    assert trade_time("15:59:58", us=False) is None
    assert trade_time(None, us=False) is None


def test_a_high_precision_volume_is_whole_shares() -> None:
    item = FutuTickers(SymbolMap())(ticker(volume=1_667_000.0))
    assert isinstance(item, Mapped)
    assert item.fields["volume"] == 1_667_000
    assert type(item.fields["volume"]) is int


@pytest.mark.parametrize(
    ("row", "field"),
    [
        (ticker(code="HK.TCH"), "symbol"),
        (ticker(code=None), "symbol"),
        (ticker(time="later"), "ts"),
        (ticker(sequence="7257436441708356760"), None),
    ],
)
def test_unusable_rows_are_rejected_with_their_field(row: dict[str, Any], field: str) -> None:
    item = FutuTickers(SymbolMap())(row)
    assert isinstance(item, Rejected)
    assert item.field == field


def test_a_bad_price_is_a_dead_letter_quoting_the_row() -> None:
    feed, sink, _ = source()
    feed.push([ticker(price=-1.0), ticker(sequence=seq(25753))])
    [dead] = sink.dead
    assert (dead.reason, dead.field, dead.line) == ("malformed", "price", 1)
    assert '"code":"HK.00700"' in dead.raw
    assert len(sink.ticks) == 1


# -- sequences -------------------------------------------------------------------------------


def test_a_repeat_is_not_published_twice() -> None:
    feed, sink, registry = source()
    rows = [ticker(sequence=seq(25752)), ticker(sequence=seq(25753), price=333.0)]
    feed.push(rows)
    feed.push(rows)  # OpenD sends them again (its catch-up after a reconnect)
    feed.push([ticker(sequence=seq(25754, SECOND + 1), price=333.2)])
    assert [t["price"] for t in sink.ticks] == [332.4, 333.0, 333.2]
    assert feed.mapper.sequences.totals.repeats == 2
    feed.push([ticker(sequence=seq(25757, SECOND + 2))])  # 2 trades missed
    sample = registry.get_sample_value
    assert sample("marketsignal_ingest_source_sequence_repeats_total", {"source": "futu"}) == 2
    assert sample("marketsignal_ingest_source_sequence_gaps_total", {"source": "futu"}) == 1


def test_gaps_are_counted_by_the_low_bits_and_each_burst_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    watch = SequenceWatch()
    with caplog.at_level(logging.WARNING, "marketsignal.ingestor.futu"):
        fresh = [
            watch.fresh("HK.00700", s)
            for s in (
                seq(100),
                seq(101),
                seq(105, SECOND + 1),  # 3 trades missed
                seq(105, SECOND + 1),  # a repeat
                seq(103),  # older: a repeat too
                seq(110, SECOND + 2),  # 4 more missed
                seq(111, SECOND + 2),  # in order again: the burst ends
                seq(113, SECOND + 2),  # a new burst
            )
        ]
    assert fresh == [True, True, True, False, False, True, True, True]
    totals = watch.totals
    assert (totals.gaps, totals.missed, totals.repeats) == (3, 8, 2)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 3  # the first burst's start and end, the second's start
    assert messages[0].startswith(f"HK.00700: sequence {seq(105, SECOND + 1)} after {seq(101)}")
    assert (
        messages[1] == "HK.00700: back in order after 2 gap(s) (7 trade(s) missed) and 2 repeat(s)"
    )


def test_codes_are_watched_apart_and_a_counter_restart_is_no_gap() -> None:
    watch = SequenceWatch()
    assert watch.fresh("HK.00700", seq(500))
    assert watch.fresh("SH.600519", seq(7))  # another code's count
    assert watch.fresh("HK.00700", seq(1, SECOND + 86_400))  # the next day starts again at 1
    assert watch.totals.gaps == 0


def test_without_a_count_in_the_low_bits_no_gap_is_claimed() -> None:
    # Futu's US example: 7490506385373790208, 7490506389668757504 (low 32 bits 0)
    watch = SequenceWatch()
    assert watch.fresh("US.AAPL", 7490506385373790208)
    assert watch.fresh("US.AAPL", 7490506389668757504)
    assert not watch.fresh("US.AAPL", 7490506389668757504)
    assert (watch.totals.gaps, watch.totals.repeats) == (0, 1)


@given(st.lists(st.integers(1, 60), max_size=80))
def test_each_sequence_is_published_at_most_once_and_in_rising_order(counts: list[int]) -> None:
    watch = SequenceWatch()
    published = [c for c in counts if watch.fresh("HK.00700", seq(c))]
    assert published == sorted(set(published))
    assert len(published) + watch.totals.repeats == len(counts)
    # what is published is every new high of the stream
    highs, top = [], 0
    for c in counts:
        if c > top:
            highs.append(c)
            top = c
    assert published == highs


# -- futu-api's handler, fed with what futu-api parses -----------------------------------------


def push(market: int, code: str, tickers: list[dict[str, Any]]) -> Any:
    """A Qot_UpdateTicker push, built with futu-api's own protobuf classes."""
    from futu.common.pb import Qot_UpdateTicker_pb2

    response = Qot_UpdateTicker_pb2.Response()
    response.retType = 0
    response.s2c.security.market = market
    response.s2c.security.code = code
    response.s2c.name = "腾讯控股"
    for fields in tickers:
        entry = response.s2c.tickerList.add()
        entry.time = fields["time"]
        entry.sequence = fields["sequence"]
        entry.dir = 2  # TickerDirection_Ask: a sell
        entry.price = fields["price"]
        entry.volume = fields["volume"]
        entry.turnover = fields["price"] * fields["volume"]
        entry.pushDataType = 1  # PushDataType_Realtime
    return response


def test_the_handler_hands_futu_apis_rows_to_the_loop() -> None:
    import futu

    delivered: list[list[dict[str, Any]]] = []
    handler = ticker_handler(futu, delivered.append)
    assert isinstance(handler, futu.TickerHandlerBase)
    rsp = push(
        1,  # QotMarket_HK_Security
        "00700",
        [
            {
                "time": "2023-07-19 15:59:58.000",
                "sequence": seq(25752),
                "price": 332.4,
                "volume": 100,
            },
            {
                "time": "2023-07-19 16:08:12.000",
                "sequence": seq(25753, SECOND + 494),
                "price": 333.0,
                "volume": 1_667_000,
            },
        ],
    )
    ret, _ = handler.on_recv_rsp(rsp)
    assert ret == futu.RET_OK
    [rows] = delivered
    assert [(r["code"], r["sequence"], r["price"], r["volume"]) for r in rows] == [
        ("HK.00700", seq(25752), 332.4, 100),
        ("HK.00700", seq(25753, SECOND + 494), 333.0, 1_667_000),
    ]
    feed, sink, _ = source()
    feed.push(rows)
    assert sink.ticks == [
        {
            "symbol": "0700.HK",
            "ts": "2023-07-19T15:59:58+08:00",
            "price": 332.4,
            "volume": 100,
            "kind": "trade",
        },
        {
            "symbol": "0700.HK",
            "ts": "2023-07-19T16:08:12+08:00",
            "price": 333.0,
            "volume": 1_667_000,
            "kind": "trade",
        },
    ]


def test_a_failed_push_is_logged_not_delivered(caplog: pytest.LogCaptureFixture) -> None:
    import futu
    from futu.common.pb import Qot_UpdateTicker_pb2

    delivered: list[Any] = []
    failed = Qot_UpdateTicker_pb2.Response()
    failed.retType = -1
    failed.retMsg = "no quote right"
    with caplog.at_level(logging.WARNING, "marketsignal.ingestor.futu"):
        ret, _ = ticker_handler(futu, delivered.append).on_recv_rsp(failed)
    assert ret != futu.RET_OK
    assert delivered == []
    assert "no quote right" in caplog.text


# -- the loop: the connection's state --------------------------------------------------------


def test_the_loop_reports_the_connection_and_readiness_follows() -> None:
    feed, sink, registry = source()
    states = iter([False, True, True, False, True])
    seen: list[tuple[bool, str]] = []
    ready = readiness(lambda: (True, "producer connected"), feed.metrics)  # type: ignore[arg-type]

    def connected() -> bool:
        state = next(states, None)
        if state is None:
            feed.stop()
            return True
        feed.pushes.put([ticker(sequence=seq(len(seen) + 1))])
        seen.append(ready())
        return state

    feed.loop(connected)
    assert [ok for ok, _ in seen] == [False, False, True, True, False]  # before each state
    sample = registry.get_sample_value
    assert sample("marketsignal_ingest_source_reconnects_total", {"source": "futu"}) == 1
    assert sample("marketsignal_ingest_source_messages_total", {"source": "futu"}) == 5
    assert sample("marketsignal_ingest_source_ticks_total", {"source": "futu"}) == 5
    assert len(sink.ticks) == 5


def test_a_full_queue_holds_futu_apis_thread() -> None:
    feed, _, _ = source()
    small = FutuSource(
        FutuOptions(host="h", port=1, codes=("HK.00700",), queue_max=1),
        feed.mapper,
        feed.screener,
        feed.sink,
        lambda: 0,
    )
    small.pushes.put([ticker()])
    second = threading.Thread(target=small.pushes.put, args=([ticker()],), daemon=True)
    second.start()
    second.join(0.2)
    assert second.is_alive()  # blocked: back-pressure, not memory
    small.pushes.get()
    second.join(5)
    assert not second.is_alive()


# -- the command line ------------------------------------------------------------------------


def test_addresses_and_codes() -> None:
    assert parse_address("127.0.0.1:11111") == ("127.0.0.1", 11111)
    for bad in ("127.0.0.1", ":11111", "host:0", "host:port"):
        with pytest.raises(ValueError, match="expected HOST:PORT"):
            parse_address(bad)
    assert parse_futu_codes("HK.00700,SH.600519,SZ.000001", SymbolMap()) == (
        "HK.00700",
        "SH.600519",
        "SZ.000001",
    )
    with pytest.raises(ValueError, match=r"Futu's codes, e\.g\. HK\.00700"):
        parse_futu_codes("00700", SymbolMap())
    with pytest.raises(ValueError, match="HK code is digits"):
        parse_futu_codes("HK.TCH", SymbolMap())


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["--futu", "127.0.0.1:11111"], "--futu reads --codes: give them (e.g. --codes HK.00700"),
        (["--futu", "nowhere", "--codes", "HK.00700"], "expected HOST:PORT"),
        (
            ["--futu", "h:1", "--codes", "HK.00700", "--yahoo", "0700.HK"],
            "give one of --yahoo, --futu",
        ),
        (["--futu", "h:1", "--codes", "HK.00700", "--ws", "ws://x"], "no FILE and no --ws"),
        (["--futu", "h:1", "--codes", "HK.00700", "--symbols", "A"], "--futu has its own adapter"),
    ],
)
def test_futu_options_are_checked_before_kafka(
    capsys: pytest.CaptureFixture[str], argv: list[str], problem: str
) -> None:
    assert main(["ingest", *argv]) == 2
    assert problem in capsys.readouterr().err
