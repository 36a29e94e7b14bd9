"""`marketsignal history load BARS|- [--strict] [--wait S]`: daily bars to the processor;
`marketsignal history fetch --source akshare|yahoo SYMBOLS [--days N] [--adjust A]`: a
source's daily bars as a history file, on standard output.

The loading itself: services/ingestor/history_load.py; the fetching:
services/ingestor/history_fetch.py and daily_bars.py.
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import date
from pathlib import Path

from kafka.errors import KafkaError

from services.cli.options import add_config_option, add_format_option
from services.ingestor.adapters.base import parse_symbols
from services.ingestor.daily_bars import (
    ADJUSTS,
    SOURCES,
    SourceCode,
    UnknownSymbolError,
    bars_of,
    csv_header,
    csv_line,
    source_code,
)
from services.ingestor.extras import MissingExtraError
from services.ingestor.history_fetch import NoDataError, fetch_rows, require_source
from services.ingestor.history_load import publish_bars, read_bar_file, wait_merged
from services.ingestor.symbols import SymbolMap, load_overrides
from services.parsing.feed import FeedError
from services.runtime.kafka_admin import BrokerUnavailableError
from services.runtime.settings import Settings


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    load = sub.add_parser(
        "load",
        help="validate a history file and publish its bars to the history topic",
        description="Validate daily bars (CSV or JSON Lines: symbol,date,high,close "
        "[,open,low,volume]) and publish them, keyed by symbol, to the history topic.",
    )
    load.add_argument("file", type=Path, help="the bars file; - for standard input")
    add_config_option(load)
    add_format_option(load)
    load.add_argument(
        "--strict", action="store_true", help="publish nothing, exit 2, if any bar is bad"
    )
    load.add_argument(
        "--wait",
        type=float,
        default=None,
        metavar="SECONDS",
        help="then wait until the processor group has consumed the history topic "
        "(exit 1 if it has not within SECONDS): start the ticks after that",
    )

    fetch = sub.add_parser(
        "fetch",
        help="write a source's daily bars (akshare or Yahoo) as a history file to stdout",
        description="Fetch daily bars of SYMBOLS from akshare (A-shares, Hong Kong) or "
        "Yahoo (through yfinance) and write them to standard output as a history file "
        "(CSV: symbol,date,open,high,low,close,volume), the file `history load` and "
        "`backtest --history` read. Skipped bars and failures: one line each on stderr. "
        "Exit 2 on a usage error (missing extra, unknown symbol), 1 if a symbol gave no "
        "bars (the others are still written).",
    )
    fetch.add_argument("--source", required=True, choices=SOURCES, help="where the bars come from")
    fetch.add_argument(
        "symbols",
        metavar="SYMBOLS",
        help="comma-separated canonical symbols (600519.SH,0700.HK), or any spelling the "
        "symbol map reads (600519.SS, HK.00700)",
    )
    fetch.add_argument(
        "--days",
        type=int,
        default=400,
        help="calendar days back from today (default 400: the 52-week window and a ytd "
        "base with room to spare; an all-time high needs the listing's whole life)",
    )
    fetch.add_argument(
        "--adjust",
        choices=ADJUSTS,
        default="qfq",
        help="none: prices as traded; qfq (default): forward-adjusted, the latest prices as "
        "traded and the past scaled for splits and dividends, so live ticks compare with "
        "it; hfq: backward-adjusted (akshare only)",
    )
    fetch.add_argument(
        "--symbol-map",
        type=Path,
        default=None,
        metavar="FILE",
        help="source=canonical lines read before the symbol rules (docs/feeds.md)",
    )


def run(args: argparse.Namespace) -> int:
    if args.action == "fetch":
        return _fetch(args)
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    settings = Settings.for_config(args.config)
    from_stdin = str(args.file) == "-"
    source = "<stdin>" if from_stdin else str(args.file)
    if not from_stdin and not args.file.is_file():
        print(f"marketsignal: {args.file}: no such file", file=sys.stderr)
        return 2
    try:
        bars, bad = read_bar_file(
            None if from_stdin else args.file,
            args.format,
            lambda item: print(item.render(source), file=sys.stderr),
        )
    except FeedError as exc:
        print(f"marketsignal: {source}: {exc}", file=sys.stderr)
        return 2
    if bad and args.strict:
        print(f"marketsignal: {bad} bad bars (--strict): nothing published", file=sys.stderr)
        return 2
    try:
        failure = publish_bars(settings, bars)
    except BrokerUnavailableError as exc:
        print(f"marketsignal: {exc}", file=sys.stderr)
        return 1
    except KafkaError as exc:
        print(f"marketsignal: Kafka at {settings.kafka_bootstrap}: {exc}", file=sys.stderr)
        return 1
    print(
        f"history: {len(bars)} bars published to {settings.history_topic}, {bad} bad",
        file=sys.stderr,
    )
    if failure is not None:
        print(f"marketsignal: delivery failed: {failure}", file=sys.stderr)
        return 1
    if args.wait is None:
        return 0
    group = settings.processor_consumer_group
    if not wait_merged(settings, args.wait):
        print(
            f"marketsignal: the processor group {group} has not consumed "
            f"{settings.history_topic} within {args.wait:g}s (is it running?)",
            file=sys.stderr,
        )
        return 1
    print(f"history: merged by {group}", file=sys.stderr)
    return 0


def _fetch(args: argparse.Namespace) -> int:
    settings = Settings()
    if args.days < 1:
        print("marketsignal: --days must be at least 1", file=sys.stderr)
        return 2
    try:
        symbols = SymbolMap(load_overrides(args.symbol_map) if args.symbol_map else None)
        codes = [
            source_code(args.source, s, symbols)
            for s in parse_symbols(args.symbols, "SYMBOLS", "600519.SH,0700.HK")
        ]
        if args.source == "yahoo" and args.adjust == "hfq":
            raise ValueError("Yahoo gives no backward-adjusted (hfq) prices: --adjust none or qfq")
        require_source(args.source)
    except (ValueError, UnknownSymbolError, MissingExtraError) as exc:
        print(f"marketsignal: {exc}", file=sys.stderr)
        return 2
    print(csv_header(), flush=True)
    failed = 0
    for code in codes:
        try:
            written = _write_bars(args, settings, code)
        except NoDataError as exc:
            print(f"marketsignal: {code.symbol}: {exc}", file=sys.stderr)
            failed += 1
            continue
        except Exception as exc:  # the library's failure, whatever it is: one line
            print(
                f"marketsignal: {code.symbol}: {args.source} failed: {type(exc).__name__}: {exc}",
                file=sys.stderr,
            )
            failed += 1
            continue
        print(f"history: {code.symbol}: {written} bars from {args.source}", file=sys.stderr)
    return 1 if failed else 0


def _write_bars(args: argparse.Namespace, settings: Settings, code: SourceCode) -> int:
    rows = fetch_rows(
        args.source, code, args.days, args.adjust, date.today(), settings.history_fetch_url
    )
    written = 0
    for bar in bars_of(code, rows):
        if isinstance(bar, str):
            print(f"history: {code.symbol}: bar skipped: {bar}", file=sys.stderr)
            continue
        print(csv_line(bar))
        written += 1
    sys.stdout.flush()
    return written
