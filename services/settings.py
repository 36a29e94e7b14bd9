"""Service settings from the environment (prefix MARKETSIGNAL_), built once and passed down."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas import topics
from services.detection.rules import Rules


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MARKETSIGNAL_", extra="ignore", frozen=True)

    # Rules file (TOML, shared/SIGNALS.md "Configuration"); None means the defaults.
    config: Path | None = None
    kafka_bootstrap: str = "127.0.0.1:9092"
    # How long a client waits for a first broker: a stopped stack fails fast, not after 30s.
    kafka_bootstrap_timeout_ms: Annotated[int, Field(ge=100)] = 10_000
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Prepended to every topic, consumer group and Redis key: lets tests and parallel
    # deployments share one broker and one Redis without seeing each other's data.
    namespace: str = ""
    partitions: Annotated[int, Field(ge=1)] = 6
    replication_factor: Annotated[int, Field(ge=1)] = 1
    state_dir: Path = Path(".local/state")
    # Address the /metrics, /healthz, /readyz servers bind (0.0.0.0 in containers).
    # Ports below: 0 means any free port (tests); the bound one is logged.
    metrics_host: str = "127.0.0.1"
    # Symbols whose feed staleness the processor reports; empty: the divergence rules'
    # indices (a divergence needs both feeds live).
    watch_symbols: tuple[str, ...] = ()

    # ingestor
    # Each tick waits up to this long for others to share its produce request: the first
    # wait on the tick-to-alert path, so a few ms (throughput comes from batch size).
    ingest_linger_ms: Annotated[int, Field(ge=0)] = 5
    ingest_batch_bytes: Annotated[int, Field(ge=1024)] = 512 * 1024
    ingest_compression: str | None = "gzip"
    ingestor_metrics_port: Annotated[int, Field(ge=0, le=65535)] = 9101

    # processor (faust-streaming worker)
    processor_app_id: str = "marketsignal-processor"
    processor_web_port: Annotated[int, Field(ge=0, le=65535)] = 6066
    processor_metrics_port: Annotated[int, Field(ge=0, le=65535)] = 9102
    # How soon the group notices a worker that died without leaving (kill -9, power loss)
    # and hands its partitions to the others.
    processor_session_timeout_s: Annotated[float, Field(ge=6, le=300)] = 30.0

    # alerter
    alerter_group: str = "marketsignal-alerter"
    alerter_metrics_port: Annotated[int, Field(ge=0, le=65535)] = 9103
    # Signals per poll, delivered in one Redis round trip and then committed together.
    alerter_batch_max: Annotated[int, Field(ge=1)] = 500
    # A crashed alerter holds its partitions this long before a restart can take them
    # over; the broker's floor is 6 s (group.min.session.timeout.ms).
    alerter_session_timeout_ms: Annotated[int, Field(ge=6000)] = 10_000
    # How long an alert_id stays claimed in Redis: a replay within it is never redelivered.
    alert_dedupe_ttl_s: Annotated[int, Field(ge=60)] = 30 * 86_400
    alerts_stream_maxlen: Annotated[int, Field(ge=100)] = 100_000

    # subscriptions (docs/subscriptions.md)
    # Cap of each `alerts:sub:{id}` stream and webhook outbox (XADD MAXLEN ~).
    sub_stream_maxlen: Annotated[int, Field(ge=10)] = 10_000
    # Subscriptions HTTP API, in the alerter process. Bearer tokens, as a JSON list in
    # MARKETSIGNAL_API_TOKENS; none configured: the API binds 127.0.0.1 only, unauthenticated.
    api_host: str = "0.0.0.0"
    api_port: Annotated[int, Field(ge=0, le=65535)] = 9110
    api_tokens: tuple[str, ...] = ()
    webhook_timeout_s: Annotated[float, Field(gt=0)] = 5.0
    webhook_max_attempts: Annotated[int, Field(ge=1)] = 6
    webhook_backoff_s: Annotated[float, Field(gt=0)] = 0.5
    webhook_backoff_max_s: Annotated[float, Field(gt=0)] = 30.0

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
    def signals_topic(self) -> str:
        return self.topic(topics.SIGNALS)

    @property
    def signals_dlq_topic(self) -> str:
        return self.topic(topics.SIGNALS_DLQ)

    def redis_key(self, name: str) -> str:
        return f"{self.namespace}{name}"
