"""docs/security.md's controls on what leaves the alerter, probed as an attacker would.

Real Redis, real processes: the per-subscriber Redis user, the local Redis password, and
a run's logs searched for every secret it was given. Webhook destinations are in
test_security_webhooks.py, the API's own controls (owners, tokens, hostile input) in
test_security.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
import redis

from schemas.alert import Alert
from services.runtime.redis_keys import RedisKeys
from services.runtime.settings import Settings
from tests.integration.api_client import ADMIN, ALICE, BOB, Api, create_subscription
from tests.integration.receiver import Receiver
from tests.support import factories
from tests.support.fanout_delivery import deliver_and_fan_out
from tests.support.services import run_cli
from tests.support.wait import wait_for, wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_a_subscriber_redis_user_reads_its_own_stream_only(
    api: Api, redis_client: redis.Redis
) -> None:
    mine = create_subscription(api, ALICE, "mine")
    other = create_subscription(api, BOB, "other")
    s = api.settings
    keys = RedisKeys(s.namespace)
    status, granted = api.call("POST", f"/subscriptions/{mine}/redis-user")
    assert status == 201
    assert granted["stream"] == keys.stream(mine)
    deliver_and_fan_out(redis_client, s, factories.record_high_alerts())
    url = redis.Redis.from_url(s.redis_url).connection_pool.connection_kwargs
    subscriber = redis.Redis(
        host=url.get("host", "127.0.0.1"),
        port=url.get("port", 6379),
        username=granted["user"],
        password=granted["password"],
    )
    try:
        entries: Any = subscriber.xrange(granted["stream"])
        assert len(entries) == 1
        Alert.model_validate_json(entries[0][1][b"alert"])
        pubsub = subscriber.pubsub()
        pubsub.subscribe(granted["channel"])
        pubsub.close()
        for forbidden in (
            lambda: subscriber.xrange(keys.stream(other)),
            lambda: subscriber.hgetall(keys.subs),
            lambda: subscriber.xrange(keys.outbox(mine)),
            lambda: subscriber.get("anything"),
            lambda: subscriber.xadd(granted["stream"], {"alert": "forged"}),
            lambda: subscriber.keys("*"),
            lambda: subscriber.publish(granted["channel"], "forged"),
            lambda: _subscribe(subscriber, keys.stream(other)),
        ):
            with pytest.raises(redis.exceptions.NoPermissionError):
                forbidden()
    finally:
        subscriber.close()
    # No webhook secret anywhere in Redis: a reader of every key finds none.
    secret = api.call("POST", "/subscriptions", {"name": "s"})[1]["webhook_secret"]
    for key in redis_client.scan_iter(match=f"{s.namespace}*"):
        dumped: Any = redis_client.dump(key)
        assert secret.encode() not in (dumped or b""), key
    # Deleting the subscription deletes its user.
    assert api.call("DELETE", f"/subscriptions/{mine}")[0] == 204
    users: Any = redis_client.acl_users()
    assert granted["user"].encode() not in users
    assert granted["user"] not in users


def _subscribe(client: redis.Redis, channel: str) -> None:
    pubsub = client.pubsub()
    try:
        pubsub.subscribe(channel)
        pubsub.get_message(timeout=5)  # the refusal arrives as the reply
    finally:
        pubsub.close()


def test_no_secret_in_a_runs_logs_or_error_responses(
    settings: Callable[..., Settings], receiver: Receiver, tmp_path: Path
) -> None:
    """A real alerter process with tokens, a webhook key, a webhook URL with credentials
    that fails, wrong tokens tried, a Redis URL with a wrong password: no secret in its
    output, nor in any error response."""
    s = settings()
    webhook_key = "webhook-key-" + os.urandom(16).hex()
    url_password = "url-password-" + os.urandom(8).hex()
    env = factories.service_env(
        s,
        partitions=1,
        api_tokens=[ALICE],
        api_admin_tokens=[ADMIN],
        api_port=0,
        api_host="127.0.0.1",
        alerter_metrics_port=0,
        webhook_key=webhook_key,
        webhook_allow_networks=["127.0.0.1/32"],
        webhook_max_attempts=2,
        webhook_backoff_s=0.05,
    )
    log = tmp_path / "alerter.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "alert", "--idle-exit", "6"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    answers: list[str] = []
    secrets_given = [ALICE, ADMIN, webhook_key, url_password]
    # The stack's own Redis password (from its file, in every service's URL), when it has one.
    stack_password = urlsplit(s.redis_url).password
    if stack_password:
        secrets_given.append(unquote(stack_password))
    try:
        port = _wait_for_api_port(log)
        api = Api(f"http://127.0.0.1:{port}", s, ALICE)
        hook = receiver.url("fails").replace("http://", f"http://user:{url_password}@")
        receiver.plans["fails"] = [500] * 5
        status, created = api.call(
            "POST", "/subscriptions", {"name": "x", "delivery": {"webhook": {"url": hook}}}
        )
        assert status == 201, created
        secrets_given.append(created["webhook_secret"])
        for token in (ALICE[:-1], "", ADMIN + "x"):
            answers.append(json.dumps(api.call("GET", "/subscriptions", token=token)))
        answers.append(json.dumps(api.call("POST", "/subscriptions", raw=b"{" + ALICE.encode())))
        redis_client = redis.Redis.from_url(s.redis_url)
        try:
            deliver_and_fan_out(redis_client, s, factories.record_high_alerts())
            keys = RedisKeys(s.namespace)
            sub_id = created["subscription"]["id"]
            wait_until(lambda: int(redis_client.xlen(keys.webhook_dead(sub_id))) == 1, 30)
        finally:
            redis_client.close()
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    # A second run that cannot log in to Redis prints the URL, not its password.
    where = s.redis_url.removeprefix("redis://").rsplit("@", 1)[-1]
    bad_url = f"redis://no-such-user:{url_password}@{where}"
    failed = run_cli(
        "alert",
        "--once",
        env={**env, "MARKETSIGNAL_REDIS_URL": bad_url, "MARKETSIGNAL_ALERTER_METRICS_PORT": "0"},
        timeout_s=120,
    )
    assert failed.returncode == 1, failed.stderr
    text = log.read_text() + failed.stdout + failed.stderr + "".join(answers)
    # The run did log what went wrong (so the search below searched something).
    assert "attempt 2/2 failed: HTTP 500" in text
    assert "Redis at redis://no-such-user:***@" in text
    for secret in secrets_given:
        assert secret not in text, "a secret appears in the logs or an error response"


def _wait_for_api_port(log: Path, timeout_s: float = 60.0) -> int:
    def port() -> int | None:
        for line in log.read_text().splitlines():
            if "subscriptions API on http://127.0.0.1:" in line:
                return int(line.split("127.0.0.1:")[1].split()[0].rstrip(":"))
        return None

    try:
        return wait_for("the alerter's API port in its log", port, timeout_s)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{log.read_text()[-2000:]}") from None


def test_the_local_redis_refuses_clients_without_the_password(stack: Settings) -> None:
    """The Redis deploy/local/stack.sh started has a password: clients without it are
    refused, clients with the settings' URL (which reads the password file) are not."""
    pid_file = ROOT / ".local/run/redis.pid"
    password_file = stack.redis_password_file
    try:
        os.kill(int(pid_file.read_text().strip()), 0)
    except (OSError, ValueError):
        pytest.skip("this checkout's stack.sh did not start the Redis in use (reused one)")
    if not (ROOT / ".local/redis/auth.conf").exists():
        pytest.skip("the Redis in use was started by a stack.sh older than its password")
    assert password_file is not None
    assert password_file.is_file()
    assert password_file.stat().st_mode & 0o077 == 0, "the password file is private"
    base = Settings(redis_password_file=None)
    bare = redis.Redis.from_url(base.redis_url)
    try:
        with pytest.raises(redis.exceptions.AuthenticationError):
            bare.ping()
    finally:
        bare.close()
    assert redis.Redis.from_url(stack.redis_url).ping()
