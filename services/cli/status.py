"""`marketsignal status`: each component up or down, its address, and consumer lag."""

from __future__ import annotations

import argparse
import urllib.request
from dataclasses import dataclass

import redis
from kafka import KafkaAdminClient, KafkaConsumer
from kafka.errors import KafkaError

from services.cli.options import add_config_option
from services.runtime import redis_client
from services.runtime.lag import compute_lag
from services.runtime.redis_keys import RedisKeys
from services.runtime.settings import Settings


@dataclass(frozen=True)
class Line:
    component: str
    up: bool
    address: str
    detail: str = ""

    def render(self) -> str:
        state = "up" if self.up else "down"
        return f"{self.component:<11} {state:<5} {self.address:<28} {self.detail}".rstrip()


def group_lag(settings: Settings, group: str, topics: list[str]) -> int | None:
    """Messages of `topics` not yet committed by `group`; None if the group never committed."""
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=5000)
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    try:
        lags = compute_lag(admin, consumer, group, topics)
    finally:
        admin.close()
        consumer.close()
    if all(p.committed is None for p in lags):
        return None
    return sum(p.lag for p in lags)


def kafka_line(settings: Settings) -> Line:
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=5000
        )
        topics = [t for t in admin.list_topics() if t.startswith(settings.namespace)]
        admin.close()
    except KafkaError as exc:
        return Line("kafka", False, settings.kafka_bootstrap, str(exc))
    return Line("kafka", True, settings.kafka_bootstrap, f"{len(topics)} topics")


def redis_line(settings: Settings) -> Line:
    try:
        client = redis_client.connect(settings, socket_connect_timeout=2)
        client.ping()
        n = int(client.xlen(RedisKeys(settings.namespace).alerts))
        detail = f"{n} alerts in stream"
        if settings.redis_sentinels:
            # Which node the sentinels name, and whether it has the replicas WAIT needs.
            host, port = client.connection_pool.get_master_address()  # type: ignore[attr-defined]
            replicas = int(client.info("replication").get("connected_slaves", 0))
            detail += f", primary {host}:{port} with {replicas} replica(s)"
    except redis.RedisError as exc:
        return Line("redis", False, settings.redis_location, str(exc))
    return Line("redis", True, settings.redis_location, detail)


def http_line(name: str, url: str) -> Line:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return Line(name, resp.status < 400, url)
    except OSError as exc:
        return Line(name, False, url, str(getattr(exc, "reason", exc)))


def lag_line(settings: Settings, name: str, group: str, topics: list[str]) -> Line:
    try:
        lag = group_lag(settings, group, topics)
    except KafkaError as exc:
        return Line(name, False, f"group {group}", str(exc))
    if lag is None:
        return Line(name, False, f"group {group}", "no committed offsets yet")
    return Line(name, True, f"group {group}", f"lag {lag}")


def configure(parser: argparse.ArgumentParser) -> None:
    add_config_option(parser)
    parser.add_argument("--prometheus", default="http://127.0.0.1:9090", help="Prometheus URL")


def run(args: argparse.Namespace) -> int:
    settings = Settings.for_config(args.config)
    lines = [kafka_line(settings), redis_line(settings)]
    lines.append(http_line("prometheus", args.prometheus.rstrip("/") + "/-/ready"))
    if lines[0].up:
        lines.append(
            lag_line(
                settings,
                "processor",
                settings.processor_consumer_group,
                [settings.ticks_topic],
            )
        )
        lines.append(
            lag_line(
                settings,
                "alerter",
                settings.alerter_consumer_group,
                [settings.signals_topic],
            )
        )
    for line in lines:
        print(line.render())
    return 0 if all(line.up for line in lines[:2]) else 1
