"""`marketsignal history load BARS|- [--strict] [--wait S]`: daily bars to the processor.

The loading itself: services/ingestor/history_load.py.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from kafka.errors import KafkaError

from services.cli.options import add_config_option, add_format_option
from services.ingestor.history_load import publish_bars, read_bar_file, wait_merged
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


def run(args: argparse.Namespace) -> int:
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
