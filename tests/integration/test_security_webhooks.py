"""docs/security.md's controls on where the alerter's webhooks may go, probed as an attacker
would: destinations in every spelling, at creation and again at delivery time, and
redirects. Real HTTP, real Redis. What else leaves the alerter is in
test_security_delivery.py; the API's own controls in test_security.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta

import pytest
import redis

from services.runtime.redis_keys import RedisKeys
from services.runtime.settings import Settings
from services.subscriptions.background import Background
from services.subscriptions.registry import SubscriptionRegistry
from tests.integration.api_client import Api
from tests.integration.receiver import LOCAL_RECEIVER, Receiver
from tests.support import factories
from tests.support.fanout_delivery import deliver_and_fan_out
from tests.support.wait import wait_until

pytestmark = pytest.mark.integration

SSRF = [
    "http://127.0.0.1:9090/-/quit",
    "http://127.0.0.1:6379/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]:9110/subscriptions",
    "http://2130706433:9090/",
    "http://0x7f.0.0.1:9090/",
    "http://0177.0.0.1:9090/",
    "http://127.1:9090/",
    "http://[::ffff:127.0.0.1]:9090/",
    "http://[::ffff:7f00:1]:9090/",
    "http://[64:ff9b::7f00:1]/",
    "http://localhost:9110/subscriptions",
    "http://0.0.0.0:9090/",
    "http://10.0.0.1/",
    "http://192.168.1.1/",
    "http://[fd00:ec2::254]/",
    "http://224.0.0.1/",
    "http://100.100.100.200/latest/meta-data/",
    "HTTP://127.0.0.1:9090/-/quit",
    "https://user:pass@127.0.0.1/",
]


@pytest.mark.parametrize("url", SSRF)
def test_webhooks_cannot_point_inside(api: Api, url: str) -> None:
    status, body = api.call(
        "POST", "/subscriptions", {"name": "probe", "delivery": {"webhook": {"url": url}}}
    )
    assert status == 422, body
    assert body["fields"][0]["field"] == "delivery.webhook.url"
    assert "pass@" not in json.dumps(body)


def test_schemes_are_case_insensitive_and_only_http(local_api: Api, receiver: Receiver) -> None:
    ok = receiver.url("hook").replace("http://", "HTTP://")
    status, body = local_api.call(
        "POST", "/subscriptions", {"name": "caps", "delivery": {"webhook": {"url": ok}}}, None
    )
    assert status == 201, body
    for bad in ("ftp://127.0.0.1/", "file:///etc/passwd", "gopher://127.0.0.1:6379/_PING"):
        status, body = local_api.call(
            "POST", "/subscriptions", {"name": "x", "delivery": {"webhook": {"url": bad}}}, None
        )
        assert status == 422, (bad, body)


def test_destinations_are_checked_again_at_delivery_and_redirects_fail(
    settings: Callable[..., Settings], redis_client: redis.Redis, receiver: Receiver
) -> None:
    """Subscriptions written straight to the registry (as if their name resolved outside
    when created): the worker refuses them when it connects. A 302 is a failure."""
    s = settings(webhook_backoff_s=0.05, webhook_max_attempts=2)
    registry = SubscriptionRegistry(redis_client, s)
    port = receiver.port
    inside = [
        registry.create(factories.webhook_spec(url))[0]
        for url in (f"http://localhost:{port}/a", f"http://2130706433:{port}/b")
    ]
    keys = RedisKeys(s.namespace)
    refusing = Background(s, api=False).start()
    try:
        deliver_and_fan_out(redis_client, s, factories.record_high_alerts())
        for sub in inside:
            wait_until(lambda sub=sub: int(redis_client.xlen(keys.webhook_dead(sub.id))) == 1, 20)  # type: ignore[misc]
    finally:
        refusing.stop()
    reasons = []
    for sub in inside:
        ((_, fields),) = redis_client.xrange(keys.webhook_dead(sub.id))  # type: ignore[misc]
        reasons.append(fields[b"reason"].decode())
    # The name is resolved and refused; the decimal spelling aiohttp refuses itself.
    assert "refused destination: localhost resolves to 127.0.0.1" in reasons[0], reasons
    assert "not a canonical IPv4 address" in reasons[1], reasons
    assert not [h for _t, h, _b in receiver.received if h["path"] in ("a", "b")]
    # Allow-listed, the redirecting receiver is reached, but its 302 is not followed.
    allowed = s.model_copy(update={"webhook_allow_networks": LOCAL_RECEIVER})
    redirected, _ = registry.create(factories.webhook_spec(receiver.url("moved")))
    receiver.plans["moved"] = [f"redirect:http://127.0.0.1:{port}/target"] * 2
    deliver_and_fan_out(
        redis_client,
        s,
        factories.record_high_alerts(start=factories.T0 + timedelta(minutes=1), price=120.0),
    )
    worker = Background(allowed, api=False).start()
    try:
        wait_until(lambda: int(redis_client.xlen(keys.webhook_dead(redirected.id))) == 1, 20)
    finally:
        worker.stop()
    ((_, fields),) = redis_client.xrange(keys.webhook_dead(redirected.id))  # type: ignore[misc]
    assert fields[b"reason"] == b"HTTP 302: redirects are not followed"
    assert len(receiver.bodies("moved")) == 2
    assert receiver.bodies("target") == []
