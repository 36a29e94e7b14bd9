"""`marketsignal history load BARS|- [--format F] [--strict]`: daily bars to the processor.

Publishes each valid bar to `{namespace}history`, keyed by symbol, where the processor
merges it into that symbol's state (and its pairs') under the contract's history rules.
Loading the same file twice changes nothing: a date's first bar is the one that counts.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from kafka.errors import KafkaError

from schemas.bar import Bar
from services.cli.options import add_config_option, add_format_option
from services.ingestor.publish import Publisher
from services.parsing.feed import FeedError, stdin_text
from services.parsing.history import BadBar, read_bars, read_bars_stream
from services.runtime.kafka_admin import BrokerUnavailableError, ensure_topics
from services.runtime.lag import caught_up
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
    bars: list[Bar] = []
    bad = 0
    try:
        items = (
            read_bars_stream(stdin_text(), args.format)
            if from_stdin
            else read_bars(args.file, args.format)
        )
        for item in items:
            if isinstance(item, BadBar):
                bad += 1
                print(item.render(source), file=sys.stderr)
            else:
                bars.append(item[1])
    except FeedError as exc:
        print(f"marketsignal: {source}: {exc}", file=sys.stderr)
        return 2
    if bad and args.strict:
        print(f"marketsignal: {bad} bad bars (--strict): nothing published", file=sys.stderr)
        return 2
    try:
        ensure_topics(settings, [settings.history_topic], settings.partitions)
        publisher = Publisher(settings)
    except BrokerUnavailableError as exc:
        print(f"marketsignal: {exc}", file=sys.stderr)
        return 1
    try:
        for bar in bars:
            publisher.bar(bar, settings.history_topic)
        publisher.flush()
    except KafkaError as exc:
        print(f"marketsignal: Kafka at {settings.kafka_bootstrap}: {exc}", file=sys.stderr)
        publisher.close(timeout_s=1.0)
        return 1
    publisher.close()
    print(
        f"history: {len(bars)} bars published to {settings.history_topic}, {bad} bad",
        file=sys.stderr,
    )
    if publisher.failed:
        print(f"marketsignal: delivery failed: {publisher.first_error}", file=sys.stderr)
        return 1
    if args.wait is not None:
        return _wait_merged(settings, args.wait)
    return 0


def _wait_merged(settings: Settings, timeout_s: float) -> int:
    group = settings.processor_consumer_group
    deadline = time.monotonic() + timeout_s
    while not caught_up(settings.kafka_bootstrap, group, [settings.history_topic]):
        if time.monotonic() > deadline:
            print(
                f"marketsignal: the processor group {group} has not consumed "
                f"{settings.history_topic} within {timeout_s:g}s (is it running?)",
                file=sys.stderr,
            )
            return 1
        time.sleep(0.5)
    print(f"history: merged by {group}", file=sys.stderr)
    return 0
