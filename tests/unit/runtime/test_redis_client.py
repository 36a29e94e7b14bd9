"""Redis clients from the settings: one Redis by URL, or Sentinel's primary (no server)."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from pydantic import ValidationError
from redis.sentinel import SentinelConnectionPool

from services.runtime import redis_client
from services.runtime.settings import Settings


def settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    for name, value in env.items():
        monkeypatch.setenv(f"MARKETSIGNAL_{name.upper()}", value)
    return Settings(redis_password_file=None)


def test_sentinels_default_to_none_and_the_url_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    s = settings(monkeypatch, redis_url="redis://:pw@10.0.0.5:6380/2")
    assert s.redis_sentinels == ()
    assert s.redis_min_replicas == 0
    client = redis_client.connect(s)
    kwargs = client.connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("10.0.0.5", 6380, 2)
    assert not isinstance(client.connection_pool, SentinelConnectionPool)


@pytest.mark.parametrize(
    "value",
    [
        "127.0.0.1:26379, 127.0.0.1:26380,[::1]:26381",
        '["127.0.0.1:26379", "127.0.0.1:26380", "[::1]:26381"]',
    ],
)
def test_sentinel_addresses_parse(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    s = settings(monkeypatch, redis_sentinels=value)
    assert s.redis_sentinels == (("127.0.0.1", 26379), ("127.0.0.1", 26380), ("::1", 26381))
    assert s.redis_location == "sentinel marketsignal via 127.0.0.1:26379,127.0.0.1:26380,::1:26381"


@pytest.mark.parametrize("value", ["127.0.0.1", "127.0.0.1:port", "h:0", ":26379", "h:70000"])
def test_bad_sentinel_addresses_are_named(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    with pytest.raises(ValidationError, match="MARKETSIGNAL_REDIS_SENTINELS must be host:port"):
        settings(monkeypatch, redis_sentinels=value)


def test_min_replicas_refuses_a_negative(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError):
        settings(monkeypatch, redis_min_replicas="-1")


def test_with_sentinels_a_client_asks_them_for_the_primary(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s = settings(
        monkeypatch,
        redis_url="redis://:secret@ignored:1/3",
        redis_sentinels="127.0.0.1:26379,127.0.0.1:26380",
        redis_sentinel_master="ms",
    )
    client = redis_client.connect(s, socket_connect_timeout=2)
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool)
    assert pool.service_name == "ms"
    # The primary's password and db come from the URL; its address from the sentinels.
    assert pool.connection_kwargs["password"] == "secret"
    assert pool.connection_kwargs["db"] == 3
    assert pool.connection_kwargs["socket_connect_timeout"] == 2
    assert "host" not in pool.connection_kwargs
    sentinels = pool.sentinel_manager.sentinels
    addresses = [
        (c.connection_pool.connection_kwargs["host"], c.connection_pool.connection_kwargs["port"])
        for c in sentinels
    ]
    assert addresses == [("127.0.0.1", 26379), ("127.0.0.1", 26380)]
    # The sentinels are asked with the same password.
    assert sentinels[0].connection_pool.connection_kwargs["password"] == "secret"


def test_the_sentinel_password_setting_wins_then_the_password_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    restricted = "redis://fanout:theirs@h:1/0"
    s = settings(monkeypatch, redis_url=restricted, redis_sentinels="127.0.0.1:26379")
    assert redis_client.sentinel_password(s) == "theirs"
    stack_file = tmp_path / "redis.password"
    stack_file.write_text("stack\n")
    s = s.model_copy(update={"redis_password_file": stack_file})
    assert redis_client.sentinel_password(s) == "stack"
    monkeypatch.setenv("MARKETSIGNAL_REDIS_SENTINEL_PASSWORD", "own")
    s = Settings(redis_url=restricted, redis_password_file=stack_file)
    assert redis_client.sentinel_password(s) == "own"
    assert "own" not in repr(s)


def test_a_restricted_user_url_keeps_the_settings_password_for_sentinels(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s = settings(monkeypatch, redis_url="redis://:main@h:1/0", redis_sentinels="127.0.0.1:26379")
    client = redis_client.connect(s, "redis://webhooks:theirs@h:1/0")
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool)
    assert pool.connection_kwargs["username"] == "webhooks"
    assert pool.connection_kwargs["password"] == "theirs"
    sentinel = pool.sentinel_manager.sentinels[0]
    assert sentinel.connection_pool.connection_kwargs["password"] == "main"
    assert sentinel.connection_pool.connection_kwargs["username"] is None


def test_tls_urls_keep_tls_through_sentinel() -> None:
    assert redis_client.connection_kwargs("rediss://:pw@h:1/0")["ssl"] is True
    assert "ssl" not in redis_client.connection_kwargs("redis://:pw@h:1/0")


def test_the_async_client_asks_the_sentinels_too(monkeypatch: pytest.MonkeyPatch) -> None:
    s = settings(monkeypatch, redis_sentinels="127.0.0.1:26379")
    client = redis_client.connect_async(s)
    assert type(client.connection_pool).__name__ == "SentinelConnectionPool"
    assert isinstance(redis_client.connect(settings(monkeypatch)), redis.Redis)
