"""`marketsignal subscriptions list|show ID|delete ID|redis-user ID|levels ID|unlevel ID
LEVEL_ID`: the registry in Redis, and the subscriptions' price levels.

Whoever runs these can read and write the registry in Redis, so they act as an admin:
every subscription, whoever owns it.
"""

from __future__ import annotations

import argparse
import json
import sys

import redis
from kafka.errors import KafkaError

from services.cli.options import add_config_option
from services.runtime import redis_client
from services.runtime.kafka_admin import BrokerUnavailableError
from services.runtime.settings import Settings
from services.subscriptions.levels import LevelStore
from services.subscriptions.registry import SubscriptionRegistry


def configure(parser: argparse.ArgumentParser) -> None:
    add_config_option(parser)
    action = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = action.add_parser("list", help="one line per subscription")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    action.add_parser("show", help="a subscription as JSON").add_argument("id")
    action.add_parser(
        "delete", help="delete a subscription, its stream, and its levels"
    ).add_argument("id")
    levels = action.add_parser("levels", help="one line per price level of a subscription")
    levels.add_argument("id")
    levels.add_argument("--json", action="store_true", help="one JSON object per line")
    unlevel = action.add_parser("unlevel", help="disarm and delete one price level")
    unlevel.add_argument("id")
    unlevel.add_argument("level_id")
    action.add_parser(
        "redis-user",
        help="a Redis user that can read only this subscription's stream and channel "
        "(prints user and password once; a new password each time)",
    ).add_argument("id")


def _unknown(sub_id: str) -> int:
    print(f"marketsignal: no subscription {sub_id!r}", file=sys.stderr)
    return 1


def _levels(args: argparse.Namespace, registry: SubscriptionRegistry, store: LevelStore) -> int:
    if registry.get(args.id) is None:
        return _unknown(args.id)
    after = ""
    while True:
        page, following = store.page(args.id, after, 1000)
        for level in page:
            if args.json:
                print(level.model_dump_json())
            else:
                note = f"  {level.note}" if level.note else ""
                print(f"{level.level_id}  {level.symbol}  {level.direction} {level.price:g}{note}")
        if following is None:
            return 0
        after = following


def run(args: argparse.Namespace) -> int:
    settings = Settings.for_config(args.config)
    client = redis_client.connect(settings)
    registry = SubscriptionRegistry(client, settings)
    store = LevelStore(client, settings)
    try:
        if args.action == "levels":
            return _levels(args, registry, store)
        if args.action == "unlevel":
            if registry.get(args.id) is None:
                return _unknown(args.id)
            if not store.delete(args.id, args.level_id):
                print(f"marketsignal: no level {args.level_id!r} of {args.id}", file=sys.stderr)
                return 1
            print(f"level {args.level_id} deleted", file=sys.stderr)
            return 0
        if args.action == "list":
            for sub in registry.list_all():
                if args.json:
                    print(sub.model_dump_json())
                else:
                    f = sub.filters.model_dump(exclude_defaults=True)
                    print(
                        f"{sub.id}  {sub.frequency:<12} {','.join(sub.delivery.channels):<20} "
                        f"{sub.name}  {f}"
                    )
            return 0
        if args.action == "show":
            found = registry.get(args.id)
            if found is None:
                return _unknown(args.id)
            print(found.model_dump_json(indent=2))
            return 0
        if args.action == "redis-user":
            granted = registry.grant_redis_user(args.id)
            if granted is None:
                return _unknown(args.id)
            user, password = granted
            stream = registry.keys.stream(args.id)
            print(json.dumps({"user": user, "password": password, "stream": stream}))
            return 0
        if registry.get(args.id) is None:
            return _unknown(args.id)
        # Levels first, as the API does: never armed for a subscription that is gone.
        store.disarm_subscription(args.id)
        if not registry.delete(args.id):
            return _unknown(args.id)
        print(f"subscription {args.id} deleted", file=sys.stderr)
        return 0
    except redis.RedisError as exc:
        print(f"marketsignal: Redis at {settings.redis_location}: {exc}", file=sys.stderr)
        return 1
    except (KafkaError, BrokerUnavailableError) as exc:
        print(f"marketsignal: Kafka: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
        client.close()
