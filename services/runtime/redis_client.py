"""Every Redis client of the services is built here: one Redis by URL, or the primary
that Sentinel names.

With `redis_sentinels` set, a client is redis-py's `Sentinel(...).master_for(...)`: each new
connection asks the sentinels where the primary is, and a connection to a primary that
went away or was demoted (a READONLY answer) is dropped, so the next command after a
failover goes to the promoted replica. The URL still gives the password, user and db;
its host and port are not used. Without sentinels, the URL alone, as before.
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio as aioredis
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.connection import parse_url
from redis.sentinel import Sentinel

from services.runtime.settings import Settings

# Sentinels are asked on every new connection: a dead one must not hold that up long.
SENTINEL_SOCKET_TIMEOUT_S = 1.0


def connection_kwargs(url: str) -> dict[str, Any]:
    """The URL's connection options bar the address (Sentinel supplies that)."""
    kwargs = dict(parse_url(url))  # type: ignore[no-untyped-call]
    for key in ("host", "port", "path"):
        kwargs.pop(key, None)
    # rediss://: Sentinel's pool picks its own TLS connection class when told `ssl`.
    connection_class = kwargs.pop("connection_class", None)
    if connection_class is not None and issubclass(connection_class, redis.SSLConnection):
        kwargs["ssl"] = True
    return kwargs


def sentinel_kwargs(settings: Settings) -> dict[str, Any]:
    """How to reach the sentinels: their password (see `redis_sentinel_password`), the
    default user, a short timeout."""
    kwargs: dict[str, Any] = {"socket_timeout": SENTINEL_SOCKET_TIMEOUT_S}
    password = sentinel_password(settings)
    if password:
        kwargs["password"] = password
    return kwargs


def sentinel_password(settings: Settings) -> str | None:
    if settings.redis_sentinel_password is not None:
        return settings.redis_sentinel_password.get_secret_value()
    if settings.redis_password_file is not None:
        try:
            password = settings.redis_password_file.read_text().strip()
        except OSError:
            password = ""
        if password:
            return password
    options = parse_url(settings.redis_url)  # type: ignore[no-untyped-call]
    found: str | None = options.get("password")
    return found


def connect(settings: Settings, url: str | None = None, **options: Any) -> redis.Redis:
    """A client of `settings`' Redis (`url` in place of its URL: another user, a test's)."""
    url = url or settings.redis_url
    if not settings.redis_sentinels:
        return redis.Redis.from_url(url, **options)
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        list(settings.redis_sentinels),
        sentinel_kwargs=sentinel_kwargs(settings),
        **connection_kwargs(url),
        **options,
    )
    client: redis.Redis = sentinel.master_for(settings.redis_sentinel_master)  # type: ignore[no-untyped-call]
    return client


def connect_async(settings: Settings, url: str | None = None, **options: Any) -> aioredis.Redis:
    """The asyncio client of `settings`' Redis, as `connect`."""
    url = url or settings.redis_url
    if not settings.redis_sentinels:
        return aioredis.Redis.from_url(url, **options)
    sentinel = AsyncSentinel(  # type: ignore[no-untyped-call]
        list(settings.redis_sentinels),
        sentinel_kwargs=sentinel_kwargs(settings),
        **connection_kwargs(url),
        **options,
    )
    client: aioredis.Redis = sentinel.master_for(settings.redis_sentinel_master)
    return client
