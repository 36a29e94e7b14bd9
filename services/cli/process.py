"""`marketsignal process`: one faust-streaming worker (start several to share the work)."""

from __future__ import annotations

import argparse
import sys

from services.cli.options import add_config_option
from services.processor import worker
from services.runtime.kafka_admin import BrokerUnavailableError
from services.runtime.settings import Settings


def configure(parser: argparse.ArgumentParser) -> None:
    add_config_option(parser)
    parser.add_argument(
        "--web-port",
        type=int,
        default=None,
        help="Faust web port (default: settings, 6066; 0: any free port)",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="/metrics, /healthz, /readyz port (default: settings, 9102; 0: any free port)",
    )
    parser.add_argument("--loglevel", default="info", help="worker log level")


def run(args: argparse.Namespace) -> int:
    if args.web_port is not None and not 0 <= args.web_port <= 65535:
        print(f"marketsignal: --web-port {args.web_port}: not a port (0-65535)", file=sys.stderr)
        return 2
    settings = Settings.for_config(args.config)
    try:
        return worker.run(
            settings,
            web_port=args.web_port,
            metrics_port=args.metrics_port,
            loglevel=args.loglevel,
        )
    except BrokerUnavailableError as exc:
        print(f"marketsignal: {exc}", file=sys.stderr)
        return 1
