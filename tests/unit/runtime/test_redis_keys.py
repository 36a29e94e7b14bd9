"""Redis key names are part of running deployments: each is spelled out here, once."""

from __future__ import annotations

from services.runtime.redis_keys import RedisKeys


def test_every_name_is_the_one_deployments_already_use() -> None:
    k = RedisKeys("ns:")
    assert k.alerts == "ns:alerts"
    assert k.seen("a1") == "ns:alert:seen:a1"
    assert k.channel("record_high", "2513.HK") == "ns:alerts:record_high:2513.HK"
    assert k.subs == "ns:subs"
    assert k.owners == "ns:subs:owner"
    assert k.order == "ns:subs:order"
    assert k.by_owner("cli") == "ns:subs:by:cli"
    assert k.version == "ns:subs:version"
    assert k.changes == "ns:subs:changes"
    assert k.legacy_secrets == "ns:subs:secret"
    assert k.fanout_queue == "ns:subs:fanout"
    assert k.fanout_lease == "ns:subs:fanout:lease"
    assert k.fanout_done("a1") == "ns:fanout:done:a1"
    assert k.redis_user("s1") == "ns:sub-s1"
    assert k.stream("s1") == "ns:alerts:sub:s1"
    assert k.day("s1", "2513.HK", "2026-02-13") == "ns:sub:s1:day:2513.HK:2026-02-13"
    assert k.last("s1") == "ns:sub:s1:last"
    assert k.outbox("s1") == "ns:sub:s1:outbox"
    assert k.webhook_dead("s1") == "ns:sub:s1:webhook:failed"
    assert k.webhook_failures("s1") == "ns:sub:s1:webhook:failures"
    assert k.owned("s1") == [
        "ns:alerts:sub:s1",
        "ns:sub:s1:last",
        "ns:sub:s1:outbox",
        "ns:sub:s1:webhook:failed",
        "ns:sub:s1:webhook:failures",
    ]


def test_without_a_namespace_the_names_are_bare() -> None:
    k = RedisKeys("")
    assert k.alerts == "alerts"
    assert k.stream("s1") == "alerts:sub:s1"
    assert k.fanout_queue == "subs:fanout"
