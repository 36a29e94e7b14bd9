"""`marketsignal alert [--idle-exit S | --once]`: deliver signals from Kafka to Redis."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from types import FrameType

import redis
from kafka.errors import KafkaError

from services.alerter.service import run_alerter
from services.cli.options import add_config_option
from services.runtime.kafka_admin import BrokerUnavailableError
from services.runtime.log_flood import install as count_repeats
from services.runtime.observability import LOG_FORMAT
from services.runtime.settings import Settings

log = logging.getLogger("marketsignal.alerter")

# --once: the same as --idle-exit with this quiet period.
ONCE_IDLE_S = 2.0


def configure(parser: argparse.ArgumentParser) -> None:
    add_config_option(parser)
    stop = parser.add_mutually_exclusive_group()
    stop.add_argument(
        "--idle-exit",
        type=float,
        metavar="SECONDS",
        help="exit once no signal has arrived for SECONDS (after joining the group)",
    )
    stop.add_argument(
        "--once",
        action="store_true",
        help=f"deliver what is on the topic, then exit (--idle-exit {ONCE_IDLE_S:g})",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="/metrics, /healthz, /readyz port (default: settings, 9103; 0: any free port)",
    )
    parser.add_argument(
        "--no-api",
        action="store_true",
        help="do not serve the subscriptions HTTP API (webhooks are still delivered)",
    )


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    count_repeats()  # a client library's retries in an outage: counted, not printed
    logging.getLogger("kafka").setLevel(logging.WARNING)
    settings = Settings.for_config(args.config)
    settings.rules()  # a broken rules file should fail here, like every other command
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("%s: finishing the current batch, then stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        stats = run_alerter(
            settings,
            stop,
            idle_exit_s=ONCE_IDLE_S if args.once else args.idle_exit,
            metrics_port=args.metrics_port,
            api=not args.no_api,
        )
    except BrokerUnavailableError as exc:
        print(f"marketsignal: {exc}", file=sys.stderr)
        return 1
    except redis.RedisError as exc:
        print(
            f"marketsignal: Redis at {settings.redis_location} is not reachable ({exc}); "
            "start the local stack with `make stack-up`",
            file=sys.stderr,
        )
        return 1
    except KafkaError as exc:
        print(f"marketsignal: Kafka at {settings.kafka_bootstrap}: {exc}", file=sys.stderr)
        return 1
    print(stats.render(), file=sys.stderr)
    return 0
