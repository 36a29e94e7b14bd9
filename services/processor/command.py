"""`marketsignal process`: one faust-streaming worker (start several to share the work)."""

from __future__ import annotations

import argparse
import sys

import faust

from services.cli import add_config_option
from services.kafka_admin import BrokerUnavailableError, ensure_topics
from services.processor.app import build_app
from services.settings import Settings


def configure(parser: argparse.ArgumentParser) -> None:
    add_config_option(parser)
    parser.add_argument(
        "--web-port", type=int, default=None, help="Faust web port (default: settings, 6066)"
    )
    parser.add_argument("--loglevel", default="info", help="worker log level")


def run(args: argparse.Namespace) -> int:
    settings = Settings() if args.config is None else Settings(config=args.config)
    rules = settings.rules()
    try:
        ensure_topics(
            settings,
            [settings.ticks_topic, settings.dlq_topic, settings.signals_topic],
            settings.partitions,
        )
    except BrokerUnavailableError as exc:
        print(f"marketsignal: {exc}", file=sys.stderr)
        return 1
    app = build_app(settings, rules, web_port=args.web_port)
    worker = faust.Worker(app, loglevel=args.loglevel)
    worker.execute_from_commandline()  # exits the process when the worker stops
    return 0
