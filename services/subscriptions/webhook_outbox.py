"""A webhook subscription's outbox stream as the webhook worker reads and settles it.

Entries are read with the `webhook` consumer group: first what this consumer read before
and never settled, then entries idle too long at another consumer (XAUTOCLAIM, a worker
that died mid-POST), then new ones. An entry is settled once its outcome is known: a
failed alert is dead-lettered with its reason, and the entry acknowledged and deleted, in
one transaction.
"""

from __future__ import annotations

import contextlib
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from services.runtime.redis_keys import RedisKeys
from services.runtime.settings import Settings

GROUP = "webhook"
READ_BLOCK_MS = 500


class Outbox:
    """The outbox steps of one worker (its consumer name), for any subscription."""

    def __init__(self, settings: Settings, keys: RedisKeys, consumer: str) -> None:
        self.settings = settings
        self.keys = keys
        self.consumer = consumer

    async def next(self, client: aioredis.Redis, sub_id: str, own_backlog: bool) -> list[Any]:
        outbox = self.keys.outbox(sub_id)
        if own_backlog:
            mine: Any = await client.xreadgroup(GROUP, self.consumer, {outbox: "0"}, count=10)
            found = [entry for _stream, entries in mine or () for entry in entries]
            if found:
                return found
        claimed: Any = await client.xautoclaim(
            outbox,
            GROUP,
            self.consumer,
            min_idle_time=self.settings.webhook_claim_idle_ms,
            start_id="0-0",
            count=10,
        )
        if claimed[1]:
            return list(claimed[1])
        read: Any = await client.xreadgroup(
            GROUP, self.consumer, {outbox: ">"}, count=10, block=READ_BLOCK_MS
        )
        return [entry for _stream, entries in read or () for entry in entries]

    async def create_group(self, client: aioredis.Redis, sub_id: str) -> None:
        # No MKSTREAM: the outbox of a deleted subscription must not come back to life.
        # The group starts at 0, so entries queued before the worker saw them are sent.
        with contextlib.suppress(ResponseError):
            await client.xgroup_create(self.keys.outbox(sub_id), GROUP, id="0")

    async def settle(
        self,
        client: aioredis.Redis,
        sub_id: str,
        entry_id: bytes,
        body: bytes | None,
        failed: tuple[str, int] | None,
    ) -> None:
        """Record the outcome and acknowledge, in one transaction: all or nothing."""
        outbox = self.keys.outbox(sub_id)
        async with client.pipeline(transaction=True) as pipe:
            if failed is not None and body is not None:
                reason, attempts = failed
                pipe.xadd(
                    self.keys.webhook_dead(sub_id),
                    {"alert": body, "reason": reason, "attempts": attempts},
                    maxlen=self.settings.sub_stream_maxlen,
                    approximate=True,
                )
            pipe.xack(outbox, GROUP, entry_id)
            pipe.xdel(outbox, entry_id)
            await pipe.execute()
