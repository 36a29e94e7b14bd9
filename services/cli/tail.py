"""`marketsignal tail`: print alerts as a subscriber sees them, optionally from the start.

With --from-start the stream's history is read after subscribing, not before: an alert
published in between is then in both, and is printed once (by alert_id), rather than
falling in the gap between the two and being missed.
"""

from __future__ import annotations

import argparse
import fnmatch
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, TextIO

import redis
from pydantic import ValidationError

from schemas.alert import Alert
from schemas.topics import ALERTS_PATTERN, alert_channel
from services.alerter.format import format_alert
from services.cli.options import add_config_option
from services.runtime import redis_client
from services.runtime.redis_keys import RedisKeys
from services.runtime.settings import Settings

XRANGE_PAGE = 1000
# pubsub wait (and stream block) per call: how soon --timeout and Ctrl-C are noticed.
LISTEN_SLICE_S = 0.2


def configure(parser: argparse.ArgumentParser) -> None:
    add_config_option(parser)
    parser.add_argument(
        "--pattern",
        default=ALERTS_PATTERN,
        help=f"channel glob, before the namespace prefix (default {ALERTS_PATTERN!r})",
    )
    parser.add_argument(
        "--from-start",
        action="store_true",
        help="first print every alert already in the stream, then follow live",
    )
    parser.add_argument(
        "--subscription",
        metavar="ID",
        help="follow one subscription's own stream (its filtered alerts and its price "
        "levels' firings, which the shared channels never carry), from its start",
    )
    parser.add_argument("--json", action="store_true", help="print each alert as JSON")
    parser.add_argument("--count", type=int, metavar="N", help="exit after N alerts")
    parser.add_argument("--timeout", type=float, metavar="S", help="exit after S seconds")


def history(client: redis.Redis, stream: str) -> Iterator[bytes]:
    """Every alert JSON in the stream, oldest first, a page at a time."""
    start: bytes | str = "-"
    while True:
        page: Any = client.xrange(stream, min=start, max="+", count=XRANGE_PAGE)
        if not page:
            return
        for _entry_id, fields in page:
            value = fields.get(b"alert")
            if value is not None:
                yield value
        if len(page) < XRANGE_PAGE:
            return
        # "(" makes the bound exclusive: the page's last entry is not read twice.
        start = b"(" + page[-1][0]


class Printer:
    """Prints each alert once; remembers the ids of history so live copies are skipped."""

    def __init__(self, out: TextIO, err: TextIO, as_json: bool, count: int | None) -> None:
        self.out = out
        self.err = err
        self.as_json = as_json
        self.remaining = count
        self.from_history: set[str] = set()
        self.printed = 0

    @property
    def done(self) -> bool:
        return self.remaining is not None and self.remaining <= 0

    def show(self, raw: bytes, *, historic: bool = False) -> None:
        if self.done:
            return
        try:
            alert = Alert.model_validate_json(raw)
        except ValidationError as exc:
            self.err.write(f"marketsignal: skipping a message that is not an alert: {exc}\n")
            return
        if historic:
            self.from_history.add(alert.alert_id)
        elif alert.alert_id in self.from_history:
            self.from_history.discard(alert.alert_id)
            return
        text = raw.decode() if self.as_json else format_alert(alert)
        self.out.write(text + "\n")
        self.out.flush()
        self.printed += 1
        if self.remaining is not None:
            self.remaining -= 1


def follow(
    client: redis.Redis,
    settings: Settings,
    pattern: str,
    printer: Printer,
    *,
    from_start: bool,
    timeout_s: float | None,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    full_pattern = settings.redis_key(pattern)
    deadline = None if timeout_s is None else clock() + timeout_s
    pubsub = client.pubsub()  # type: ignore[no-untyped-call]
    try:
        pubsub.psubscribe(full_pattern)
        # The history is read on another connection: only once the server has confirmed
        # the subscription is every alert published after that read sure to reach us.
        confirmed = False
        while not confirmed:
            if deadline is not None and clock() >= deadline:
                return
            message = pubsub.get_message(timeout=LISTEN_SLICE_S)
            confirmed = message is not None and message.get("type") == "psubscribe"
        if from_start:
            prefix = settings.namespace
            for raw in history(client, RedisKeys(settings.namespace).alerts):
                if printer.done:
                    return
                if _matches(raw, prefix, full_pattern):
                    printer.show(raw, historic=True)
        while not printer.done:
            wait = LISTEN_SLICE_S
            if deadline is not None:
                wait = min(wait, deadline - clock())
                if wait <= 0:
                    return
            message = pubsub.get_message(timeout=wait)
            if message is not None and message.get("type") == "pmessage":
                printer.show(message["data"])
    finally:
        pubsub.close()


def follow_stream(
    client: redis.Redis,
    stream: str,
    printer: Printer,
    timeout_s: float | None,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Print one stream's alerts from its start, then as they are added (a subscription's
    own stream: `marketsignal subscribe`), until the printer is done or `timeout_s`.
    """
    deadline = None if timeout_s is None else clock() + timeout_s
    last: bytes | str = "0-0"
    while not printer.done:
        block_s = LISTEN_SLICE_S
        if deadline is not None:
            block_s = min(block_s, deadline - clock())
            if block_s <= 0:
                return
        read: Any = client.xread({stream: last}, count=100, block=max(1, int(block_s * 1000)))
        for _name, entries in read or ():
            for entry_id, fields in entries:
                last = entry_id
                raw = fields.get(b"alert")
                if raw is not None:
                    printer.show(raw)


def _matches(raw: bytes, prefix: str, full_pattern: str) -> bool:
    """Whether a stream entry would have been published on a channel the pattern matches."""
    try:
        alert = Alert.model_validate_json(raw)
    except ValidationError:
        return True  # let the printer report it
    return fnmatch.fnmatchcase(prefix + alert_channel(alert.kind, alert.subject), full_pattern)


def run(args: argparse.Namespace) -> int:
    settings = Settings.for_config(args.config)
    client = redis_client.connect(settings)
    printer = Printer(sys.stdout, sys.stderr, args.json, args.count)
    try:
        if args.subscription is not None:
            stream = RedisKeys(settings.namespace).stream(args.subscription)
            follow_stream(client, stream, printer, args.timeout)
        else:
            follow(
                client,
                settings,
                args.pattern,
                printer,
                from_start=args.from_start,
                timeout_s=args.timeout,
            )
    except redis.RedisError as exc:
        print(
            f"marketsignal: Redis at {settings.redis_location}: {exc}; "
            "start the local stack with `make stack-up`",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        client.close()
    if args.count is not None and not printer.done:
        return 1
    return 0
