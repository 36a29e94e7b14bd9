"""`marketsignal subscribe --symbols 2513.HK,0700.HK --kinds record_high ...`: create, then tail.

Writes to the subscription registry in Redis directly (the running alerter picks the new
subscription up with its next batch), prints the id and the webhook secret (shown once)
on stderr, then prints the subscription's alerts as they land in `alerts:sub:{id}`.
`--above 2513.HK=500` / `--below 0700.HK=300` (each repeatable) give the subscription its
own price levels, published to the levels topic like the API's.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import redis
from kafka.errors import KafkaError
from pydantic import ValidationError

from schemas.common import field_problems
from schemas.level import LevelSpec
from schemas.subscription import SubscriptionSpec
from services.cli.options import add_config_option
from services.cli.tail import Printer, follow_stream
from services.runtime import redis_client
from services.runtime.kafka_admin import BrokerUnavailableError
from services.runtime.redis_keys import RedisKeys
from services.runtime.settings import Settings
from services.subscriptions.levels import LevelStore, Refused
from services.subscriptions.registry import SubscriptionRegistry


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def configure(parser: argparse.ArgumentParser) -> None:
    add_config_option(parser)
    parser.add_argument("--name", help="a name for the subscription (default: its filters)")
    parser.add_argument("--symbols", type=_csv, default=[], help="symbols or globs: 2513.HK,*.SH")
    parser.add_argument(
        "--kinds",
        type=_csv,
        default=[],
        help="record_high,index_divergence,ah_premium,price_move,limit_hit,volume_spike "
        "(default: all)",
    )
    parser.add_argument(
        "--windows", type=_csv, default=[], help="record-high windows: all_time,52w"
    )
    parser.add_argument(
        "--pairs", type=_csv, default=[], help="divergence pairs or A/H listings: A/B,A/H"
    )
    parser.add_argument(
        "--phases",
        type=_csv,
        default=[],
        help="divergence and A/H phases: open,close; limit hits: sealed,opened",
    )
    parser.add_argument(
        "--directions",
        type=_csv,
        default=[],
        help="divergences: a_over_b,b_over_a; price moves and limit hits: up,down",
    )
    parser.add_argument("--min-change", type=float, help="record highs: change_pct at least")
    parser.add_argument("--min-spread", type=float, help="divergences: |spread_pp| at least")
    parser.add_argument("--min-premium", type=float, help="A/H premiums: |premium_pct| at least")
    parser.add_argument("--min-level", type=float, help="price moves: level_pct at least")
    parser.add_argument("--min-multiple", type=float, help="volume spikes: multiple at least")
    freq = parser.add_mutually_exclusive_group()
    freq.add_argument(
        "--once-per-day", action="store_true", help="first alert per subject and local day"
    )
    freq.add_argument("--cooldown", type=int, metavar="S", help="then none for S s (event time)")
    parser.add_argument("--webhook", metavar="URL", help="also POST each alert to URL (signed)")
    parser.add_argument("--pubsub", action="store_true", help="also PUBLISH on alerts:sub:{id}")
    for side in ("above", "below"):
        parser.add_argument(
            f"--{side}",
            action="append",
            default=[],
            metavar="SYMBOL=X",
            help=f"a price level: alert when SYMBOL crosses {side} X (repeatable)",
        )
    parser.add_argument("--no-tail", action="store_true", help="create and exit")
    parser.add_argument("--json", action="store_true", help="print each alert as JSON")
    parser.add_argument("--count", type=int, metavar="N", help="exit after N alerts")
    parser.add_argument("--timeout", type=float, metavar="S", help="exit after S seconds")


def spec_of(args: argparse.Namespace) -> dict[str, Any]:
    filters: dict[str, Any] = {
        "symbols": args.symbols,
        "kinds": args.kinds,
        "windows": args.windows,
        "pairs": args.pairs,
        "phases": args.phases,
        "directions": args.directions,
        "min_change_pct": args.min_change,
        "min_spread_pp": args.min_spread,
        "min_premium_pct": args.min_premium,
        "min_level_pct": args.min_level,
        "min_multiple": args.min_multiple,
    }
    filters = {k: v for k, v in filters.items() if v not in (None, [])}
    shown = (",".join(v) if isinstance(v, list) else f"{k}>={v:g}" for k, v in filters.items())
    name = args.name or (" ".join(shown) or "everything")
    spec: dict[str, Any] = {"name": name[:200], "filters": filters}
    if args.once_per_day:
        spec["frequency"] = "once_per_day"
    elif args.cooldown is not None:
        spec.update(frequency="cooldown", cooldown_s=args.cooldown)
    delivery: dict[str, Any] = {"stream": True, "pubsub": args.pubsub}
    if args.webhook:
        delivery["webhook"] = {"url": args.webhook}
    spec["delivery"] = delivery
    return spec


def levels_of(args: argparse.Namespace) -> list[LevelSpec]:
    """The `--above`/`--below SYMBOL=X` options as levels; ValueError naming a bad one."""
    out: list[LevelSpec] = []
    for side in ("above", "below"):
        for text in getattr(args, side):
            symbol, sep, price = text.rpartition("=")
            if not sep or not symbol:
                raise ValueError(f"--{side} {text!r}: expected SYMBOL=X, e.g. 2513.HK=500")
            try:
                out.append(LevelSpec.model_validate({"symbol": symbol, side: float(price)}))
            except ValueError as exc:  # float() or the schema (ValidationError)
                problems = (
                    [p.message for p in field_problems(exc)]
                    if isinstance(exc, ValidationError)
                    else [str(exc)]
                )
                raise ValueError(f"--{side} {text!r}: {'; '.join(problems)}") from None
    return out


def run(args: argparse.Namespace) -> int:
    settings = Settings.for_config(args.config)
    try:
        spec = SubscriptionSpec.model_validate(spec_of(args))
    except ValidationError as exc:
        for problem in field_problems(exc):
            print(f"marketsignal: {problem.field}: {problem.message}", file=sys.stderr)
        return 2
    try:
        wanted = levels_of(args)
    except ValueError as exc:
        print(f"marketsignal: {exc}", file=sys.stderr)
        return 2
    client = redis_client.connect(settings)
    store = LevelStore(client, settings)
    try:
        sub, secret = SubscriptionRegistry(client, settings).create(spec)
        print(f"subscription {sub.id} created: {sub.name}", file=sys.stderr)
        if sub.delivery.webhook is not None:
            print(f"webhook secret (shown once): {secret}", file=sys.stderr)
        for wish in wanted:
            level = store.create(sub.id, wish)
            if isinstance(level, Refused):
                print(f"marketsignal: level {wish.symbol} refused: {level.name}", file=sys.stderr)
                return 1
            print(
                f"level {level.level_id}: {level.symbol} {level.direction} {level.price:g}",
                file=sys.stderr,
            )
        if args.no_tail:
            print(sub.id)
            return 0
        printer = Printer(sys.stdout, sys.stderr, args.json, args.count)
        follow_stream(client, RedisKeys(settings.namespace).stream(sub.id), printer, args.timeout)
    except redis.RedisError as exc:
        print(f"marketsignal: Redis at {settings.redis_location}: {exc}", file=sys.stderr)
        return 1
    except (KafkaError, BrokerUnavailableError) as exc:
        print(f"marketsignal: levels not armed: Kafka: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        store.close()
        client.close()
    return 1 if args.count is not None and not printer.done else 0
