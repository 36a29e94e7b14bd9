"""Service settings from the environment (prefix MARKETSIGNAL_), built once and passed down."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from schemas import topics
from schemas.common import field_problems
from services.detection.rules import Rules

# A bearer token shorter than this is refused at start-up: guessable, or a typo.
MIN_TOKEN_LENGTH = 16
# Where the local stack (deploy/local/stack.sh) writes the Redis password it set.
LOCAL_REDIS_PASSWORD_FILE = Path(".local/secrets/redis.password")
LOCAL_WEBHOOK_KEY_FILE = Path(".local/secrets/webhook.key")
# Vendor credentials that may come from a file: MARKETSIGNAL_{NAME}_FILE.
_VENDOR_SECRETS = ("polygon_api_key", "alpaca_key_id", "alpaca_secret_key")


def _json_list(value: Any, name: str) -> Any:
    """A JSON list from the environment; a clear message (never the value) if it is not one."""
    if not isinstance(value, str):
        return value
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = None
    if not isinstance(parsed, list):
        raise ValueError(f"MARKETSIGNAL_{name} must be a JSON list of strings, e.g. '[\"...\"]'")
    return parsed


def _addresses(value: Any, name: str) -> Any:
    """(host, port) pairs from "host:port,host:port" or a JSON list of such strings."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    items = _json_list(text, name) if text.startswith("[") else text.split(",")
    out = []
    for item in items:
        host, sep, port = str(item).strip().rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(
                f"MARKETSIGNAL_{name} must be host:port addresses separated by commas, "
                "e.g. '127.0.0.1:26379,127.0.0.1:26380'"
            )
        out.append((host.strip("[]"), int(port)))
    return tuple(out)


def _tokens(value: tuple[str, ...], name: str) -> tuple[str, ...]:
    for i, token in enumerate(value):
        if len(token) < MIN_TOKEN_LENGTH or token != token.strip():
            raise ValueError(
                f"MARKETSIGNAL_{name}[{i}] is refused: tokens need at least "
                f"{MIN_TOKEN_LENGTH} characters and no surrounding spaces"
            )
    return value


def redact_url(url: str) -> str:
    """The URL without its password (for logs and messages)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = quote(parts.username or "", safe="")
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def settings_problem(exc: ValidationError | SettingsError) -> str:
    """What is wrong with the environment, naming variables, never quoting their values."""
    if isinstance(exc, SettingsError):
        return f"invalid settings: {str(exc).split(chr(10))[0]}"
    named = [
        p.message
        if p.message.startswith("MARKETSIGNAL_")
        else f"MARKETSIGNAL_{p.field.upper()}: {p.message}"
        for p in field_problems(exc)
    ]
    return "invalid settings: " + "; ".join(named)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MARKETSIGNAL_", extra="ignore", frozen=True)

    # Rules file (TOML, docs/signals.md "Configuration"); None means the defaults.
    config: Path | None = None
    kafka_bootstrap: str = "127.0.0.1:9092"
    # How long a client waits for a first broker: a stopped stack fails fast, not after 30s.
    kafka_bootstrap_timeout_ms: Annotated[int, Field(ge=100)] = 10_000
    redis_url: str = "redis://127.0.0.1:6379/0"
    # A URL without a password takes the one in this file if it exists: the local stack
    # writes it when it starts Redis with `requirepass` (docs/security.md).
    redis_password_file: Path | None = LOCAL_REDIS_PASSWORD_FILE
    # Redis behind Sentinel (docs/reliability.md, "Redis failover"): the sentinels'
    # addresses, "host:port,host:port" (or a JSON list). Set, every Redis client asks them
    # for the current primary of `redis_sentinel_master` and follows a failover; the
    # URL's host and port are then unused, its password, user and db still apply (the
    # sentinels are asked with the same password). Empty: the URL's one Redis.
    redis_sentinels: Annotated[tuple[tuple[str, int], ...], NoDecode] = ()
    redis_sentinel_master: str = "marketsignal"
    # The sentinels' own password (their `requirepass`). Unset: the one in
    # redis_password_file if it can be read (the local stack gives its sentinels the same),
    # else the URL's. Not simply the URL's: a service may talk to Redis as a restricted
    # ACL user that the sentinels do not know.
    redis_sentinel_password: SecretStr | None = None
    # An alert counts as delivered once this many replicas hold it: the alerter sends
    # `WAIT n` after its writes and commits no Kafka offset before they answer. 0 (one
    # Redis): no WAIT. With Sentinel, 1: a failover never loses a committed alert.
    redis_min_replicas: Annotated[int, Field(ge=0)] = 0
    # How long one WAIT may block; short of replicas by then, the batch is retried as in a
    # Redis outage (nothing committed meanwhile).
    redis_wait_timeout_ms: Annotated[int, Field(ge=1, le=60_000)] = 1000
    # Prepended to every topic, consumer group and Redis key: lets tests and parallel
    # deployments share one broker and one Redis without seeing each other's data.
    namespace: str = ""
    partitions: Annotated[int, Field(ge=1)] = 6
    replication_factor: Annotated[int, Field(ge=1)] = 1
    # Set on every topic the services create: an acks=all write is acknowledged once this
    # many replicas have it. 1 on the single broker; 2 on a 3-node cluster
    # (deploy/local/cluster.sh), so a write survives the loss of any one node.
    min_insync_replicas: Annotated[int, Field(ge=1)] = 1
    state_dir: Path = Path(".local/state")
    # Address the /metrics, /healthz, /readyz servers bind (0.0.0.0 in containers).
    # Ports below: 0 means any free port (tests); the bound one is logged.
    metrics_host: str = "127.0.0.1"
    # Symbols whose feed staleness the processor reports; empty: the divergence rules'
    # indices (a divergence needs both feeds live).
    watch_symbols: tuple[str, ...] = ()

    # ingestor
    # Each record waits up to this long for others to share its produce request: a wait on
    # the tick-to-alert path. Unset: 5 ms with one tick per record, 0 with bundles, whose
    # window already gathered the ticks (a linger would only delay each bundle).
    ingest_linger_ms: Annotated[int, Field(ge=0)] | None = None
    ingest_batch_bytes: Annotated[int, Field(ge=1024)] = 512 * 1024
    # lz4 costs well under 1 us a tick and shrinks tick JSON severalfold; gzip cost ~4 us
    # and capped kafka-python's own producer near 100k ticks/s here (issue 15). "none"
    # and "gzip" work too.
    ingest_compression: str | None = "lz4"
    # Ticks for one partition within this many ms go in one record (a bundle, up to
    # ingest_bundle_max ticks): the processor then pays faust's per-record cost once for
    # many ticks. The window is the pipeline's pace at a live rate: every window is a
    # produce request here and a fetch, a batch, its outputs and state writes downstream,
    # whatever the ticks in it. 20 ms, measured at 5k ticks/s on 2 cores (docs/bench.md):
    # against 5 ms, a third less CPU in all and a shorter p99, the median 10-15 ms longer.
    ingest_bundle: bool = True
    ingest_bundle_ms: Annotated[float, Field(gt=0, le=1000)] = 20.0
    ingest_bundle_max: Annotated[int, Field(ge=1)] = 500
    ingestor_metrics_port: Annotated[int, Field(ge=0, le=65535)] = 9101
    # Vendor credentials for the built-in WebSocket adapters' login (docs/feeds.md). Each
    # may instead be read from a file (`..._FILE`), which keeps it out of the environment
    # that `ps e` and crash reports show; the variable wins over its file.
    polygon_api_key: SecretStr | None = None
    polygon_api_key_file: Path | None = None
    alpaca_key_id: SecretStr | None = None
    alpaca_key_id_file: Path | None = None
    alpaca_secret_key: SecretStr | None = None
    alpaca_secret_key_file: Path | None = None
    # How long a feed may take to answer the login before the connection is dropped and
    # retried (Alpaca closes a connection not authenticated within 10 s).
    ws_login_timeout_s: Annotated[float, Field(gt=0, le=300)] = 10.0
    # `ingest --akshare`: `module:function`, called once at start, returning the function
    # that fetches the codes' rows in place of akshare's calls (docs/feeds.md, "akshare"):
    # another snapshot source, or the tests' stand-in. None: akshare's.
    akshare_fetch: str | None = None
    # `history fetch`: a base URL that every HTTP request of akshare or yfinance goes to
    # instead, path and query kept (docs/feeds.md, "History from a source"): a relay in
    # front of the source, or the tests' stand-in. None: the sources themselves.
    history_fetch_url: str | None = None

    # processor (faust-streaming worker)
    processor_app_id: str = "marketsignal-processor"
    processor_web_port: Annotated[int, Field(ge=0, le=65535)] = 6066
    processor_metrics_port: Annotated[int, Field(ge=0, le=65535)] = 9102
    # How soon the group notices a worker that died without leaving (kill -9, power loss)
    # and hands its partitions to the others; heartbeats go every tenth of it.
    processor_session_timeout_s: Annotated[float, Field(ge=6, le=300)] = 10.0
    # Static group membership (Kafka's group.instance.id), unique per worker: a worker
    # restarted under the same id takes its partitions back at once, without waiting
    # for the session timeout to evict its dead self. None: dynamic membership.
    processor_instance_id: str | None = None
    # A SIGTERM'd worker that has not stopped gracefully within this exits hard
    # (at-least-once makes that safe: nothing is acked before it is durable).
    processor_stop_grace_s: Annotated[float, Field(gt=0, le=60)] = 8.0
    # How long the worker's event loop may hold the GIL while faust's consumer thread
    # waits for it (Python's default is 5 ms). That thread sends the fetches and hands
    # over their records; each wait stalls the loop that needs them. At 1 ms a single-
    # tick backlog drains ~6% faster (alternated runs on one topic); latency unchanged.
    processor_gil_switch_ms: Annotated[float, Field(gt=0, le=100)] = 1.0
    # Container allocations between two young-generation garbage collections (Python's
    # default is 700; 0 keeps it): services/runtime/heap.py:collect_less. 200,000, not
    # 50,000: a broad market's drain (10,000 symbols, a fresh state per symbol a batch)
    # spent a fifth of its time collecting; medians of 8-11 alternated drains, 33k ->
    # 42k ticks/s without levels, 28k -> 37k with 100,000 (docs/bench.md).
    processor_gc_threshold: Annotated[int, Field(ge=0)] = 200_000
    # How long the broker may hold the worker's fetch when it asks for every partition
    # (all fetched records consumed): a new record on any of them answers it at once, so
    # a long wait costs no latency and spares an idle worker's broker ~40 empty fetches a
    # second; 25 (the wait of a fetch that leaves a partition out) turns it off.
    # services/processor/faust_compat/consumer.py, docs/bench.md.
    processor_fetch_idle_wait_ms: Annotated[int, Field(ge=25, le=5000)] = 500

    # alerter
    alerter_group: str = "marketsignal-alerter"
    alerter_metrics_port: Annotated[int, Field(ge=0, le=65535)] = 9103
    # Signals per poll, delivered in one Redis round trip and then committed together.
    alerter_batch_max: Annotated[int, Field(ge=1)] = 500
    # Offsets committed at most this often (0: after every batch). Longer: fewer broker
    # requests at a live pace; a crash replays up to this much, which the dedupe drops.
    alerter_commit_interval_ms: Annotated[int, Field(ge=0, le=60_000)] = 1000
    # A crashed alerter holds its partitions this long before a restart can take them
    # over; the broker's floor is 6 s (group.min.session.timeout.ms).
    alerter_session_timeout_ms: Annotated[int, Field(ge=6000)] = 10_000
    # Static group membership for the alerter (see processor_instance_id).
    alerter_instance_id: str | None = None
    # How long an alert_id stays claimed in Redis: a replay within it is never redelivered.
    alert_dedupe_ttl_s: Annotated[int, Field(ge=60)] = 30 * 86_400
    alerts_stream_maxlen: Annotated[int, Field(ge=100)] = 100_000

    # subscriptions (docs/subscriptions.md)
    # Cap of each `alerts:sub:{id}` stream and webhook outbox (XADD MAXLEN ~).
    sub_stream_maxlen: Annotated[int, Field(ge=10)] = 10_000
    # Subscriptions HTTP API, in the alerter process. Owner tokens (each sees only the
    # subscriptions it created) and admin tokens (see all), JSON lists in
    # MARKETSIGNAL_API_TOKENS / MARKETSIGNAL_API_ADMIN_TOKENS; none configured: the API
    # binds 127.0.0.1 only, unauthenticated, and checks the Host header.
    api_host: str = "0.0.0.0"
    api_port: Annotated[int, Field(ge=0, le=65535)] = 9110
    api_tokens: Annotated[tuple[str, ...], NoDecode] = ()
    api_admin_tokens: Annotated[tuple[str, ...], NoDecode] = ()
    # Webhook destinations otherwise refused (loopback, private, link-local...): a JSON
    # list of addresses or networks, e.g. '["10.1.2.0/24"]'.
    webhook_allow_networks: Annotated[
        tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...], NoDecode
    ] = ()
    # Key from which every subscription's webhook secret is derived (HMAC), so Redis holds
    # no webhook secret. Unset: read from (or created in) webhook_key_file.
    webhook_key: SecretStr | None = None
    webhook_key_file: Path = LOCAL_WEBHOOK_KEY_FILE
    # A pending outbox entry idle this long belongs to a dead worker: another takes it.
    webhook_claim_idle_ms: Annotated[int, Field(ge=100)] = 60_000
    webhook_timeout_s: Annotated[float, Field(gt=0)] = 5.0
    webhook_max_attempts: Annotated[int, Field(ge=1)] = 6
    webhook_backoff_s: Annotated[float, Field(gt=0)] = 0.5
    webhook_backoff_max_s: Annotated[float, Field(gt=0)] = 30.0
    # Subscribers' own price levels: at most this many per subscription and in the
    # whole deployment (each is checked on every tick of its symbol). A create past
    # either is refused with 409 (docs/subscriptions.md, "Price levels").
    levels_per_subscription: Annotated[int, Field(ge=1)] = 1_000
    levels_max: Annotated[int, Field(ge=1)] = 100_000
    # How often the alerter looks for expired subscriptions with levels and disarms those
    # levels (a tombstone each). Delivery stops at the expiry itself: the fan-out checks it.
    levels_sweep_s: Annotated[float, Field(gt=0, le=3600)] = 5.0

    @field_validator("api_tokens", "api_admin_tokens", "webhook_allow_networks", mode="before")
    @classmethod
    def _from_json(cls, value: Any, info: Any) -> Any:
        return _json_list(value, str(info.field_name).upper())

    @field_validator("redis_sentinels", mode="before")
    @classmethod
    def _sentinel_addresses(cls, value: Any) -> Any:
        return _addresses(value, "REDIS_SENTINELS")

    @field_validator("api_tokens", "api_admin_tokens")
    @classmethod
    def _long_enough(cls, value: tuple[str, ...], info: Any) -> tuple[str, ...]:
        return _tokens(value, str(info.field_name).upper())

    @model_validator(mode="after")
    def _min_insync_fits(self) -> Settings:
        # More in-sync replicas required than there are replicas: no write would ever be
        # acknowledged (the broker answers NOT_ENOUGH_REPLICAS forever).
        if self.min_insync_replicas > self.replication_factor:
            raise ValueError(
                "MARKETSIGNAL_MIN_INSYNC_REPLICAS must not exceed "
                "MARKETSIGNAL_REPLICATION_FACTOR: no write could ever be acknowledged"
            )
        return self

    @model_validator(mode="after")
    def _local_redis_password(self) -> Settings:
        path = self.redis_password_file
        if path is None or urlsplit(self.redis_url).password is not None:
            return self
        try:
            password = path.read_text().strip()
        except OSError:
            return self
        if password:
            parts = urlsplit(self.redis_url)
            netloc = f"{quote(parts.username or '', safe='')}:{quote(password, safe='')}@"
            netloc += parts.netloc.rpartition("@")[2]
            # The model is frozen; this runs once, while it is being built.
            object.__setattr__(self, "redis_url", urlunsplit(parts._replace(netloc=netloc)))
        return self

    @model_validator(mode="after")
    def _vendor_secret_files(self) -> Settings:
        for name in _VENDOR_SECRETS:
            path = getattr(self, f"{name}_file")
            if getattr(self, name) is not None or path is None:
                continue
            try:
                value = path.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                # Named, never quoted: the message must not carry the secret.
                reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
                raise ValueError(
                    f"MARKETSIGNAL_{name.upper()}_FILE: {path} cannot be read ({reason})"
                ) from None
            if not value:
                raise ValueError(f"MARKETSIGNAL_{name.upper()}_FILE: {path} is empty")
            # The model is frozen; this runs once, while it is being built.
            object.__setattr__(self, name, SecretStr(value))
        return self

    @property
    def redis_location(self) -> str:
        """The Redis URL to show in messages: never its password."""
        if self.redis_sentinels:
            where = ",".join(f"{h}:{p}" for h, p in self.redis_sentinels)
            return f"sentinel {self.redis_sentinel_master} via {where}"
        return redact_url(self.redis_url)

    @property
    def api_auth(self) -> bool:
        return bool(self.api_tokens or self.api_admin_tokens)

    @classmethod
    def for_config(cls, config: Path | None) -> Settings:
        """Settings from the environment; a `--config` given on the command line wins."""
        return cls() if config is None else cls(config=config)

    def rules(self) -> Rules:
        return Rules.load(self.config)

    def topic(self, name: str) -> str:
        return f"{self.namespace}{name}"

    @property
    def ticks_topic(self) -> str:
        return self.topic(topics.TICKS)

    @property
    def dlq_topic(self) -> str:
        return self.topic(topics.TICKS_DLQ)

    @property
    def history_topic(self) -> str:
        return self.topic(topics.HISTORY)

    @property
    def levels_topic(self) -> str:
        return self.topic(topics.LEVELS)

    @property
    def signals_topic(self) -> str:
        return self.topic(topics.SIGNALS)

    @property
    def signals_dlq_topic(self) -> str:
        return self.topic(topics.SIGNALS_DLQ)

    @property
    def processor_consumer_group(self) -> str:
        """The processor's faust app id, which is also its Kafka consumer group."""
        return self.namespace + self.processor_app_id

    @property
    def alerter_consumer_group(self) -> str:
        return self.namespace + self.alerter_group

    def redis_key(self, name: str) -> str:
        return f"{self.namespace}{name}"
