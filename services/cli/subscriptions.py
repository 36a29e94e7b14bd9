"""`marketsignal subscriptions list|show ID|delete ID|redis-user ID`: the registry in Redis.

Whoever runs these can read and write the registry in Redis, so they act as an admin:
every subscription, whoever owns it.
"""

from __future__ import annotations

import argparse
import json
import sys

import redis

from services.cli.options import add_config_option
from services.runtime.settings import Settings
from services.subscriptions.registry import SubscriptionRegistry


def configure(parser: argparse.ArgumentParser) -> None:
    add_config_option(parser)
    action = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = action.add_parser("list", help="one line per subscription")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    action.add_parser("show", help="a subscription as JSON").add_argument("id")
    action.add_parser("delete", help="delete a subscription and its stream").add_argument("id")
    action.add_parser(
        "redis-user",
        help="a Redis user that can read only this subscription's stream and channel "
        "(prints user and password once; a new password each time)",
    ).add_argument("id")


def _unknown(sub_id: str) -> int:
    print(f"marketsignal: no subscription {sub_id!r}", file=sys.stderr)
    return 1


def run(args: argparse.Namespace) -> int:
    settings = Settings.for_config(args.config)
    client = redis.Redis.from_url(settings.redis_url)
    registry = SubscriptionRegistry(client, settings)
    try:
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
        if not registry.delete(args.id):
            return _unknown(args.id)
        print(f"subscription {args.id} deleted", file=sys.stderr)
        return 0
    except redis.RedisError as exc:
        print(f"marketsignal: Redis at {settings.redis_location}: {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()
